"""What the grader hands back: Gradescope ``results.json`` files, a class CSV, a table to read."""
import csv
import io
import json
from pathlib import Path

from dlcourse.files import atomic_write


def gradescope_json(result, lab, jail=None):
    """The Gradescope autograder format: the score, and one entry per test with its points.

    Every field Gradescope documents for a submission and a test is written
    (``tests/gradescope_schema.json`` holds the schema the tests check);
    ``extra_data`` keeps what the class report needs: the lab, the jail, the
    grading seed, and each test's exercise and id.
    """
    return {
        "score": result.score,
        "execution_time": round(result.seconds, 2),
        "output": f"{lab.name}: {result.score:g} / {result.max_score:g}"
                  + (f" ({result.problem})" if result.problem else ""),
        "visibility": "visible",  # each test says its own; a hidden one is never shown to students
        "stdout_visibility": "hidden",  # the grader's log may name hidden tests
        "tests": [{"name": f"{test.exercise}: {test.name}", "score": test.score,
                   "max_score": test.max_score,
                   "status": "passed" if test.score >= test.max_score else "failed",
                   "output": test.output,
                   # Gradescope's own words: "visible" at once, "hidden" never to students.
                   "visibility": test.visibility,
                   "extra_data": {"exercise": test.exercise, "test": test.name}}
                  for test in result.tests],
        # Gradescope takes the assignment's total from its own settings; max_score is kept here for the report.
        "extra_data": {"lab": lab.name, "max_score": result.max_score,
                       "jail": jail.summary if jail is not None else "unknown", "seed": result.seed},
    }


def _write_atomically(path, text):
    """Write via a new temporary file, so an interrupted grader never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, encoding="utf-8", newline="") as out:
        out.write(text)


def write_results(results, lab, out_dir, jail=None):
    """``out_dir/<student>/results.json`` for each result."""
    for result in results:
        _write_atomically(Path(out_dir) / result.student / "results.json",
                          json.dumps(gradescope_json(result, lab, jail), ensure_ascii=False, indent=2) + "\n")


def write_class_csv(results, lab, out_dir):
    """``out_dir/<lab>_grades.csv``: one row per student, one column per test.

    Rows of students graded earlier into the same file (another section, an
    earlier batch) are kept; a student graded again gets the new row.
    """
    path = Path(out_dir) / f"{lab.name}_grades.csv"
    header = ["student", "score", "max_score", *(test.name for test in lab.tests), "submission"]
    rows = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as existing:
            reader = csv.DictReader(existing)
            if reader.fieldnames == header:
                rows = {row["student"]: row for row in reader}
    for result in results:
        row = {"student": result.student, "score": f"{result.score:g}", "max_score": f"{result.max_score:g}",
               "submission": result.submission}
        row.update({test.name: f"{test.score:g}" for test in result.tests})
        rows[result.student] = row
    table = io.StringIO(newline="")
    csv.writer(table).writerows([header] + [[rows[student].get(column, "") for column in header]
                                            for student in sorted(rows)])
    _write_atomically(path, table.getvalue())
    return path


def score_table(results, lab, jail=None):
    """A plain-text table: student, score, and which tests lost points; the jail they ran in."""
    width = max([len("student")] + [len(result.student) for result in results])
    lines = [f"jail: {jail.summary}"] if jail is not None else []
    lines += [f"{'student':<{width}}  {'score':>11}  lost points on",
             f"{'-' * width}  {'-' * 11}  {'-' * 14}"]
    for result in results:
        lost = [test.name for test in result.tests if test.score < test.max_score]
        note = result.problem or ("all tests" if len(lost) == len(result.tests) else ", ".join(lost) or "-")
        lines.append(f"{result.student:<{width}}  {result.score:>5g} / {result.max_score:<3g}  {note}")
    if results:
        mean = sum(result.score for result in results) / len(results)
        lines.append(f"{len(results)} submissions, mean {mean:.2f} / {lab.max_score:g}")
    return "\n".join(lines)
