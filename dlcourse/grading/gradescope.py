"""Gradescope's autograder for one lab: the zip an instructor uploads, and what it runs for each submission.

``python -m dlcourse.grading autograder --lab LAB --out LAB-autograder.zip`` writes::

    setup.sh          Gradescope runs it once, as root, to build the image: Python, the pinned packages, a check
    run_autograder    Gradescope runs it for every submission; it always leaves results/results.json
    requirements.txt  every package grading imports and what those need, pinned to the versions that
                      computed the reference values
    autograder.json   the lab, the grading seed, the limits, the Python version
    lab.json          the graded cells: setup, helpers and tests (hidden ones too); exercise cells as released
    expected.json     the reference solution's value for every test, computed when the zip was built
    python/           the course's modules that grading imports, and nothing else of the repository

No solution is in the zip: the reference values are computed on the
instructor's machine while building it (with the same grading seed), so the
image holds values, not code that produces them.  The build also records
what grading really imports (in a separate process, ``survey``): the
course's modules become ``python/``, and the packages, with everything they
require, become ``requirements.txt`` — nothing the lab's training needs if
grading does not.

Inside Gradescope everything lives under ``/autograder`` (``--root``, or
``DLCOURSE_AUTOGRADER_ROOT`` for the scripts, so tests can use a temporary
folder): ``source/`` (the zip), ``submission/`` (the student's files),
``results/results.json`` (what Gradescope reads).  ``run`` grades with the
same code as ``python -m dlcourse.grading grade`` and writes a results file
whatever happens: a missing, empty or broken submission scores 0 with the
reason; a failure of the autograder itself scores 0 and says it is not the
student's fault.
"""
import argparse
import ast
import dataclasses
import importlib.metadata
import json
import os
import shlex
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from string import Template

from dlcourse.files import atomic_write
from dlcourse.grading import wire
from dlcourse.grading.grader import grade_submission, reference_values
from dlcourse.grading.jail import UID_BASE, JailError, choose_jail, readable_by
from dlcourse.grading.notebooks import (
    Lab,
    NotebookError,
    Test,
    load_lab,
    parse,
    strip_solutions,
)
from dlcourse.grading.results import gradescope_json, score_table
from dlcourse.grading.sandbox import CODE_FILES, Limits

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds dlcourse/ and labs/
GRADESCOPE_ROOT = "/autograder"
SUBMISSION_NAME = "submission"


# --- what grading needs ---------------------------------------------------------------------------

