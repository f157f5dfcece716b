"""A small graded lab made here, and students' notebooks for it: shared by the grading tests."""
import hashlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlcourse.grading.jail import choose_jail
from dlcourse.grading.notebooks import release
from dlcourse.grading.sandbox import Limits

FAST = Limits(test_seconds=5, submission_seconds=60, memory_mib=2048, output_bytes=64 << 10)
DOUBLE_SOLUTION = "    return 2 * np.asarray(x)\n"
TOTAL_SOLUTION = "def total(x):\n    return float(np.sum(x))\n"
# The strongest jail this machine gives; with none, the audit hook alone (these tests are not attacks).
JAIL = choose_jail("auto", trusted=True)


def graded(source, **grading):
    cell = new_code_cell(source)
    cell.metadata["grading"] = grading
    return cell


def toy_notebook(double_tests=None):
    """Two exercises, each with a visible and a hidden test: 5 points in all."""
    double_tests = double_tests or [
        graded('result = double([1, 2])\nassert result.shape == (2,), "shape"\nresult',
               role="test", test="double_small", exercise="double", points=1, visibility="visible"),
        graded("double(np.arange(6).reshape(2, 3) / 7)",
               role="test", test="double_matrix", exercise="double", points=2, visibility="hidden")]
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell("# 연습"),
        graded("import numpy as np", role="setup"),
        new_code_cell("untouched = 1  # not graded"),
        graded('def double(x):\n    """두 배"""\n    ### BEGIN SOLUTION\n' + DOUBLE_SOLUTION
               + "    ### END SOLUTION\n", role="exercise", exercise="double"),
        *double_tests,
        graded("def total(x):\n    ### BEGIN SOLUTION\n    return float(np.sum(x))\n    ### END SOLUTION\n",
               role="exercise", exercise="total"),
        graded("total([1.5, 2.5])", role="test", test="total_small", exercise="total", points=1,
               visibility="visible"),
        graded("{'sum': total(np.ones((3, 3))), 'parts': [total([1]), 'ok']}", role="test",
               test="total_matrix", exercise="total", points=1, visibility="hidden"),
    ]
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # the same ids in every copy, as in a real release
    return notebook


def submission(folder, name, double_code, total_code=None, notebook=None, cells=None):
    """A student's notebook: the released toy lab with the two exercise cells replaced.

    ``cells``, ``{exercise: code}``, replaces the exercise cells of another ``notebook``.
    """
    notebook = release(notebook or toy_notebook())
    codes = cells or {"double": double_code, "total": total_code or TOTAL_SOLUTION}
    for cell in notebook.cells:
        exercise = cell.metadata.get("grading", {}).get("exercise")
        if cell.metadata.get("grading", {}).get("role") == "exercise":
            cell.source = codes[exercise]
    path = folder / "submissions" / f"{name}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, path)
    return path


def scores(results):
    return {result.student: {test.name: test.score for test in result.tests} for result in results}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()
