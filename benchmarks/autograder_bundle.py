"""The Gradescope autograder zip of one lab: how big it is, how long it takes to build, and to grade one submission.

Builds the zip with the instructor's command, unpacks it into a temporary
``/autograder``-shaped folder, runs ``setup.sh``'s check against this
machine's Python (``DLCOURSE_AUTOGRADER_PYTHON``: nothing is downloaded),
then runs ``run_autograder`` as Gradescope does on the instructor's notebook
(full marks expected) and on the release (zero expected), and prints what it
measured as JSON.

    python benchmarks/autograder_bundle.py --lab week1_softmax_mnist
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

from dlcourse.grading.notebooks import release

REPO = Path(__file__).resolve().parents[1]


def timed(command, **options):
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def grade_in_bundle(source, folder, notebook, lab):
    root = folder / "autograder"
    shutil.copytree(source, root / "source")
    shutil.copy(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    nbformat.write(notebook, root / "submission" / f"{lab}.ipynb")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    seconds = timed([str(root / "run_autograder")], cwd=root,
                    env={**environment, "DLCOURSE_AUTOGRADER_ROOT": str(root)})
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    return seconds, results["score"], results["extra_data"]["max_score"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="week1_softmax_mnist")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        bundle = folder / f"{args.lab}-autograder.zip"
        build_seconds = timed([sys.executable, "-m", "dlcourse.grading", "autograder", "--lab", args.lab,
                               "--out", str(bundle)], cwd=REPO)
        source = folder / "source"
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(source)
            files = len(archive.namelist())
        for script in ("setup.sh", "run_autograder"):
            (source / script).chmod(0o755)
        check_seconds = timed(["bash", str(source / "setup.sh")],
                              env={**os.environ, "DLCOURSE_AUTOGRADER_PYTHON": sys.executable})
        instructor = nbformat.read(REPO / "notebooks" / f"{args.lab}.ipynb", as_version=4)
        full_seconds, full, max_score = grade_in_bundle(source, folder / "reference", instructor, args.lab)
        zero_seconds, zero, _ = grade_in_bundle(source, folder / "release", release(instructor), args.lab)
        pins = (source / "requirements.txt").read_text().split()
        measured = {"lab": args.lab, "zip_kib": round(bundle.stat().st_size / 1024, 1), "files": files,
                    "pinned_packages": len(pins), "build_seconds": round(build_seconds, 1),
                    "setup_check_seconds": round(check_seconds, 1),
                    "grade_reference_seconds": round(full_seconds, 1), "reference_score": f"{full:g}/{max_score:g}",
                    "grade_release_seconds": round(zero_seconds, 1), "release_score": f"{zero:g}/{max_score:g}"}
    print(json.dumps(measured))
    if full != max_score or zero != 0:
        sys.exit("unexpected scores")


if __name__ == "__main__":
    main()
