"""The Gradescope autograder zip: built by the instructor's command, unpacked into an /autograder-shaped folder,
its setup check run offline, and its run_autograder run on the submissions Gradescope will hand it."""
import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from dlcourse.grading.jail import why_not
from dlcourse.grading.notebooks import BEGIN, END, load_lab, release
from tests.conftest import REPO

LAB = "week1_softmax_mnist"
SCHEMA = json.loads((REPO / "tests" / "fixtures" / "gradescope_results.schema.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.skipif(bool(why_not("namespaces") and why_not("uid")),
                                reason="no jail on this machine: python -m dlcourse.grading jail says why")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The zip as the instructor builds it, and its contents unpacked as Gradescope unpacks them."""
    folder = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([sys.executable, "-m", "dlcourse.grading", "autograder", "--lab", LAB,
                           "--out", folder / f"{LAB}-autograder.zip"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {folder / LAB}-autograder.zip" in done.stdout
    source = folder / "source"
    with zipfile.ZipFile(folder / f"{LAB}-autograder.zip") as archive:
        archive.extractall(source)
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & 0o111, f"{script} must be executable in the zip"
        (source / script).chmod(0o755)
    return folder / f"{LAB}-autograder.zip", source


def setup_check(source, python=sys.executable):
    environment = {**os.environ, "DLCOURSE_AUTOGRADER_PYTHON": python}
    return subprocess.run(["bash", str(source / "setup.sh")], env=environment, capture_output=True, text=True,
                          timeout=120)


def autograder(bundle, tmp_path, files=None, python=None):
    """Run run_autograder as Gradescope does, on a submission folder holding ``files``; its results.json."""
    _, source = bundle
    root = tmp_path / "autograder"
    shutil.copytree(source, root / "source", symlinks=True)
    assert setup_check(root / "source").returncode == 0
    if python is not None:
        (root / "source" / "python-path").write_text(python + "\n")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    if files is not None:
        (root / "submission").mkdir()
        for name, content in files.items():
            if isinstance(content, Path):  # a link the student handed in
                (root / "submission" / name).symlink_to(root / content)
                continue
            data = content if isinstance(content, bytes) else nbformat.writes(content).encode()
            (root / "submission" / name).write_bytes(data)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**environment, "DLCOURSE_AUTOGRADER_ROOT": str(root)})
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, SCHEMA)
    return results, done


def instructor():
    return nbformat.read(REPO / "notebooks" / f"{LAB}.ipynb", as_version=4)


def partly_solved():
    """The release with only the first exercise solved."""
    lab = load_lab(REPO / "notebooks" / f"{LAB}.ipynb")
    first = next(iter(lab.exercises))
    notebook = release(instructor())
    for cell in notebook.cells:
        grading = cell.metadata.get("grading", {})
        if grading.get("role") == "exercise" and grading.get("exercise") == first:
            cell.source = lab.exercises[first][1]
    return notebook, lab, first


def points(results, exercise=None):
    return sum(test["score"] for test in results["tests"]
               if exercise is None or test["extra_data"]["exercise"] == exercise)


def test_the_zip_holds_no_solution_and_what_gradescope_needs(bundle):
    path, source = bundle
    names = set(zipfile.ZipFile(path).namelist())
    assert {"setup.sh", "run_autograder", "requirements.txt", "autograder.json", "lab.json",
            "expected.json"} <= names
    assert "python/dlcourse/grading/worker.py" in names and "python/dlcourse/grading/wire.py" in names
    assert not [name for name in names if name.startswith(("notebooks/", "python/labs/", "python/data/"))]
    lab = load_lab(REPO / "notebooks" / f"{LAB}.ipynb")
    for exercise, (_, code) in lab.exercises.items():
        solution = code.split(BEGIN, 1)[1].split(END, 1)[0].strip()
        for name in names:
            assert solution not in (source / name).read_text(encoding="utf-8"), f"{exercise}'s solution in {name}"
    shipped = json.loads((source / "lab.json").read_text(encoding="utf-8"))
    hidden = [test for test in lab.tests if test.visibility == "hidden"]
    assert hidden and {test.name for test in hidden} <= {test["name"] for test in shipped["tests"]}
    pins = (source / "requirements.txt").read_text().split()
    assert all(line.count("==") == 1 for line in pins) and any(line.startswith("numpy==") for line in pins)
    # What the lab's training needs and grading does not stays out of the image.
    assert not [line for line in pins if line.split("==")[0].lower() in
                ("tensorflow", "keras", "matplotlib", "jupyterlab", "opencv-contrib-python-headless")]


def test_setup_check_passes_here_and_names_a_package_of_the_wrong_version(bundle, tmp_path):
    _, source = bundle
    done = setup_check(source)
    assert done.returncode == 0, done.stderr
    assert (source / "python-path").read_text().strip() == sys.executable
    broken = tmp_path / "source"
    shutil.copytree(source, broken)
    pins = (broken / "requirements.txt").read_text().split()
    pins = ["numpy==0.0.1" if line.startswith("numpy==") else line for line in pins]
    (broken / "requirements.txt").write_text("\n".join(pins) + "\n")
    done = setup_check(broken)
    assert done.returncode != 0
    assert "numpy is" in done.stderr and "pins 0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_reference_solution_gets_full_marks_and_the_release_nothing(bundle, tmp_path):
    results, done = autograder(bundle, tmp_path / "reference", {f"{LAB}.ipynb": instructor()})
    assert results["score"] == results["extra_data"]["max_score"] > 0
    assert all(test["status"] == "passed" for test in results["tests"])
    assert results["extra_data"]["seed"] == 0 and results["extra_data"]["jail"] != "unknown"
    assert f"{results['score']:g} / {results['score']:g}" in done.stdout  # the table the instructor sees
    released, _ = autograder(bundle, tmp_path / "release", {f"{LAB}.ipynb": release(instructor())})
    assert released["score"] == 0
    assert all("NotImplementedError" in test["output"] for test in released["tests"])
    assert {test["visibility"] for test in released["tests"]} == {"visible", "hidden"}


def test_a_partly_solved_notebook_gets_the_points_of_what_it_solved(bundle, tmp_path):
    notebook, lab, first = partly_solved()
    results, _ = autograder(bundle, tmp_path, {"my work (1).ipynb": notebook})  # one notebook, any name
    assert points(results) == points(results, first) == sum(test.points for test in lab.tests
                                                             if test.exercise == first)
    assert 0 < results["score"] < results["extra_data"]["max_score"]


@pytest.mark.parametrize("files, reason", [
    ({f"{LAB}.ipynb": b'{"cells": [ {"cell_type": "code", '}, "is not a readable notebook"),
    ({f"{LAB}.ipynb": b"\x89PNG\r\n\x1a\n not a notebook"}, "is not a readable notebook"),
    ({}, "no notebook (.ipynb)"),
    ({"answers.py": b"def softmax(x): return x\n"}, "no notebook (.ipynb)"),
    (None, "no notebook (.ipynb)"),  # no submission folder at all
], ids=["truncated", "binary", "empty folder", "not a notebook", "no folder"])
def test_a_broken_or_missing_submission_gets_zero_and_the_reason(bundle, tmp_path, files, reason):
    results, _ = autograder(bundle, tmp_path, files)
    assert results["score"] == 0 and reason in results["output"]
    assert results["tests"] and all(reason in test["output"] for test in results["tests"])


@pytest.mark.parametrize("target", ["source/expected.json", "source/lab.json", "source"])
def test_a_link_to_the_autograders_own_files_gets_zero_and_reads_nothing(bundle, tmp_path, target):
    """run_autograder runs as root: a submission must not make it read (and echo) the hidden values or tests."""
    results, done = autograder(bundle, tmp_path, {f"{LAB}.ipynb": Path(target)})
    # A link to a file is refused as a link; a link to a folder is not walked into: no notebook.
    reason = "no notebook (.ipynb)" if target == "source" else "is a symbolic link"
    assert results["score"] == 0 and reason in results["output"]
    assert all(reason in test["output"] for test in results["tests"])  # nothing of it was run
    shipped = json.loads((bundle[1] / "lab.json").read_text(encoding="utf-8"))
    hidden = [test["source"].strip() for test in shipped["tests"] if test["visibility"] == "hidden"]
    for text in (json.dumps(results, ensure_ascii=False), done.stdout, done.stderr):
        assert not [source for source in hidden if source in text]


def test_several_notebooks_the_one_named_after_the_lab_is_graded(bundle, tmp_path):
    results, _ = autograder(bundle, tmp_path / "named", {"scratch.ipynb": release(instructor()),
                                                         f"{LAB}.ipynb": instructor()})
    assert results["score"] == results["extra_data"]["max_score"]
    notebook, _, _ = partly_solved()
    results, _ = autograder(bundle, tmp_path / "unnamed", {"a.ipynb": notebook, "b.ipynb": instructor()})
    assert results["score"] == 0
    assert "2 notebooks handed in (a.ipynb, b.ipynb)" in results["output"] and f"{LAB}.ipynb" in results["output"]


def test_a_submission_that_kills_its_worker_still_gets_results(bundle, tmp_path):
    notebook = copy.deepcopy(instructor())
    lab = load_lab(REPO / "notebooks" / f"{LAB}.ipynb")
    first = next(iter(lab.exercises))
    for cell in notebook.cells:
        if cell.metadata.get("grading", {}).get("exercise") == first and \
                cell.metadata["grading"].get("role") == "exercise":
            cell.source = cell.source.replace(BEGIN, BEGIN + "\n    import os; os._exit(3)", 1)
    results, _ = autograder(bundle, tmp_path, {f"{LAB}.ipynb": notebook})
    lost = [test for test in results["tests"] if test["extra_data"]["exercise"] == first]
    assert lost and all(test["score"] == 0 and "exit code 3" in test["output"] for test in lost)
    assert points(results) == results["extra_data"]["max_score"] - sum(test["max_score"] for test in lost)


def test_when_the_autograder_itself_cannot_start_gradescope_still_gets_a_results_file(bundle, tmp_path):
    results, _ = autograder(bundle, tmp_path, {f"{LAB}.ipynb": instructor()}, python="/nonexistent/python3")
    assert results["score"] == 0
    assert "not a problem with your work" in results["output"]
