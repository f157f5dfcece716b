"""Running a whole week of labs from one command and summing it up in a table.

``labs/weekN.py`` lists its labs and calls ``main``.  The week's command takes
every option of its labs, so nobody has to switch to a lab's own command for
one flag: the common flags go to every lab, a lab's own option only to the
labs that have it, and an option left out keeps each lab's own default.  Each
lab runs in this process; a lab that fails is reported and skipped so the
rest of the week still runs.
"""
import argparse
import copy
import importlib
import pathlib
import pkgutil
import re
import time
import traceback

from dlcourse import cli
from dlcourse.data import DataError


def load_labs(lab_names):
    return {name: importlib.import_module(f"labs.{name}") for name in lab_names}


def lab_options(lab):
    """The lab's options as argparse actions, by setting name (``dest``); ``--help`` left out."""
    # argparse has no public list of a parser's actions; _actions is the one it keeps.
    return {action.dest: action for action in lab.parser._actions
            if action.option_strings and action.dest != "help"}


def _help_with_default(action):
    """The lab's help text with the lab's default written in (the week's copy has none)."""
    default = str(action.default).replace("%", "%%")
    text = action.help or ""
    if "%(default)s" in text:  # BooleanOptionalAction writes this placeholder itself
        return text.replace("%(default)s", default)
    if "default" in text:  # the lab's help already says it in words
        return text
    return f"{text} (default: {default})"


def _same_option(actions):
    """Whether several labs' copies of one option read a value the same way."""
    def shape(action):
        return type(action), action.option_strings, action.type, action.choices, action.nargs, action.const
    return all(shape(action) == shape(actions[0]) for action in actions)


def week_parser(week, labs):
    """``--lab``, the common flags and every option of ``labs`` ({name: module}).

    Options not given are left out of the parsed namespace, so each lab keeps
    its own default for them.
    """
    parser = cli.OneLineParser(
        prog=f"python -m labs.{week}",
        description=f"Run the labs of {week} one after another and print a summary table.  "
                    "Every option of a lab can be given here: the common options go to every "
                    "lab, the others only to the labs named in their section; an option left "
                    "out keeps each lab's own default.")
    parser.add_argument("--lab", action="append", choices=list(labs),
                        help="run only this lab (repeatable; default: all of them in order)")
    owners = {}  # setting → the labs that have it, in the week's order
    for name, lab in labs.items():
        for setting in lab_options(lab):
            owners.setdefault(setting, []).append(name)
    common = [setting for setting in owners if setting in cli.COMMON_SETTINGS]
    shared = [setting for setting in owners if setting not in common and len(owners[setting]) > 1]
    sections = [("options of every lab (unset: each lab's own default; --out DIR: each lab in "
                 "DIR/<lab>)", common),
                ("options of several labs (given only to the labs named)", shared)]
    sections += [(f"options of {name} only", [setting for setting in owners if setting not in common
                                               and owners[setting] == [name]]) for name in labs]
    for title, settings in sections:
        if not settings:
            continue
        group = parser.add_argument_group(title)
        for setting in settings:
            actions = [lab_options(labs[name])[setting] for name in owners[setting]]
            if not _same_option(actions):
                raise TypeError(f"{week}: {', '.join(owners[setting])} define "
                                f"{actions[0].option_strings[0]} differently; give it one type and choices")
            option = copy.copy(actions[0])
            option.default, option.required = argparse.SUPPRESS, False
            if setting in shared:
                option.help = "; ".join(f"{name}: {_help_with_default(action)}"
                                        for name, action in zip(owners[setting], actions, strict=True))
            elif setting not in common:
                option.help = _help_with_default(actions[0])
            group._add_action(option)  # a copy of the lab's own option: same type, choices, nargs
    return parser


def week_labs():
    """``{week: its lab names}`` for every ``labs/weekN.py``, to say where an option belongs."""
    package = importlib.import_module("labs")
    weeks = sorted((module.name for module in pkgutil.iter_modules(package.__path__)
                    if re.fullmatch(r"week\d+", module.name)), key=lambda name: int(name[4:]))
    return {week: importlib.import_module(f"labs.{week}").LABS for week in weeks}


def _option_strings(lab):
    return {string for action in lab_options(lab).values() for string in action.option_strings}


def _not_an_option_of(option, selected):
    """The one-line error for an ``option`` none of the ``selected`` labs has: who has it."""
    owners = [f"{name} ({week})" for week, names in week_labs().items() for name in names
              if option in _option_strings(importlib.import_module(f"labs.{name}"))]
    if not owners:
        return f"unrecognized arguments: {option} (no lab has this option)"
    return f"{option} is an option of {', '.join(owners)}, not of {', '.join(selected)}"


def parse_week_arguments(parser, labs, argv):
    """``(selected lab names, given settings)``; ``UsageError`` for an option no selected lab has."""
    arguments, unknown = parser.parse_known_args(argv)
    selected = arguments.lab or list(labs)
    given = {setting: value for setting, value in vars(arguments).items() if setting != "lab"}
    if unknown:
        options = [token.split("=")[0] for token in unknown if token.startswith("-")]
        if not options:
            raise cli.UsageError(f"unrecognized arguments: {' '.join(unknown)}")
        raise cli.UsageError(_not_an_option_of(options[0], selected))
    actions = {setting: action for lab in labs.values() for setting, action in lab_options(lab).items()}
    for setting in given:
        if not any(setting in lab_options(labs[name]) for name in selected):
            raise cli.UsageError(_not_an_option_of(actions[setting].option_strings[0], selected))
    return selected, given


def overrides_for(lab_name, lab, given):
    """The settings given on the command line that this lab has; ``--out`` gets a folder per lab."""
    overrides = {setting: value for setting, value in given.items() if setting in lab_options(lab)}
    if "out" in overrides:
        overrides["out"] = str(pathlib.Path(overrides["out"]) / lab_name)
    return overrides


def run_week(labs, selected, given):
    """Run the ``selected`` labs one after another; return one summary row per lab."""
    rows = []
    for lab_name in selected:
        lab = labs[lab_name]
        started = time.time()
        print(f"\n=== {lab_name} ===")
        try:
            metrics = lab.run(cli.make_config(lab.parser, **overrides_for(lab_name, lab, given)))
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
    labs = load_labs(lab_names)
    parser = week_parser(week, labs)
    try:
        selected, given = parse_week_arguments(parser, labs, argv)
    except cli.UsageError as error:
        cli.report_error(parser.prog, error)
        return 2
    started = time.time()
    rows = run_week(labs, selected, given)
    print(f"\n{week}: {len(rows)} lab(s) in {time.time() - started:.0f} s\n")
    print(format_table(rows))
    return 1 if any(row["value"] is None for row in rows) else 0
