"""Running a whole week of labs from one command and summing it up in a table.

``labs/weekN.py`` lists its labs and calls ``main``; each lab runs in this
process with the flags given (unset flags keep each lab's own default), and a
lab that fails is reported and skipped so the rest of the week still runs.
"""
import importlib
import pathlib
import time
import traceback

from dlcourse import cli
from dlcourse.data import DataError


def week_parser(week, lab_names):
    parser = cli.OneLineParser(prog=f"python -m labs.{week}",
                               description=f"Run the labs of {week} and print a summary table.")
    parser.add_argument("--lab", action="append", choices=lab_names,
                        help="run only this lab (repeatable; default: all of them in order)")
    # None / False = "not given": each lab keeps its own default.
    cli.add_common_arguments(parser, epochs=None, batch_size=None, lr=None, optimizer=None,
                             schedule=None)
    parser.set_defaults(seed=None, data_source=None, strategy=None)
    return parser


def _overrides_for(lab_name, arguments):
    given = {key: value for key, value in vars(arguments).items()
             if key != "lab" and value not in (None, False)}
    if arguments.out is not None:
        given["out"] = str(pathlib.Path(arguments.out) / lab_name)
    return given


def run_week(lab_names, arguments):
    """Run the labs one after another; return one summary row per lab."""
    rows = []
    for lab_name in arguments.lab or lab_names:
        lab = importlib.import_module(f"labs.{lab_name}")
        started = time.time()
        print(f"\n=== {lab_name} ===")
        try:
            metrics = lab.run(cli.make_config(lab.parser, **_overrides_for(lab_name, arguments)))
        except (cli.UsageError, DataError) as error:
            cli.report_error(lab_name, error)
            metrics = {"error": str(error)}
        except Exception as error:  # one broken lab must not cost the rest of the week
            traceback.print_exc()
            metrics = {"error": f"{type(error).__name__}: {error}"}
        reference = lab.REFERENCE
        rows.append({"lab": lab_name, "metric": reference["metric"],
                     "value": metrics.get(reference["metric"]), "course": reference.get("course"),
                     "wall_seconds": round(time.time() - started, 1),
                     "run_dir": metrics.get("run_dir", metrics.get("error", ""))})
    return rows


def format_table(rows):
    headers = ["lab", "metric", "value", "course", "wall_seconds", "run_dir"]
    cells = [[("—" if row[key] is None else str(row[key])) for key in headers] for row in rows]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def main(week, lab_names, argv=None):
    parser = week_parser(week, lab_names)
    try:
        arguments = parser.parse_args(argv)
    except cli.UsageError as error:
        cli.report_error(parser.prog, error)
        return 2
    started = time.time()
    rows = run_week(lab_names, arguments)
    print(f"\n{week}: {len(rows)} lab(s) in {time.time() - started:.0f} s\n")
    print(format_table(rows))
    return 1 if any(row["value"] is None for row in rows) else 0
