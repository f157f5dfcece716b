"""Graded lab tests: exercises in the notebooks, a student release, and a sandboxed grader.

- ``notebooks``: which cells are setup, exercises and tests; the release.
- ``worker``: the process that runs a student's code (started, never imported).
- ``sandbox``: starting, feeding and, when needed, killing those processes.
- ``compare``: does a student's value match the reference solution's?
- ``grader``: reference values once, then every submission against them.
- ``results``: Gradescope ``results.json``, the class CSV, the score table.

Command line: ``python -m dlcourse.grading release --out DIR`` and
``python -m dlcourse.grading grade --lab LAB SUBMISSION...`` (see README).
"""
