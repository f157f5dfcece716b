"""The grader on a small lab made here: release, scores, and submissions that attack it.

The course's own notebooks are checked in ``test_grading_notebooks.py``.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from dlcourse.grading import compare as compare_module
from dlcourse.grading.grader import grade_all, reference_values, student_names
from dlcourse.grading.jail import Jail
from dlcourse.grading.notebooks import (
    NotebookError,
    forbidden_uses,
    load_lab,
    release_folder,
    strip_solutions,
    student_code,
)
from dlcourse.grading.results import write_class_csv, write_results
from dlcourse.grading.sandbox import Limits
from tests.conftest import REPO
from tests.grading_toy import DOUBLE_SOLUTION, FAST, JAIL, digest, graded, scores, submission, toy_notebook

DOUBLE_TESTS = ("double_small", "double_matrix")


@pytest.fixture
def toy(tmp_path):
    """The instructor's folder with the toy lab, and the loaded lab."""
    source = tmp_path / "instructor"
    source.mkdir()
    nbformat.write(toy_notebook(), source / "toy.ipynb")
    return source, load_lab(source / "toy.ipynb")


# --- release ------------------------------------------------------------------------------------

def test_strip_solutions_keeps_the_indentation_and_the_rest():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nz = 2\n"
    stripped = strip_solutions(code, "cell")
    assert stripped == "def f(x):\n    y = 1\n    raise NotImplementedError(\"여기를 채우세요\")\n\nz = 2\n"
    compile(stripped, "cell", "exec")


@pytest.mark.parametrize("code", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                  "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unpaired_markers_are_an_error(code):
    with pytest.raises(NotebookError, match="SOLUTION"):
        strip_solutions(code, "cell 3")


def test_release_strips_solutions_and_hidden_tests_and_keeps_the_rest(toy, tmp_path):
    source, _ = toy
    written = release_folder(source, tmp_path / "student")
    instructor = nbformat.read(source / "toy.ipynb", as_version=4)
    student = nbformat.read(written[0], as_version=4)
    text = written[0].read_text(encoding="utf-8")
    assert "SOLUTION" not in text and "2 * np.asarray" not in text and "np.sum" not in text
    assert "double_matrix" not in text and "total_matrix" not in text and '"hidden"' not in text
    kept = [cell for cell in instructor.cells
            if cell.metadata.get("grading", {}).get("visibility") != "hidden"]
    assert len(student.cells) == len(kept) == len(instructor.cells) - 2
    for before, after in zip(kept, student.cells):
        assert before.id == after.id and before.metadata == after.metadata
        if before.metadata.get("grading", {}).get("role") != "exercise":
            assert before.source == after.source
        else:
            assert "raise NotImplementedError" in after.source


def test_releasing_twice_gives_identical_files(toy, tmp_path):
    source, _ = toy
    first = [path.read_bytes() for path in release_folder(source, tmp_path / "a")]
    second_paths = release_folder(source, tmp_path / "a")
    assert first == [path.read_bytes() for path in second_paths]


def test_release_never_writes_over_the_instructor_notebooks(toy):
    source, _ = toy
    before = digest(source / "toy.ipynb")
    with pytest.raises(NotebookError, match="overwrite"):
        release_folder(source, source)
    assert digest(source / "toy.ipynb") == before


def test_a_test_must_end_with_the_value_to_compare(tmp_path):
    notebook = toy_notebook()
    notebook.cells[4].source = "assert double([1]).shape == (1,)"
    nbformat.write(notebook, tmp_path / "bad.ipynb")
    with pytest.raises(NotebookError, match="must end with an expression"):
        load_lab(tmp_path / "bad.ipynb")


# --- comparing values -------------------------------------------------------------------------

@pytest.mark.parametrize("expected, actual, same", [
    (1.0, 1.0 + 1e-9, True),
    (1.0, 1.1, False),
    (np.array([[1.0, 2.0]]), np.array([[1, 2]]), True),
    (np.array([1.0, 2.0]), np.array([[1.0, 2.0]]), False),
    (np.array([1.0, 2.0]), "1 2", False),
    (np.array([True, False]), np.array([True, True]), False),
    ([1, "a"], [1, "a"], True),
    ((1, "a"), [1, "a"], True),
    ([1, "a"], [1, "b"], False),
    ([1, 2], [1], False),
    ({"a": 1}, {"a": 1, "b": 2}, False),
    ({"a": np.ones(2)}, {"a": np.ones(2)}, True),
    (None, 0, False),
    (float("nan"), float("nan"), True),
    (np.array(["a", "b"]), np.array(["a", "c"]), False),
])
def test_compare(expected, actual, same):
    assert compare_module.compare(expected, actual, rtol=1e-5, atol=1e-7)[0] is same


def test_a_mismatch_says_what_differs_but_not_the_expected_value():
    same, reason = compare_module.compare(np.array([0.125, 7.5]), np.array([0.125, 9.0]), 1e-5, 1e-7)
    assert not same and "index (1,)" in reason and "7.5" not in reason


# --- grading ----------------------------------------------------------------------------------

def test_reference_scores_full_marks_and_the_release_zero(toy, tmp_path):
    source, lab = toy
    release_folder(source, tmp_path / "student")
    expected = reference_values(lab, FAST, JAIL)
    results = grade_all(lab, expected, [source / "toy.ipynb", tmp_path / "student" / "toy.ipynb"],
                        FAST, tmp_path / "out", jail=JAIL, progress=False)
    assert [result.score for result in results] == [5, 0]
    assert all(result.max_score == 5 for result in results)
    assert all("NotImplementedError" in test.output for test in results[1].tests)


def test_a_wrong_answer_loses_exactly_its_tests(toy, tmp_path):
    _, lab = toy
    wrong_shape = submission(tmp_path, "flat", "def double(x):\n    return 2 * np.ravel(x)\n")
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [wrong_shape], FAST, tmp_path / "out",
                        jail=JAIL, progress=False)
    assert scores(results)["flat"] == {"double_small": 1, "double_matrix": 0, "total_small": 1,
                                       "total_matrix": 1}
    assert "shape (6,)" in results[0].tests[1].output


