"""``python -m dlcourse.grading release|grade``: the instructor's two commands."""
import argparse
import os
import sys
from pathlib import Path

from dlcourse.cli import OneLineParser, UsageError, positive_float, positive_int
from dlcourse.grading.grader import grade_all, reference_values
from dlcourse.grading.notebooks import NotebookError, graded_notebooks, load_lab, release_folder
from dlcourse.grading.results import score_table, write_class_csv, write_results
from dlcourse.grading.sandbox import Limits, network_isolation

INSTRUCTOR_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def build_parser():
    parser = OneLineParser(prog="python -m dlcourse.grading",
                           description="Release student notebooks and grade submissions.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    release = commands.add_parser("release", help="write the student notebooks (no solutions, no hidden tests)")
    release.add_argument("--out", required=True, help="folder for the student notebooks")
    release.add_argument("--source", default=str(INSTRUCTOR_NOTEBOOKS), help="the instructor's notebooks")
    grade = commands.add_parser("grade", help="grade submissions of one lab",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grade.add_argument("--lab", required=True, help="the notebook's name, e.g. week1_softmax_mnist")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                       help="a student's notebook, or a folder with a student's notebooks")
    grade.add_argument("--out", default=None, help="results folder (default: runs/grading/<lab>)")
    grade.add_argument("--source", default=str(INSTRUCTOR_NOTEBOOKS), help="the instructor's notebooks")
    grade.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                       help="submissions graded at the same time")
    grade.add_argument("--test-timeout", type=positive_float, default=Limits.test_seconds,
                       help="seconds for one test or exercise cell")
    grade.add_argument("--time-limit", type=positive_float, default=Limits.submission_seconds,
                       help="seconds for one whole submission")
    grade.add_argument("--memory", type=positive_int, default=Limits.memory_mib,
                       help="address-space limit of a submission's process, MiB")
    grade.add_argument("--output-limit", type=positive_int, default=Limits.output_bytes >> 10,
                       help="what a submission may print, KiB")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def release(args):
    written = release_folder(args.source, args.out)
    print(f"wrote {len(written)} student notebooks to {args.out}")


def grade(args):
    labs = graded_notebooks(args.source)
    if args.lab not in labs:
        raise UsageError(f"no graded lab {args.lab!r} in {args.source}; choose one of {', '.join(labs) or '(none)'}")
    missing = [path for path in args.submissions if not Path(path).exists()]
    if missing:
        raise UsageError(f"no such submission: {', '.join(missing)}")
    lab = load_lab(labs[args.lab])
    limits = Limits(test_seconds=args.test_timeout, submission_seconds=args.time_limit,
                    memory_mib=args.memory, output_bytes=args.output_limit << 10)
    out_dir = Path(args.out or Path("runs") / "grading" / lab.name)
    network = "own network namespace" if network_isolation() else "audit hook only (no unprivileged namespaces)"
    print(f"{lab.name}: {len(lab.tests)} tests, {lab.max_score:g} points; network blocked by: {network}",
          file=sys.stderr)
    expected = reference_values(lab, limits)
    done = []

    def save(result):
        write_results([result], lab, out_dir)
        done.append(result)
    try:
        results = grade_all(lab, expected, args.submissions, limits, out_dir, jobs=args.jobs,
                            progress=not args.quiet, on_result=save)
    finally:
        if done:
            csv_path = write_class_csv(done, lab, out_dir)  # what was graded, even after Ctrl-C
    print(score_table(results, lab))
    print(f"results: {out_dir}/<student>/results.json, class table: {csv_path}")


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        {"release": release, "grade": grade}[args.command](args)
    except UsageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except (NotebookError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; results already written are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
