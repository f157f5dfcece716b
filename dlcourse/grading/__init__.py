"""Graded lab tests: exercises in the notebooks, a student release, and a jailed grader.

- ``notebooks``: which cells are setup, exercises, helpers and tests; the release.
- ``jail``: the operating system's wall around a student's process (namespaces, a uid, or none).
- ``worker``: the process that runs a student's code inside the jail (started, never imported).
- ``wire``: the plain data that may cross between the grader and a worker.
- ``sandbox``: starting, feeding and, when needed, killing workers, always with a deadline.
- ``runner``: a lab's tests, run in the grader's process against the student's functions.
- ``compare``: does a student's value match the reference solution's?
- ``grader``: reference values once, then every submission against them.
- ``results``: Gradescope ``results.json``, the class CSV, the score table.
- ``report``: the class report: Markdown for the instructor and for an announcement, figures, an LMS CSV.
- ``gradescope``: the autograder zip for Gradescope, and what it runs for each submission.
- ``check``: a student's check of the visible tests while working in the notebook.

Command line: ``python -m dlcourse.grading release --out DIR``,
``python -m dlcourse.grading grade --lab LAB SUBMISSION...``,
``python -m dlcourse.grading report GRADES_DIR``,
``python -m dlcourse.grading autograder --lab LAB`` and
``python -m dlcourse.grading jail`` (see README).
"""
