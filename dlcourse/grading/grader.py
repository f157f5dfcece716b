"""Grade a class: the reference solution's values once, then every submission against them.

A test runs in this process (``runner.py``); only the student's functions
run in the jailed worker, and only plain data comes back.  A test earns its
points when its asserts pass on the student's results *and* the value of its
last line matches the value the instructor's solution gives for the same
cell.  Expected values and the tests' code never leave this process.
"""
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from dlcourse.grading.compare import comparable, compare
from dlcourse.grading.notebooks import NotebookError, forbidden_uses, student_code
from dlcourse.grading.runner import run_tests
from dlcourse.grading.sandbox import Session, kill_all_workers


@dataclass
class TestResult:
    name: str
    exercise: str
    score: float
    max_score: float
    output: str
    visibility: str


@dataclass
class Result:
    """One submission's grade."""
    student: str
    submission: str
    tests: list = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""  # why nothing could run (no notebook, unreadable file), else ""
    seed: int = None   # the grading seed every call of the student's code started from

    @property
    def score(self):
        return sum(test.score for test in self.tests)

    @property
    def max_score(self):
        return sum(test.max_score for test in self.tests)


def reference_values(lab, limits, jail, seed=0):
    """``{test name: value}`` from the instructor's own solution; every test must pass on it.

    Computed with the grading ``seed`` the students are graded with, so a
    solution that draws random numbers as the reference does gets its values.
    """
    cells = {exercise: code for exercise, (_, code) in lab.exercises.items()}
    with Session(jail, lab.setup, cells, limits, lab.helpers, lab.all_forbidden, seed) as session:
        outcomes = run_tests(lab, session, limits)
        cell_failures = dict(session.cell_failures)
    for exercise, reason in cell_failures.items():
        raise NotebookError(f"{lab.name}: the reference solution of {exercise!r} fails: {reason}")
    for test in lab.tests:
        outcome = outcomes[test.name]
        if outcome.error:
            raise NotebookError(f"{lab.name}: test {test.name!r} fails on the reference solution: {outcome.error}")
        if outcome.value is None:
            raise NotebookError(f"{lab.name}: test {test.name!r} ends with None; end it with the value "
                                f"to compare (the student's function's output)")
        if not comparable(outcome.value):
            raise NotebookError(f"{lab.name}: test {test.name!r} ends with a value the grader cannot "
                                f"compare ({type(outcome.value).__name__}); end with numbers, text or arrays")
    return {name: outcome.value for name, outcome in outcomes.items()}