def survey(lab_data, seed):
    """Grade the reference solution here and report what that took: values, modules, packages, data files.

    Run in a process of its own (``python -m dlcourse.grading.gradescope
    survey``, the lab as ``lab_to_json(lab, solutions=True)`` on stdin), so
    that what it imported is what grading imports.
    """
    opened = set()

    def note_open(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.add(os.fsdecode(args[0]))
    sys.addaudithook(note_open)
    lab = lab_from_json(lab_data)
    expected = reference_values(lab, Limits(), choose_jail("auto", trusted=True), seed)
    modules = {_course_file(getattr(module, "__file__", None)) for module in list(sys.modules.values())}
    modules = sorted(filter(None, modules | {_course_file(path) for path in CODE_FILES}))
    data_files = sorted({relative for relative in map(_course_file, opened) if relative
                         and Path(relative).suffix not in (".py", ".pyc", ".ipynb")
                         and (PACKAGE_ROOT / relative).is_file()})
    # The packages the course's code and the cells import by name; what those need comes from their metadata,
    # not from what they happened to import here (Keras loads IPython or OpenCV only when they are installed).
    top_level = set()
    for code in [lab.setup, *lab.helpers, *(test.source for test in lab.tests),
                 *((PACKAGE_ROOT / relative).read_text(encoding="utf-8") for relative in modules)]:
        top_level |= _imported_modules(code)
    distributions = _distributions_of(top_level)
    if "keras" in sys.modules:  # Keras needs a backend but does not require one: the one that computed the values
        distributions.add({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[
            sys.modules["keras"].config.backend()])
    return {"expected": {name: wire.encode(value) for name, value in expected.items()},
            "modules": modules, "data_files": data_files,
            "distributions": sorted(distributions)}


def _course_file(path):
    """``path`` relative to the repository when it is the course's code or data (not .venv), else None."""
    if not path:
        return None
    try:
        relative = Path(path).resolve().relative_to(PACKAGE_ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts[0] in ("dlcourse", "labs", "data") else None


def _imported_modules(code):
    names = set()
    for node in ast.walk(parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _distributions_of(module_names):
    """The installed distributions that provide these top-level modules (the standard library has none)."""
    provided_by = importlib.metadata.packages_distributions()
    own = {"dlcourse", "labs"}
    return {distribution for name in module_names if name not in own
            for distribution in provided_by.get(name, [])}


def pinned_requirements(distributions):
    """``name==version`` for these distributions and everything they require here, sorted by name.

    Requirements are followed as this machine's pip resolved them (markers
    evaluated for this Python and platform; extras not requested are left out).
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    pinned, waiting = {}, list(distributions)
    while waiting:
        name = waiting.pop()
        key = canonicalize_name(name)
        if key in pinned:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement this machine does not have
        pinned[key] = f"{distribution.metadata['Name']}=={distribution.version}"
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                waiting.append(requirement.name)
    return [pinned[key] for key in sorted(pinned)]


# --- the lab without its solutions ----------------------------------------------------------------

def lab_to_json(lab, solutions=False):
    """The graded cells as data: tests (hidden ones too) as they are, exercise cells as the release has them.

    ``solutions=True`` keeps the reference code too: only for the build's own survey, never in the zip.
    """
    exercises = {}
    for exercise, (cell_id, code) in lab.exercises.items():
        exercises[exercise] = {"cell_id": cell_id, "released": strip_solutions(code, exercise),
                               "forbidden": list(lab.forbidden.get(exercise, ()))}
        if solutions:
            exercises[exercise]["solution"] = code
    return {"name": lab.name, "setup": lab.setup, "helpers": lab.helpers, "exercises": exercises,
            "student_names": lab.student_names, "tests": [dataclasses.asdict(test) for test in lab.tests]}


def lab_from_json(data):
    return Lab(name=data["name"], setup=data["setup"], helpers=list(data["helpers"]),
               exercises={exercise: (cell["cell_id"], cell.get("solution", cell["released"]))
                          for exercise, cell in data["exercises"].items()},
               forbidden={exercise: tuple(cell["forbidden"]) for exercise, cell in data["exercises"].items()},
               tests=[Test(**test) for test in data["tests"]], names=list(data["student_names"]))


# --- building the zip -----------------------------------------------------------------------------

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
# It installs Python $python_version and exactly the packages in requirements.txt
# (into $$DLCOURSE_AUTOGRADER_VENV, default /opt/dlcourse-autograder, readable by
# the unprivileged uids the submissions run as), then checks the result.
# DLCOURSE_AUTOGRADER_PYTHON=/path/to/python skips the installation and only
# checks that interpreter (an image prepared another way; the course's tests).
set -euo pipefail
SOURCE="$$(cd "$$(dirname "$${BASH_SOURCE[0]}")" && pwd)"
VERSION=$python_version
PYTHON="$${DLCOURSE_AUTOGRADER_PYTHON:-}"
if [ -z "$$PYTHON" ]; then
  VENV="$${DLCOURSE_AUTOGRADER_VENV:-/opt/dlcourse-autograder}"
  export DEBIAN_FRONTEND=noninteractive
  if command -v apt-get >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates >/dev/null || true
    command -v "python$$VERSION" >/dev/null \
      || apt-get install -y -qq --no-install-recommends "python$$VERSION" "python$$VERSION-venv" >/dev/null || true
  fi
  if command -v "python$$VERSION" >/dev/null && "python$$VERSION" -m venv "$$VENV"; then
    "$$VENV/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip
    "$$VENV/bin/python" -m pip install --quiet --no-cache-dir --no-deps -r "$$SOURCE/requirements.txt"
  else  # no Python $python_version from apt (e.g. Ubuntu 24.04): a standalone build through uv
    command -v pip3 >/dev/null || apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    python3 -m pip install --quiet --break-system-packages "uv==$uv_version" 2>/dev/null \
      || python3 -m pip install --quiet "uv==$uv_version"
    export UV_PYTHON_INSTALL_DIR=/opt/dlcourse-python
    python3 -m uv venv --python "$$VERSION" "$$VENV"
    python3 -m uv pip install --quiet --python "$$VENV/bin/python" --no-deps -r "$$SOURCE/requirements.txt"
  fi
  chmod -R a+rX "$$VENV"
  PYTHON="$$VENV/bin/python"
fi
PYTHONPATH="$$SOURCE/python" "$$PYTHON" -m dlcourse.grading.gradescope check --source "$$SOURCE"
printf '%s\n' "$$PYTHON" > "$$SOURCE/python-path"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission (as root, in /autograder).
# It always leaves results/results.json, even when Python itself cannot start.
ROOT="$${DLCOURSE_AUTOGRADER_ROOT:-$gradescope_root}"
SOURCE="$$ROOT/source"
PYTHON="$$(cat "$$SOURCE/python-path" 2>/dev/null || echo python3)"
mkdir -p "$$ROOT/results"
rm -f "$$ROOT/results/results.json"
PYTHONPATH="$$SOURCE/python" "$$PYTHON" -m dlcourse.grading.gradescope run --root "$$ROOT"
if [ ! -s "$$ROOT/results/results.json" ]; then
  cat > "$$ROOT/results/results.json" <<'JSON'
$fallback
JSON
fi
exit 0
"""


def _uv_version():
    try:
        return importlib.metadata.version("uv")
    except importlib.metadata.PackageNotFoundError:
        return "0.9.9"  # no uv here to take the version from: a release on PyPI (the uv branch is untried)


def build(lab_path, out_zip, seed=0, limits=None):
    """Write the autograder zip for the lab at ``lab_path``; a summary of what is in it."""
    lab_path, out_zip = Path(lab_path), Path(out_zip)
    limits = limits or Limits()
    lab = load_lab(lab_path)
    found = _run_survey(lab, seed)
    requirements = pinned_requirements(found["distributions"])
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    settings = {"lab": lab.name, "seed": seed, "limits": dataclasses.asdict(limits),
                "python": python_version, "max_score": lab.max_score, "tests": len(lab.tests),
                "built": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    fallback = json.dumps(failure_json(lab.name, "the autograder's Python did not start"), ensure_ascii=False,
                          indent=2)
    files = {
        "setup.sh": Template(SETUP_SH).substitute(python_version=python_version, uv_version=_uv_version()),
        "run_autograder": Template(RUN_AUTOGRADER).substitute(gradescope_root=GRADESCOPE_ROOT, fallback=fallback),
        "requirements.txt": "\n".join(requirements) + "\n",
        "autograder.json": json.dumps(settings, indent=2) + "\n",
        "lab.json": json.dumps(lab_to_json(lab), ensure_ascii=False, indent=1) + "\n",
        "expected.json": json.dumps(found["expected"], allow_nan=True) + "\n",
    }
    for relative in [*found["modules"], *found["data_files"]]:
        files[f"python/{relative}"] = (PACKAGE_ROOT / relative).read_bytes()
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_zip, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # the same zip for the same inputs
            info.external_attr = ((0o755 if name in ("setup.sh", "run_autograder") else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = files[name]
            bundle.writestr(info, data.encode("utf-8") if isinstance(data, str) else data)
    return {"zip": out_zip, "bytes": out_zip.stat().st_size, "requirements": len(requirements),
            "modules": len(found["modules"]), "data_files": found["data_files"], "tests": len(lab.tests),
            "max_score": lab.max_score, "python": python_version}


def _run_survey(lab, seed):
    import subprocess
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "dlcourse.grading.gradescope", "survey", "--seed", str(seed)],
                          input=json.dumps(lab_to_json(lab, solutions=True)), capture_output=True, text=True,
                          env=environment)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise NotebookError(f"grading the reference solution of {lab.name} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- inside Gradescope ----------------------------------------------------------------------------

def check(source):
    """The problems of this image, one line each: wrong Python, packages missing or of another version."""
    source = Path(source)
    settings = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
    problems = []
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != settings["python"]:
        problems.append(f"Python {running}, but the reference values were computed with Python {settings['python']}")
    for line in (source / "requirements.txt").read_text(encoding="utf-8").split():
        name, version = line.split("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} {version} is not installed")
            continue
        if installed != version:
            problems.append(f"{name} is {installed}, requirements.txt pins {version}")
    lab = json.loads((source / "lab.json").read_text(encoding="utf-8"))
    cells = [lab["setup"], *lab["helpers"], *(test["source"] for test in lab["tests"])]
    for module in sorted(set().union(*map(_imported_modules, cells)) - {"dlcourse", "labs"}):
        try:  # the cells' imports, Keras's backend included, load here as they will when grading
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any failure to import is this image's problem
            problems.append(f"the graded cells import {module}, which fails here: {type(error).__name__}: {error}")
    return problems


def failure_json(lab_name, reason, lab=None):
    """A results.json for a submission the autograder could not grade: 0 points, and why."""
    message = (f"{lab_name}: the autograder could not grade this submission ({reason}). "
               "This is not a problem with your work: ask your instructor to run the autograder again.")
    tests = [{"name": f"{test.exercise}: {test.name}", "score": 0, "max_score": test.points, "status": "failed",
              "output": message, "visibility": test.visibility,
              "extra_data": {"exercise": test.exercise, "test": test.name}} for test in (lab.tests if lab else [])]
    return {"score": 0, "execution_time": 0, "output": message, "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"lab": lab_name, "max_score": lab.max_score if lab else None, "failed": True}}


def hide(*paths):
    """Nobody but the grader (root) may read these: the graded cells, the values, the submission."""
    for top in paths:
        if not os.path.lexists(top):
            continue
        for folder, subfolders, files in os.walk(top, followlinks=False):
            for name in [*subfolders, *files]:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & 0o700)
        os.chmod(top, 0o700)


def run(root):
    """Grade ``root/submission`` and write ``root/results/results.json``, whatever happens; the exit status."""
    root = Path(root)
    source, submission, results = root / "source", root / SUBMISSION_NAME, root / "results" / "results.json"
    lab_name, lab, started = "this lab", None, time.monotonic()
    try:
        settings = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
        lab_name = settings["lab"]
        lab = lab_from_json(json.loads((source / "lab.json").read_text(encoding="utf-8")))
        expected = {name: wire.decode(value) for name, value
                    in json.loads((source / "expected.json").read_text(encoding="utf-8")).items()}
        submission.mkdir(exist_ok=True)  # nothing handed in: graded as an empty folder, with that reason
        if os.geteuid() == 0:
            hide(source, submission)
        jail = choose_jail("auto")
        if jail.name == "uid" and readable_by(UID_BASE, [source, submission]):
            raise JailError("the submission's uid could read the autograder's files")
        with tempfile.TemporaryDirectory(prefix="dlcourse-autograder-") as out:
            os.chmod(out, 0o700)
            result = grade_submission(lab, expected, submission, SUBMISSION_NAME, Limits(**settings["limits"]),
                                      jail, Path(out) / SUBMISSION_NAME, settings["seed"])
            log = Path(out) / SUBMISSION_NAME / "output.log"
            printed = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        report = gradescope_json(result, lab, jail)
        print(score_table([result], lab, jail))
        if any(line.strip() and not line.startswith("--- worker ") for line in printed.splitlines()):
            print("\nwhat the submission printed (first 20 KiB):\n" + printed[:20 << 10])
        status = 0
    except BaseException as error:  # noqa: BLE001 - whatever broke, Gradescope must get a results file
        traceback.print_exc()
        reason = (str(error) if isinstance(error, (NotebookError, JailError, OSError))
                  else f"{type(error).__name__}: {error}")
        report = failure_json(lab_name, reason, lab)
        report["execution_time"] = round(time.monotonic() - started, 2)
        status = 1
    results.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(results, encoding="utf-8") as out:
        out.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dlcourse.grading.gradescope",
                                     description="Inside the autograder zip: check the image, grade a submission.")
    commands = parser.add_subparsers(dest="command", required=True)
    found = commands.add_parser("survey", help="(used by the build) grade the reference solution on stdin")
    found.add_argument("--seed", type=int, default=0)
    checking = commands.add_parser("check", help="is this image's Python and every pinned package right?")
    checking.add_argument("--source", required=True)
    running = commands.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json")
    running.add_argument("--root", default=os.environ.get("DLCOURSE_AUTOGRADER_ROOT", GRADESCOPE_ROOT))
    args = parser.parse_args(argv)
    if args.command == "survey":
        print(json.dumps(survey(json.load(sys.stdin), args.seed), allow_nan=True))
        return 0
    if args.command == "check":
        problems = check(args.source)
        for problem in problems:
            print(f"autograder image: {problem}", file=sys.stderr)
        if not problems:
            print(f"autograder image: Python {sys.version.split()[0]} and every pinned package as built "
                  f"({shlex.quote(sys.executable)})")
        return 1 if problems else 0
    return run(args.root)


if __name__ == "__main__":
    sys.exit(main())