@pytest.mark.parametrize("code, used", [
    ("import statistics\ndef total(x):\n    return statistics.fsum(x)", ["statistics"]),
    ("from statistics import fsum as f", ["statistics"]),
    ("def total(x):\n    return __import__('statistics').fsum(x)", ["statistics"]),
    ("import math\ndef total(x):\n    return math.statistics", ["statistics"]),
    ("def total(x):\n    statistic = sum(x)  # statistics by hand\n    return statistic", []),
])
def test_forbidden_modules_are_found_however_they_are_named(code, used):
    assert forbidden_uses(code, ("statistics",)) == used


def test_an_exercise_that_uses_a_forbidden_module_scores_zero_and_the_rest_counts(tmp_path):
    notebook = toy_notebook()
    total = next(cell for cell in notebook.cells if cell.metadata.get("grading", {}).get("role") == "exercise"
                 and cell.metadata["grading"]["exercise"] == "total")
    total.metadata["grading"]["forbidden"] = ["statistics"]
    nbformat.write(notebook, tmp_path / "toy.ipynb")
    lab = load_lab(tmp_path / "toy.ipynb")
    assert lab.forbidden == {"double": (), "total": ("statistics",)}
    imported = "import statistics\ndef total(x):\n    return float(statistics.fsum(x))\n"
    assembled = "def total(x):\n    return float(__import__('stat' + 'istics').fsum(x))\n"
    students = [submission(tmp_path, name, "def double(x):\n" + DOUBLE_SOLUTION, code, notebook)
                for name, code in (("imported", imported), ("assembled", assembled), ("honest", None))]
    results = grade_all(lab, reference_values(lab, FAST, JAIL), students, FAST, tmp_path / "out",
                        jail=JAIL, progress=False)
    assert scores(results) == {
        "imported": {"double_small": 1, "double_matrix": 2, "total_small": 0, "total_matrix": 0},
        "assembled": {"double_small": 1, "double_matrix": 2, "total_small": 0, "total_matrix": 0},
        "honest": {"double_small": 1, "double_matrix": 2, "total_small": 1, "total_matrix": 1}}
    imported_total = results[0].tests[2].output
    assert "uses statistics, which this exercise does not allow" in imported_total
    assert "blocked by the grader: import statistics" in results[1].tests[2].output


