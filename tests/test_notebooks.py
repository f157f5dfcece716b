"""Every notebook runs end to end in smoke mode (nbclient), with its figures shown inline."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
LABS = [path for path in NOTEBOOKS if path.name.startswith("week")]
GETTING_STARTED = REPO / "notebooks" / "00_시작하기.ipynb"


def smoke_version(notebook, out_dir):
    """The notebook with a cell after its parameters cell that switches on smoke mode."""
    index = next(i for i, cell in enumerate(notebook.cells)
                 if "parameters" in cell.metadata.get("tags", []))
    overrides = f"SMOKE = True\nEPOCHS = 1\nOUT_DIR = {str(out_dir)!r}"
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(overrides))
    return notebook


def test_there_are_notebooks():
    assert {path.name for path in NOTEBOOKS} >= {"week1_softmax_mnist.ipynb", "week1_cnn_mnist.ipynb"}


def execute(notebook):
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.parametrize("path", LABS, ids=lambda path: path.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    outputs = execute(smoke_version(nbformat.read(path, as_version=4), tmp_path / "run"))
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 2, "figures are shown inline"
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_the_getting_started_notebook_runs_and_says_where_runs_go(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_RUNS_DIR", str(tmp_path / "runs"))
    outputs = execute(nbformat.read(GETTING_STARTED, as_version=4))
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert f"{tmp_path / 'runs'}에 저장됩니다" in text and "Keras 3." in text and "GPU:" in text
    assert [output for output in outputs if "image/png" in output.get("data", {})]
    errors = "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")
    assert "cuda" not in errors.lower() and "absl" not in errors, errors


def test_every_lab_notebook_has_a_row_in_the_getting_started_table():
    text = GETTING_STARTED.read_text(encoding="utf-8")
    assert [path.stem for path in LABS if f"`{path.name}`" not in text] == []
    assert "측정 전" not in text


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), path