def find_notebook(submission, lab_name):
    """The notebook to grade: the file itself, or ``<lab>.ipynb`` (else the only notebook) in a folder.

    A submission that is itself a link is refused, and a folder is searched
    without following links out of it; ``student_code`` refuses links, FIFOs,
    devices and oversized files when it opens the notebook.
    """
    submission = Path(submission)
    info = os.lstat(submission)
    if stat.S_ISLNK(info.st_mode):
        raise NotebookError(f"{submission.name} is a symbolic link, not the student's own file")
    if not stat.S_ISDIR(info.st_mode):
        if submission.suffix != ".ipynb":
            raise NotebookError(f"{submission.name} is not a notebook (.ipynb)")
        return submission
    found = []
    for folder, subfolders, files in os.walk(submission, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if name != ".ipynb_checkpoints")
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".ipynb")]
    named = [path for path in found if path.name == f"{lab_name}.ipynb"]
    if named:
        return named[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotebookError(f"no notebook (.ipynb) in what was handed in; hand in {lab_name}.ipynb")
    shown = ", ".join(path.name for path in found[:4]) + (" ..." if len(found) > 4 else "")
    raise NotebookError(f"{len(found)} notebooks handed in ({shown}) and none is named {lab_name}.ipynb; "
                        f"name the one to grade {lab_name}.ipynb")


def student_names(submissions):
    """A distinct, file-system-safe folder name per submission: the file's stem or the folder's name.

    Only letters, digits, ``_``, ``-`` and inner dots survive, so no name can
    leave the results folder; names that differ only in case are made
    distinct too (a case-insensitive disk would merge them), and none is the
    class report's folder.
    """
    names, seen = [], {"report"}  # report/ holds the class report
    for submission in submissions:
        path = Path(submission)
        stem = path.stem if path.suffix == ".ipynb" else path.name
        base = re.sub(r"[^\w.-]", "_", stem).strip(".") or "submission"
        base = base[:80]
        name, number = base, 1
        while name.lower() in seen:
            number += 1
            name = f"{base}-{number}"
        seen.add(name.lower())
        names.append(name)
    return names


def _test_result(test, outcome, expected, cell_failures):
    if outcome is None or outcome.error is not None:
        reason = outcome.error if outcome is not None else "not run"
        if test.exercise in cell_failures:
            reason = f"exercise cell {test.exercise!r}: {cell_failures[test.exercise]}; then: {reason}"
        return TestResult(test.name, test.exercise, 0, test.points, reason, test.visibility)
    same, reason = compare(expected, outcome.value, test.rtol, test.atol)
    return TestResult(test.name, test.exercise, test.points if same else 0, test.points,
                      "passed" if same else reason, test.visibility)


def grade_submission(lab, expected, submission, student, limits, jail, output_dir=None, seed=0):
    """One submission's ``Result``; its printed output is kept in ``output_dir/output.log``."""
    result = Result(student=student, submission=str(submission), seed=seed)
    try:
        notebook = find_notebook(submission, lab.name)
        cells = student_code(notebook, lab)
    except (NotebookError, OSError) as error:
        result.problem = str(error) if isinstance(error, NotebookError) else f"cannot read it ({error.strerror})"
        result.tests = [TestResult(test.name, test.exercise, 0, test.points, result.problem, test.visibility)
                        for test in lab.tests]
        return result
    missing = {exercise: "not found in the notebook (keep the exercise cells the release gave you)"
               for exercise in lab.exercises if exercise not in cells}
    for exercise, code in cells.items():
        used = forbidden_uses(code, lab.forbidden.get(exercise, ()))
        if used:
            missing[exercise] = f"uses {', '.join(used)}, which this exercise does not allow (write it yourself)"
    ordered = {exercise: cells[exercise] for exercise in lab.exercises if exercise not in missing}
    with Session(jail, lab.setup, ordered, limits, lab.helpers, lab.all_forbidden, seed) as session:
        outcomes = run_tests(lab, session, limits)
        result.seconds = time.monotonic() - session.started
        if output_dir is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            session.output(Path(output_dir) / "output.log", limits.output_bytes)
        cell_failures = {**session.cell_failures, **missing}
    result.tests = [_test_result(test, outcomes.get(test.name), expected[test.name], cell_failures)
                    for test in lab.tests]
    return result


def grade_all(lab, expected, submissions, limits, out_dir, jail, jobs=2, progress=True, on_result=None, seed=0):
    """Every submission's ``Result``, in the order given, ``jobs`` of them at a time.

    ``on_result(result)`` is called (in this thread) as each submission is
    done, so results can be saved before the whole class is.  On Ctrl-C the
    submissions not started are dropped and the running ones killed.
    """
    names = student_names(submissions)
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(grade_submission, lab, expected, submission, name, limits, jail,
                           Path(out_dir) / name, seed): index
               for index, (submission, name) in enumerate(zip(submissions, names))}
    results = [None] * len(futures)
    try:
        with tqdm(total=len(futures), desc=f"grading {lab.name}", unit="submission",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = _result_of(future, names[index], submissions[index], lab, seed)
                if on_result is not None:
                    on_result(results[index])
                bar.update()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all_workers()
        raise
    pool.shutdown()
    return results


def _result_of(future, student, submission, lab, seed):
    """The future's result; a grader bug on one submission becomes that submission's problem."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - one submission must not stop the class
        reason = f"the grader failed on this submission ({type(error).__name__}: {error}); grade it again"
        return Result(student=student, submission=str(submission), problem=reason, seed=seed,
                      tests=[TestResult(test.name, test.exercise, 0, test.points, reason, test.visibility)
                             for test in lab.tests])