def test_a_slow_worker_start_does_not_count_against_the_first_test(tmp_path):
    """Importing Keras in the setup cell can take longer than a test may: only the test is timed."""
    notebook = toy_notebook()
    setup = next(cell for cell in notebook.cells if cell.metadata.get("grading", {}).get("role") == "setup")
    setup.source = "import time\nimport numpy as np\ntime.sleep(2.5)  # a slow import"
    nbformat.write(notebook, tmp_path / "toy.ipynb")
    lab = load_lab(tmp_path / "toy.ipynb")
    limits = Limits(test_seconds=1.5, submission_seconds=60, memory_mib=2048, output_bytes=64 << 10)
    student = submission(tmp_path, "kim", "def double(x):\n" + DOUBLE_SOLUTION, notebook=notebook)
    results = grade_all(lab, reference_values(lab, limits, JAIL), [student], limits, tmp_path / "out",
                        jail=JAIL, progress=False)
    assert results[0].score == lab.max_score, [(test.name, test.output) for test in results[0].tests]


def test_a_test_with_a_timeout_of_its_own_gives_a_slow_call_that_time(tmp_path):
    """A test that trains a model says "timeout": its calls may use it, not only --test-timeout."""
    notebook = toy_notebook()
    first = next(cell for cell in notebook.cells if cell.metadata.get("grading", {}).get("test") == "double_small")
    first.metadata["grading"]["timeout"] = 5
    nbformat.write(notebook, tmp_path / "toy.ipynb")
    lab = load_lab(tmp_path / "toy.ipynb")
    limits = Limits(test_seconds=1.0, submission_seconds=60, memory_mib=2048, output_bytes=64 << 10)
    slow = "import time\ndef double(x):\n    time.sleep(1.5)  # training\n" + DOUBLE_SOLUTION
    student = submission(tmp_path, "kim", slow, notebook=notebook)
    results = grade_all(lab, reference_values(lab, limits, JAIL), [student], limits, tmp_path / "out", jail=JAIL,
                        progress=False)
    assert scores(results)["kim"]["double_small"] == 1, results[0].tests[0].output
    assert scores(results)["kim"]["double_matrix"] == 0 and "time" in results[0].tests[1].output


