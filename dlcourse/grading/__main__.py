"""``python -m dlcourse.grading release|grade|report|autograder|jail``: the instructor's commands."""
import argparse
import os
import sys
from pathlib import Path

from dlcourse.cli import OneLineParser, UsageError, positive_float, positive_int
from dlcourse.grading.grader import find_notebook, grade_all, reference_values
from dlcourse.grading.gradescope import build as build_autograder
from dlcourse.grading.jail import (
    LAYERS,
    UID_BASE,
    JailError,
    choose_jail,
    readable_by,
    why_not,
)
from dlcourse.grading.notebooks import (
    NotebookError,
    graded_notebooks,
    load_lab,
    release_folder,
)
from dlcourse.grading.report import write_report
from dlcourse.grading.results import score_table, write_class_csv, write_results
from dlcourse.grading.sandbox import Limits

INSTRUCTOR_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def build_parser():
    parser = OneLineParser(prog="python -m dlcourse.grading",
                           description="Release student notebooks and grade submissions.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    release = commands.add_parser("release", help="write the student notebooks (no solutions, no hidden tests)")
    release.add_argument("--out", required=True, help="folder for the student notebooks")
    release.add_argument("--source", default=str(INSTRUCTOR_NOTEBOOKS), help="the instructor's notebooks")
    commands.add_parser("jail", help="which jails this machine gives the submissions, and why not the others")
    report = commands.add_parser("report", help="the class report of a results folder: Markdown, figures, LMS CSV")
    report.add_argument("grades", metavar="GRADES_DIR", help="the folder grade --out wrote (or Gradescope's export)")
    report.add_argument("--out", default=None, help="folder for the report (default: GRADES_DIR/report)")
    bundle = commands.add_parser("autograder", help="build a Gradescope autograder zip for one lab",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    bundle.add_argument("--lab", required=True, help="the notebook's name, e.g. week1_softmax_mnist")
    bundle.add_argument("--out", default=None, help="the zip to write (default: <lab>-autograder.zip)")
    bundle.add_argument("--source", default=str(INSTRUCTOR_NOTEBOOKS), help="the instructor's notebooks")
    bundle.add_argument("--seed", type=int, default=0, help="grading seed (see grade --seed)")
    grade = commands.add_parser("grade", help="grade submissions of one lab",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grade.add_argument("--lab", required=True, help="the notebook's name, e.g. week1_softmax_mnist")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                       help="a student's notebook, or a folder with a student's notebooks")
    grade.add_argument("--out", default=None, help="results folder (default: runs/grading/<lab>)")
    grade.add_argument("--source", default=str(INSTRUCTOR_NOTEBOOKS), help="the instructor's notebooks")
    grade.add_argument("--jail", choices=["auto", *LAYERS], default="auto",
                       help="the wall around each submission: auto = the strongest this machine gives")
    grade.add_argument("--trusted-submissions", action="store_true",
                       help="allow grading with no jail (--jail none, or auto where none works)")
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
    grade.add_argument("--seed", type=int, default=0,
                       help="grading seed: every call of a student's function starts its random generators "
                            "(Python, NumPy, Keras) from it; recorded in results.json")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def release(args):
    written = release_folder(args.source, args.out)
    print(f"wrote {len(written)} student notebooks to {args.out}")


def show_jails(_):
    for name in ("namespaces", "uid"):
        reason = why_not(name)
        print(f"{name:<11} {'no: ' + reason if reason else 'available'}")
    print(f"{'none':<11} only with --trusted-submissions")
    try:
        print(f"grade --jail auto uses: {choose_jail('auto').summary}")
    except JailError as error:
        print(f"grade --jail auto: {error}")


def protect(jail, lab_path, submissions, out_dir):
    """Under the separate-uid jail, refuse while a worker's uid could read what it must not."""
    if jail.name != "uid":
        return  # namespaces: nothing of the grader's is mounted; none: nothing is protected
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    secret = [lab_path.parent, *sorted(lab_path.parent.glob("*.ipynb"))]
    for submission in submissions:
        secret.append(Path(submission))
        try:
            secret.append(find_notebook(submission, lab_path.stem))
        except (NotebookError, OSError):
            pass
    readable = readable_by(UID_BASE, secret)
    if readable:
        shown = ", ".join(readable[:3]) + (f" and {len(readable) - 3} more" if len(readable) > 3 else "")
        raise JailError(f"the separate-uid jail cannot hide {shown}: other users can read them; "
                        f"run chmod -R go-rwx on them (or their folder) first")


def grade(args):
    labs = graded_notebooks(args.source)
    if args.lab not in labs:
        raise UsageError(f"no graded lab {args.lab!r} in {args.source}; choose one of {', '.join(labs) or '(none)'}")
    missing = [path for path in args.submissions if not os.path.lexists(path)]
    if missing:
        raise UsageError(f"no such submission: {', '.join(missing)}")
    jail = choose_jail(args.jail, args.trusted_submissions)
    lab = load_lab(labs[args.lab])
    limits = Limits(test_seconds=args.test_timeout, submission_seconds=args.time_limit,
                    memory_mib=args.memory, output_bytes=args.output_limit << 10)
    out_dir = Path(args.out or Path("runs") / "grading" / lab.name)
    protect(jail, labs[args.lab], args.submissions, out_dir)
    print(f"{lab.name}: {len(lab.tests)} tests, {lab.max_score:g} points; jail: {jail.summary}",
          file=sys.stderr)
    if jail.name == "none":
        print("warning: no jail: a submission can read the hidden tests and other submissions, change files, "
              "use the network and signal the grader", file=sys.stderr)
    expected = reference_values(lab, limits, jail, args.seed)
    done = []

    def save(result):
        write_results([result], lab, out_dir, jail)
        done.append(result)
    csv_path = None
    try:
        results = grade_all(lab, expected, args.submissions, limits, out_dir, jail, jobs=args.jobs,
                            progress=not args.quiet, on_result=save, seed=args.seed)
    finally:
        if done:
            csv_path = write_class_csv(done, lab, out_dir)  # what was graded, even after Ctrl-C
    print(score_table(results, lab, jail))
    print(f"results: {out_dir}/<student>/results.json, class table: {csv_path}")
    try:
        written = write_report(out_dir)
    except NotebookError as error:  # the grades are written; a folder the report cannot read must not undo that
        print(f"no class report: {error}", file=sys.stderr)
        return
    print(f"class report: {written['report']} (for students: {written['announcement'].name}), "
          f"figures: {written['scores'].name}, {written['pass_rate'].name}; LMS table: {written['lms'].name}")


def class_report(args):
    if not os.path.isdir(args.grades):
        raise UsageError(f"no such folder: {args.grades}")
    written = write_report(args.grades, args.out)
    for kind, path in written.items():
        print(f"{kind:<13} {path}")


def autograder(args):
    labs = graded_notebooks(args.source)
    if args.lab not in labs:
        raise UsageError(f"no graded lab {args.lab!r} in {args.source}; choose one of {', '.join(labs) or '(none)'}")
    print(f"{args.lab}: grading the reference solution to record its values and what grading imports ...",
          file=sys.stderr)
    built = build_autograder(labs[args.lab], args.out or f"{args.lab}-autograder.zip", seed=args.seed)
    print(f"wrote {built['zip']} ({built['bytes'] / 1024:.0f} KiB): {built['tests']} tests, "
          f"{built['max_score']:g} points, {built['requirements']} pinned packages for Python {built['python']}, "
          f"{built['modules']} course modules; upload it as the assignment's autograder (Ubuntu image)")


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # a setup cell may import Keras here too
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        commands = {"release": release, "grade": grade, "jail": show_jails, "report": class_report,
                    "autograder": autograder}
        commands[args.command](args)
    except UsageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except (NotebookError, JailError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; results already written are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
