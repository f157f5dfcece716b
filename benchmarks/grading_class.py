"""How long grading a class takes: N made-up submissions of one lab, graded by the real command.

The class is a mix a course sees: most students solved everything (the
instructor's solutions), some left one exercise unsolved, some handed in the
release untouched.  The script writes the submissions, runs
``python -m dlcourse.grading grade`` on them as an instructor would, checks
the scores it expected, and prints the wall time.

    python benchmarks/grading_class.py --lab week1_softmax_mnist --students 30
"""
import argparse
import copy
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from dlcourse.grading.notebooks import STUB, load_lab, release, strip_solutions

REPO = Path(__file__).resolve().parents[1]


def make_class(instructor_path, students, out_dir, endless=0):
    """Write ``students`` notebooks; the score each should get, by file name.

    ``endless``: how many of the students who solved everything instead loop
    forever in the last exercise (each costs the grader a timeout per test).
    """
    lab = load_lab(instructor_path)
    instructor = nbformat.read(instructor_path, as_version=4)
    released = release(instructor)
    exercise_ids = list(lab.exercises)
    points = {exercise: sum(test.points for test in lab.tests if test.exercise == exercise)
              for exercise in exercise_ids}
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = {}
    for index in range(students):
        kind = index % 6  # 0-3 solved, 4 the last exercise unsolved, 5 the untouched release
        notebook = released if kind == 5 else release(instructor) if kind == 4 else instructor
        if kind == 4:
            unsolved = exercise_ids[-1]  # later exercises may call earlier ones, never the reverse
            solutions = {exercise: code for exercise, (_, code) in lab.exercises.items() if exercise != unsolved}
            for cell in notebook.cells:
                exercise = cell.metadata.get("grading", {}).get("exercise")
                if cell.metadata.get("grading", {}).get("role") == "exercise" and exercise in solutions:
                    cell.source = solutions[exercise]
            score = lab.max_score - points[unsolved]
        elif kind < 4 and endless > 0:
            endless -= 1
            last = exercise_ids[-1]
            notebook = copy.deepcopy(instructor)
            for cell in notebook.cells:
                grading = cell.metadata.get("grading", {})
                if grading.get("role") == "exercise" and grading.get("exercise") == last:
                    cell.source = strip_solutions(cell.source, last).replace(STUB, "while True: pass")
            score = lab.max_score - points[last]
        else:
            score = 0 if kind == 5 else lab.max_score
        name = f"student{index + 1:02d}"
        nbformat.write(notebook, out_dir / f"{name}.ipynb")
        expected[name] = score
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
    expected = make_class(REPO / "notebooks" / f"{args.lab}.ipynb", args.students, submissions, args.endless)
    command = [sys.executable, "-m", "dlcourse.grading", "grade", "--lab", args.lab, "--out", str(out / "results"),
               "--quiet", "--jail", args.jail, *(["--trusted-submissions"] if args.jail == "none" else []), *sorted(str(path) for path in (out / "submissions").glob("*.ipynb"))]
    if args.jobs:
        command[5:5] = ["--jobs", str(args.jobs)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the grader failed: {done.stderr.strip().splitlines()[-1:]}")
    with open(out / "results" / f"{args.lab}_grades.csv", newline="", encoding="utf-8") as table:
        got = {row["student"]: float(row["score"]) for row in csv.DictReader(table)}
    wrong = {name: (got.get(name), score) for name, score in expected.items() if got.get(name) != score}
    jail = next((line[len("jail: "):] for line in done.stdout.splitlines() if line.startswith("jail: ")), "?")
    timing = {"lab": args.lab, "students": args.students, "endless_loops": args.endless, "jail": jail,
              "wall_seconds": round(seconds, 1),
              "seconds_per_submission": round(seconds / args.students, 2), "scores_as_expected": not wrong}
    (out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps(timing))
    if wrong:
        sys.exit(f"unexpected scores (got, expected): {wrong}")


if __name__ == "__main__":
    main()