# Each adversarial submission breaks `double` (3 points) and keeps `total` right (2 points).
ATTACKS = {
    "raises": ("def double(x):\n    raise ValueError('no')\n", "ValueError"),
    "loops_in_function": ("def double(x):\n    while True:\n        pass\n", "time limit"),
    "loops_in_cell": ("while True:\n    try:\n        pass\n    except BaseException:\n        pass\n",
                      "time limit"),
    "sys_exit": ("import sys\ndef double(x):\n    sys.exit(0)\n", "SystemExit"),
    "os_exit_in_function": ("import os\ndef double(x):\n    os._exit(0)\n", "exit code 0"),
    "os_exit_in_cell": ("import os\nos._exit(3)\n", "exit code 3"),
    "prints_megabytes": ("def double(x):\n    print('x' * 5_000_000)\n" + DOUBLE_SOLUTION, "File too large"),
    "fills_memory": ("def double(x):\n    block = np.ones(1 << 31)\n" + DOUBLE_SOLUTION, "MemoryError"),
    "deletes_the_instructor_notebook": (
        "import os\ndef double(x):\n    os.remove({instructor!r})\n" + DOUBLE_SOLUTION, "blocked"),
    "deletes_the_results_folder": (
        "import shutil\ndef double(x):\n    shutil.rmtree({out!r})\n" + DOUBLE_SOLUTION, "blocked"),
    "overwrites_another_submission": (
        "def double(x):\n    open({good!r}, 'w').write('{{}}')\n" + DOUBLE_SOLUTION, "blocked"),
    "reads_the_hidden_tests": (
        "import json\ndef double(x):\n    json.load(open({instructor!r}))\n" + DOUBLE_SOLUTION, "blocked"),
    "reads_the_course_solution": (
        "def double(x):\n    open({numpy_net!r}).read()\n" + DOUBLE_SOLUTION, "the course's code"),
    "imports_the_course_solution": (
        "from dlcourse.numpy_net import relu\ndef double(x):\n" + DOUBLE_SOLUTION, "import dlcourse"),
    "writes_its_own_results": (
        "open({own_results!r}, 'w').write('{{\"score\": 99}}')\ndef double(x):\n" + DOUBLE_SOLUTION,
        "blocked"),
    "patches_the_checks": ("np.allclose = lambda *a, **k: True\nnp.array_equal = np.allclose\n"
                           "def double(x):\n    return 3 * np.asarray(x)\n", "differs"),
    "writes_into_the_grader_channel": (
        "import os\ndef double(x):\n    for fd in range(3, 20):\n        try:\n"
        "            os.write(fd, b'{{\"value\": 1}}\\n')\n        except OSError:\n            pass\n"
        + DOUBLE_SOLUTION, "channel"),
    "kills_the_grader": ("import os, signal\ndef double(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                         + DOUBLE_SOLUTION, "blocked"),
    "starts_a_process": ("import subprocess\ndef double(x):\n    subprocess.run(['rm', '-rf', {out!r}])\n"
                         + DOUBLE_SOLUTION, "blocked"),
    "uses_the_network": ("import socket\ndef double(x):\n    socket.create_connection(('127.0.0.1', {port}))\n"
                         + DOUBLE_SOLUTION, "blocked"),
}


@pytest.fixture(scope="module")
def listener():
    """A TCP server on 127.0.0.1 that counts the connections it gets."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_attacks_cost_only_what_they_broke_and_the_grader_finishes(toy, tmp_path, listener):
    source, lab = toy
    port, accepted = listener
    out = tmp_path / "out"
    good = submission(tmp_path, "good", "def double(x):\n" + DOUBLE_SOLUTION)
    paths = {"instructor": str(source / "toy.ipynb"), "out": str(out), "good": str(good), "port": port,
             "numpy_net": str(REPO / "dlcourse" / "numpy_net.py")}
    attacks = []
    for name, (code, _) in ATTACKS.items():
        attacks.append(submission(tmp_path, name, code.format(
            **paths, own_results=str(out / name / "results.json"))))
    watched = {path: digest(path) for path in [source / "toy.ipynb", good]}
    expected = reference_values(lab, FAST, JAIL)

    results = grade_all(lab, expected, [good, *attacks], FAST, out, jobs=2, jail=JAIL, progress=False)
    write_results(results, lab, out)

    by_student = {result.student: result for result in results}
    assert by_student["good"].score == 5
    for name, (_, reason) in ATTACKS.items():
        result = by_student[name]
        lost = {test.name: test.output for test in result.tests if test.score == 0}
        assert set(lost) == set(DOUBLE_TESTS), (name, lost)
        assert all(reason in output for output in lost.values()), (name, lost)
        saved = json.loads((out / name / "results.json").read_text(encoding="utf-8"))
        assert saved["score"] == 2 and saved["extra_data"]["max_score"] == 5, name
    assert {path: digest(path) for path in watched} == watched, "no file of the grader's was changed"
    assert not accepted, "no submission reached the network"


def test_every_other_submission_is_scored_after_a_crash(toy, tmp_path):
    _, lab = toy
    crash = submission(tmp_path, "crash", "import os\nos._exit(1)\n", "import os\nos._exit(1)\n")
    good = submission(tmp_path, "good", "def double(x):\n" + DOUBLE_SOLUTION)
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [crash, good, crash], FAST, tmp_path / "out",
                        jail=JAIL, progress=False)
    assert [result.score for result in results] == [0, 5, 0]
    assert [result.student for result in results] == ["crash", "good", "crash-2"]


def test_submissions_that_are_not_usable_notebooks_get_zero_with_a_reason(toy, tmp_path):
    _, lab = toy
    corrupt = tmp_path / "corrupt.ipynb"
    corrupt.write_text('{"cells": [', encoding="utf-8")
    folder = tmp_path / "kim"
    folder.mkdir()
    (folder / "notes.txt").write_text("no notebook here")
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [corrupt, folder], FAST, tmp_path / "out",
                        jail=JAIL, progress=False)
    assert [result.score for result in results] == [0, 0]
    assert "not a readable notebook" in results[0].problem
    assert "no notebook (.ipynb)" in results[1].problem and "hand in toy.ipynb" in results[1].problem


def test_a_folder_submission_and_cells_found_by_id_when_the_metadata_is_gone(toy, tmp_path):
    _, lab = toy
    path = submission(tmp_path, "lee", "def double(x):\n" + DOUBLE_SOLUTION)
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("grading", {}).get("role") == "exercise":
            del cell.metadata["grading"]
    folder = tmp_path / "lee_folder"
    folder.mkdir()
    nbformat.write(notebook, folder / "toy.ipynb")
    assert set(student_code(folder / "toy.ipynb", lab)) == {"double", "total"}
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [folder], FAST, tmp_path / "out", jail=JAIL,
                        progress=False)
    assert results[0].student == "lee_folder" and results[0].score == 5


def test_a_missing_exercise_cell_loses_its_tests_with_a_reason(toy, tmp_path):
    _, lab = toy
    path = submission(tmp_path, "park", "def double(x):\n" + DOUBLE_SOLUTION)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells
                      if cell.metadata.get("grading", {}).get("exercise") != "total"
                      or cell.metadata["grading"]["role"] != "exercise"]
    nbformat.write(notebook, path)
    result = grade_all(lab, reference_values(lab, FAST, JAIL), [path], FAST, tmp_path / "out", jail=JAIL,
                       progress=False)[0]
    assert result.score == 3
    assert all("not found in the notebook" in test.output for test in result.tests if test.exercise == "total")


def test_results_json_and_the_class_csv(toy, tmp_path):
    source, lab = toy
    out = tmp_path / "out"
    expected = reference_values(lab, FAST, JAIL)
    first = grade_all(lab, expected, [source / "toy.ipynb"], FAST, out, jail=JAIL, progress=False)
    write_results(first, lab, out)
    write_class_csv(first, lab, out)
    second = grade_all(lab, expected, [submission(tmp_path, "choi", "def double(x):\n    return x\n")],
                       FAST, out, jail=JAIL, progress=False)
    write_class_csv(second, lab, out)
    saved = json.loads((out / "toy" / "results.json").read_text(encoding="utf-8"))
    assert saved["score"] == saved["extra_data"]["max_score"] == 5
    assert [(test["name"], test["visibility"]) for test in saved["tests"]] == [
        ("double: double_small", "visible"), ("double: double_matrix", "hidden"),
        ("total: total_small", "visible"), ("total: total_matrix", "hidden")]
    rows = (out / "toy_grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("student,score,max_score,double_small,double_matrix")
    assert [row.split(",")[:3] for row in rows[1:]] == [["choi", "2", "5"], ["toy", "5", "5"]]


def random_notebook():
    """A lab whose reference solution draws random numbers from Python's and NumPy's global generators."""
    notebook = toy_notebook()
    solution = "    return np.random.random(n) + random.random()\n"
    notebook.cells = [
        graded("import random\nimport numpy as np", role="setup"),
        graded("def noisy(n):\n    ### BEGIN SOLUTION\n" + solution + "    ### END SOLUTION\n",
               role="exercise", exercise="noisy"),
        graded("noisy(3)", role="test", test="one_call", exercise="noisy", points=1, visibility="visible"),
        graded("first = noisy(2)\nsecond = noisy(2)\nassert not np.allclose(first, second), 'two draws'\n"
               "[first, second]", role="test", test="two_calls", exercise="noisy", points=1, visibility="hidden"),
    ]
    for index, cell in enumerate(notebook.cells):
        cell.id = f"random-{index}"
    return notebook


def test_grading_is_reproducible_and_the_seed_is_recorded(tmp_path):
    """Each call starts from a seed named by the grading seed, the test and the call: same submission, same grade."""
    source = tmp_path / "instructor"
    source.mkdir()
    nbformat.write(random_notebook(), source / "random_lab.ipynb")
    lab = load_lab(source / "random_lab.ipynb")
    same = submission(tmp_path, "same", None, notebook=random_notebook(),
                      cells={"noisy": "def noisy(n):\n    return np.random.random(n) + random.random()\n"})
    other = submission(tmp_path, "other", None, notebook=random_notebook(),
                       cells={"noisy": "def noisy(n):\n    return np.random.random(n)\n"})
    # Draws once more than the reference after its first call: later calls must not feel it.
    extra = submission(tmp_path, "extra", None, notebook=random_notebook(), cells={"noisy": (
        "drawn = []\ndef noisy(n):\n    value = np.random.random(n) + random.random()\n"
        "    if not drawn:\n        drawn.append(np.random.random())\n    return value\n")})

    def grade(seed, out):
        expected = reference_values(lab, FAST, JAIL, seed)
        results = grade_all(lab, expected, [same, other, extra], FAST, out, jail=JAIL, progress=False, seed=seed)
        write_results(results, lab, out)
        return {result.student: json.loads((out / result.student / "results.json").read_text(encoding="utf-8"))
                for result in results}

    first, again, seven = grade(0, tmp_path / "first"), grade(0, tmp_path / "again"), grade(7, tmp_path / "seven")
    for saved in (first, again, seven):
        assert saved["same"]["score"] == saved["extra"]["score"] == 2  # drawn as the reference draws
        assert saved["other"]["score"] == 0
    for student in ("same", "other"):
        first[student].pop("execution_time"), again[student].pop("execution_time")
        assert first[student] == again[student]
    assert first["other"]["extra_data"]["seed"] == 0 and seven["other"]["extra_data"]["seed"] == 7
    assert first["other"]["tests"][0]["output"] != seven["other"]["tests"][0]["output"]  # other draws


def test_student_names_are_distinct_and_safe(tmp_path):
    (tmp_path / "a b").mkdir()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a b.ipynb").write_text("{}")
    assert student_names([tmp_path / "a b", tmp_path / "x" / "a b.ipynb"]) == ["a_b", "a_b-2"]
    assert student_names([tmp_path / "Report.ipynb"]) == ["Report-2"]  # report/ is the class report's


# --- the command line -------------------------------------------------------------------------

def grading_command(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dlcourse.grading", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_command_line_release_and_grade(toy, tmp_path):
    source, _ = toy
    done = grading_command("release", "--source", source, "--out", tmp_path / "student", cwd=REPO)
    assert done.returncode == 0, done.stderr
    done = grading_command("grade", "--lab", "toy", "--source", source, "--out", tmp_path / "out", "--quiet",
                           "--trusted-submissions",
                           source / "toy.ipynb", tmp_path / "student" / "toy.ipynb", cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "5 / 5" in done.stdout and "0 / 5" in done.stdout
    assert (tmp_path / "out" / "toy_grades.csv").is_file()
    # The class report comes with every grading, and again on demand.
    report = (tmp_path / "out" / "report" / "report.md").read_text(encoding="utf-8")
    assert "2명의 제출물" in report and "class report:" in done.stdout
    done = grading_command("report", tmp_path / "out", "--out", tmp_path / "again", cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again" / "report.md").read_text(encoding="utf-8") == report
    assert {path.name for path in (tmp_path / "again").iterdir()} == {
        "report.md", "announcement.md", "scores.png", "pass_rate.png", "lms.csv"}


@pytest.mark.parametrize("args, message", [
    (["grade", "--lab", "nope", "{sub}"], "no graded lab 'nope'"),
    (["grade", "--lab", "toy", "{missing}"], "no such submission"),
    (["grade", "--lab", "toy", "--jobs", "0", "{sub}"], "--jobs"),
    (["release", "--out", "{source}"], "overwrite"),
])
def test_command_line_errors_are_one_line(toy, tmp_path, args, message):
    source, _ = toy
    names = {"sub": source / "toy.ipynb", "missing": tmp_path / "missing.ipynb", "source": source}
    args = [arg.format(**names) for arg in args]
    done = grading_command(*args[:1], "--source", source, *args[1:], cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("folder, message", [("missing", "no such folder"), ("instructor", "no results.json under")])
def test_a_report_of_a_folder_without_results_is_one_line(toy, tmp_path, folder, message):
    done = grading_command("report", tmp_path / folder, cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_audit_hook_alone_blocks_the_network(toy, tmp_path, listener):
    """With no jail (trusted submissions only), the hook still stops the honest mistake, with a reason."""
    _, lab = toy
    port, accepted = listener
    code, reason = ATTACKS["uses_the_network"]
    path = submission(tmp_path, "net", code.format(port=port))
    no_jail = Jail()
    result = grade_all(lab, reference_values(lab, FAST, no_jail), [path], FAST, tmp_path / "out", jail=no_jail,
                       progress=False)[0]
    assert result.score == 2 and all(reason in test.output for test in result.tests if test.score == 0)
    assert not accepted


@pytest.mark.parametrize("content", [
    '{"cells": [{"cell_type": "code", "source": [1, 2], "metadata": []}]}',
    '{"cells": {"a": 1}}',
    '{"cells": [{"cell_type": "code", "id": ["x"], '
    '"metadata": {"grading": {"role": "exercise", "exercise": ["double"]}}}]}',
    '[1, 2]',
    '\udcff'.encode("utf-8", "surrogateescape").decode("latin-1"),
])
def test_malformed_notebooks_get_zero_and_the_rest_is_graded(toy, tmp_path, content):
    _, lab = toy
    odd = tmp_path / "odd.ipynb"
    odd.write_text(content, encoding="utf-8")
    good = submission(tmp_path, "good", "def double(x):\n" + DOUBLE_SOLUTION)
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [odd, good], FAST, tmp_path / "out", jail=JAIL,
                        progress=False)
    assert [result.score for result in results] == [0, 5]


def workers_running(marker):
    """Processes whose command line mentions ``marker`` (the grader's temporary folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_a_stopped_grader_leaves_no_worker_behind(toy, tmp_path, how):
    source, _ = toy
    loops = [submission(tmp_path, f"loop{index}", ATTACKS["loops_in_function"][0]) for index in range(3)]
    temporary = tmp_path / "grader_tmp"
    temporary.mkdir()
    grader = subprocess.Popen(
        [sys.executable, "-m", "dlcourse.grading", "grade", "--lab", "toy", "--source", str(source),
         "--trusted-submissions",
         "--out", str(tmp_path / "out"), "--quiet", "--test-timeout", "60", *map(str, loops)],
        cwd=REPO, env={**os.environ, "TMPDIR": str(temporary)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # as from a terminal: a pytest-xdist worker ignores SIGINT, and its children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Before its workers start, the grader probes the jail and runs the reference notebook: minutes
    # on a loaded CI machine.  Wait for them (or for the grader to stop, which would be the failure).
    deadline = time.monotonic() + 600
    while (len(workers_running(str(temporary))) < 2 and grader.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.2)
    assert grader.poll() is None, f"the grader stopped before it was stopped: {grader.communicate()}"
    assert workers_running(str(temporary)), "the workers started"
    grader.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    _, stderr = grader.communicate(timeout=90)  # generous: CI machines are often loaded
    if how == "ctrl-c":
        assert grader.returncode == 130 and "interrupted" in stderr
    deadline = time.monotonic() + 10
    while workers_running(str(temporary)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not workers_running(str(temporary))


@pytest.mark.parametrize("last_line, message", [("print(double([1]))", "ends with None"),
                                                ("object()", "cannot compare"),
                                                ("double([1]) + undefined_name", "fails on the reference")])
def test_an_instructor_test_that_cannot_grade_is_reported(tmp_path, last_line, message):
    notebook = toy_notebook()
    notebook.cells[4].source = last_line
    nbformat.write(notebook, tmp_path / "toy.ipynb")
    with pytest.raises(NotebookError, match=message):
        reference_values(load_lab(tmp_path / "toy.ipynb"), FAST, JAIL)
