"""Grade a class: the reference solution's values once, then every submission against them.

A test earns its points when the student's code runs it without an error
(its asserts pass) *and* the value of its last line matches the value the
instructor's solution gives for the same cell.  The second half is what
keeps scores honest: the expected values stay in this process, so code that
patches ``numpy`` or fakes its asserts in the worker still has to produce
the right numbers.
"""
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from dlcourse.grading.compare import compare
from dlcourse.grading.notebooks import NotebookError, student_code
from dlcourse.grading.sandbox import kill_all_workers, run_submission


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

    @property
    def score(self):
        return sum(test.score for test in self.tests)

    @property
    def max_score(self):
        return sum(test.max_score for test in self.tests)


def reference_values(lab, limits):
    """``{test name: value}`` from the instructor's own solution; every test must pass on it."""
    cells = {exercise: code for exercise, (_, code) in lab.exercises.items()}
    outcomes, cell_failures, _ = run_submission(lab.setup, cells, lab.tests, limits)
    for exercise, reason in cell_failures.items():
        raise NotebookError(f"{lab.name}: the reference solution of {exercise!r} fails: {reason}")
    for test in lab.tests:
        outcome = outcomes[test.name]
        if outcome.error:
            raise NotebookError(f"{lab.name}: test {test.name!r} fails on the reference solution: {outcome.error}")
        if outcome.value is None:
            raise NotebookError(f"{lab.name}: test {test.name!r} ends with None; end it with the value "
                                f"to compare (the student's function's output)")
        if "__unsupported__" in repr(outcome.value):
            raise NotebookError(f"{lab.name}: test {test.name!r} ends with a value the grader cannot "
                                f"compare ({outcome.value}); end with numbers, text or arrays")
    return {name: outcome.value for name, outcome in outcomes.items()}


def find_notebook(submission, lab_name):
    """The notebook to grade: the file itself, or ``<lab>.ipynb`` (else the only notebook) in a folder."""
    submission = Path(submission)
    if submission.is_file():
        if submission.suffix != ".ipynb":
            raise NotebookError(f"{submission.name} is not a notebook (.ipynb)")
        return submission
    named = sorted(submission.rglob(f"{lab_name}.ipynb"))
    if named:
        return named[0]
    notebooks = [path for path in sorted(submission.rglob("*.ipynb")) if ".ipynb_checkpoints" not in path.parts]
    if len(notebooks) == 1:
        return notebooks[0]
    raise NotebookError(f"no {lab_name}.ipynb in {submission.name}/ "
                        f"({len(notebooks)} other notebooks)")


def student_names(submissions):
    """A distinct, file-system-safe name per submission: the file's stem or the folder's name."""
    names, seen = [], {}
    for submission in submissions:
        path = Path(submission)
        base = re.sub(r"[^\w.-]", "_", path.stem if path.is_file() else path.name) or "submission"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
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


def grade_submission(lab, expected, submission, student, limits, output_dir=None):
    """One submission's ``Result``; its printed output is kept in ``output_dir/output.log``."""
    result = Result(student=student, submission=str(submission))
    try:
        notebook = find_notebook(submission, lab.name)
        cells = student_code(notebook, lab)
    except (NotebookError, OSError) as error:
        result.problem = str(error)
        result.tests = [TestResult(test.name, test.exercise, 0, test.points, str(error), test.visibility)
                        for test in lab.tests]
        return result
    missing = {exercise: "not found in the notebook (keep the exercise cells the release gave you)"
               for exercise in lab.exercises if exercise not in cells}
    ordered = {exercise: cells[exercise] for exercise in lab.exercises if exercise in cells}
    keep = Path(output_dir) / "output.log" if output_dir is not None else None
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
    outcomes, cell_failures, result.seconds = run_submission(
        lab.setup, ordered, lab.tests, limits, files=[notebook], keep_output=keep)
    cell_failures = {**cell_failures, **missing}
    result.tests = [_test_result(test, outcomes.get(test.name), expected[test.name], cell_failures)
                    for test in lab.tests]
    return result


def grade_all(lab, expected, submissions, limits, out_dir, jobs=2, progress=True, on_result=None):
    """Every submission's ``Result``, in the order given, ``jobs`` of them at a time.

    ``on_result(result)`` is called (in this thread) as each submission is
    done, so results can be saved before the whole class is.  On Ctrl-C the
    submissions not started are dropped and the running ones killed.
    """
    names = student_names(submissions)
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(grade_submission, lab, expected, submission, name, limits,
                           Path(out_dir) / name): index
               for index, (submission, name) in enumerate(zip(submissions, names))}
    results = [None] * len(futures)
    try:
        with tqdm(total=len(futures), desc=f"grading {lab.name}", unit="submission",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = _result_of(future, names[index], submissions[index], lab)
                if on_result is not None:
                    on_result(results[index])
                bar.update()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all_workers()
        raise
    pool.shutdown()
    return results


def _result_of(future, student, submission, lab):
    """The future's result; a grader bug on one submission becomes that submission's problem."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - one submission must not stop the class
        reason = f"the grader failed on this submission ({type(error).__name__}: {error}); grade it again"
        return Result(student=student, submission=str(submission), problem=reason,
                      tests=[TestResult(test.name, test.exercise, 0, test.points, reason, test.visibility)
                             for test in lab.tests])
