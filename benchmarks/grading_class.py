"""How long grading a class takes: N made-up submissions of one lab, graded by the real command.

The class is a mix a course sees, in turns of six: two students solved
everything (the instructor's solutions), two handed in one wrong but
plausible answer (from ``tests/mistakes/<lab>.py``, a different mistake for
each, in turn) and the solutions elsewhere, one left the last exercise
unsolved, and one handed in the untouched release; the first of those
instead uploaded a file that is not a notebook at all.  The script writes the
submissions, runs ``python -m dlcourse.grading grade`` on them as an
instructor would, checks each student's score against the exact score or the
range it expects, and prints the wall time and where ``grade`` wrote the
class report (``<out>/<lab>/results/report/``).

    python benchmarks/grading_class.py --lab week1_softmax_mnist --students 30
"""
import argparse
import copy
import csv
import importlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.mistakes.<lab>, and dlcourse when not installed

from dlcourse.grading.notebooks import STUB, load_lab, release, strip_solutions  # noqa: E402

KINDS = ("solved", "mistake", "solved", "mistake", "unsolved", "release")  # one turn of six students


def mistakes_of(lab_name):
    """``[(exercise, what is wrong, the whole exercise cell)]`` for the lab; empty if it has none."""
    try:
        mistakes = importlib.import_module(f"tests.mistakes.{lab_name}").MISTAKES
    except ModuleNotFoundError:
        return []
    return [(exercise, label, code) for exercise, wrong in mistakes.items() for label, code in wrong.items()]


def with_cells(released, cells):
    """The released notebook with these exercise cells' code put in (``{exercise: code}``)."""
    notebook = copy.deepcopy(released)
    for cell in notebook.cells:
        grading = cell.metadata.get("grading", {})
        if grading.get("role") == "exercise" and grading.get("exercise") in cells:
            cell.source = cells[grading["exercise"]]
    return notebook


def make_class(instructor_path, students, out_dir, endless=0):
    """Write ``students`` submissions; ``{file name: (lowest, highest) score it should get}``.

    ``endless``: how many of the students who solved everything instead loop
    forever in the last exercise (each costs the grader a timeout per test).
    """
    lab = load_lab(instructor_path)
    instructor = nbformat.read(instructor_path, as_version=4)
    released = release(instructor)
    solutions = {exercise: code for exercise, (_, code) in lab.exercises.items()}
    last = list(lab.exercises)[-1]  # later exercises may call earlier ones, never the reverse
    points = {exercise: [test.points for test in lab.tests if test.exercise == exercise] for exercise in solutions}
    mistakes = mistakes_of(lab.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    expected, mistakes_used, broken = {}, 0, False
    for index in range(students):
        name = f"student{index + 1:02d}"
        kind = KINDS[index % len(KINDS)]
        if kind == "mistake" and mistakes:
            exercise, _, wrong = mistakes[mistakes_used % len(mistakes)]
            mistakes_used += 1
            notebook = with_cells(released, {**solutions, exercise: wrong})
            # Some test of that exercise fails, and no test of another exercise does (tests/test_exercise_mistakes.py).
            expected[name] = (lab.max_score - sum(points[exercise]), lab.max_score - min(points[exercise]))
        elif kind == "unsolved":
            notebook = with_cells(released, {key: code for key, code in solutions.items() if key != last})
            expected[name] = (lab.max_score - sum(points[last]),) * 2
        elif kind == "release" and not broken:
            broken = True  # an upload that went wrong: the grader says why and gives 0
            (out_dir / f"{name}.ipynb").write_text("<html>Upload failed</html>\n", encoding="utf-8")
            expected[name] = (0, 0)
            continue
        elif kind == "release":
            notebook, expected[name] = released, (0, 0)
        elif endless > 0:
            endless -= 1
            notebook = with_cells(released, {**solutions, last: strip_solutions(solutions[last], last).replace(
                STUB, "while True: pass")})
            expected[name] = (lab.max_score - sum(points[last]),) * 2
        else:
            notebook, expected[name] = instructor, (lab.max_score,) * 2
        nbformat.write(notebook, out_dir / f"{name}.ipynb")
    return expected


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="week1_softmax_mnist")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--endless", type=int, default=0,
                        help="students whose last exercise loops forever")
    parser.add_argument("--jobs", type=int, default=None, help="passed to the grader (default: its own)")
    parser.add_argument("--jail", default="auto", help="passed to the grader: auto, namespaces, uid or none")
    parser.add_argument("--out", default="runs/grading_benchmark")
    args = parser.parse_args(argv)
    out = Path(args.out) / args.lab
    submissions = out / "submissions"
    for old in submissions.glob("*.ipynb"):
        old.unlink()  # a smaller class than last time must not grade the old files
    shutil.rmtree(out / "results", ignore_errors=True)  # nor count in the report
    expected = make_class(REPO / "notebooks" / f"{args.lab}.ipynb", args.students, submissions, args.endless)
    command = [sys.executable, "-m", "dlcourse.grading", "grade", "--lab", args.lab, "--out", str(out / "results"),
               "--quiet", "--jail", args.jail, *(["--trusted-submissions"] if args.jail == "none" else []),
               *sorted(str(path) for path in submissions.glob("*.ipynb"))]
    if args.jobs:
        command[5:5] = ["--jobs", str(args.jobs)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the grader failed: {done.stderr.strip().splitlines()[-1:]}")
    with open(out / "results" / f"{args.lab}_grades.csv", newline="", encoding="utf-8") as table:
        got = {row["student"]: float(row["score"]) for row in csv.DictReader(table)}
    wrong = {name: (got.get(name), f"{low:g}" if low == high else f"{low:g} to {high:g}")
             for name, (low, high) in expected.items() if got.get(name) is None or not low <= got[name] <= high}
    jail = next((line[len("jail: "):] for line in done.stdout.splitlines() if line.startswith("jail: ")), "?")
    timing = {"lab": args.lab, "students": args.students, "endless_loops": args.endless, "jail": jail,
              "wall_seconds": round(seconds, 1),
              "seconds_per_submission": round(seconds / args.students, 2), "scores_as_expected": not wrong}
    (out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps(timing))
    report = next((line for line in done.stdout.splitlines() if line.startswith("class report: ")), None)
    print(report or "the grader wrote no class report")  # `grade` writes it into results/report/
    if wrong:
        sys.exit(f"unexpected scores (got, expected): {wrong}")


if __name__ == "__main__":
    main()
