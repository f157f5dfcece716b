"""Shared fixtures: running a lab as a user would, in a subprocess, offline."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def lab_command(module, *arguments):
    return [sys.executable, "-m", module, *map(str, arguments)]


def run_lab(module, *arguments, cwd=None, env=None, timeout=300):
    """Run ``python -m module arguments`` and return the completed process (text output)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(lab_command(module, *arguments), cwd=cwd or REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def jax_test_environment():
    """What a test's subprocess needs to run a lab on JAX as a machine without TensorFlow would:
    KERAS_BACKEND, a PYTHONPATH that hides TensorFlow (``tests/without_tensorflow``), and XLA's
    backend optimisation off.  XLA compiles every new shape, down to each weight initialiser;
    at smoke size its optimisation passes cost more than they save (the JAX R-CNN smoke run:
    78 s → 48 s, the same mAP).  Tests only: the labs keep XLA's defaults."""
    return {"KERAS_BACKEND": "jax", "PYTHONPATH": f"{REPO / 'tests' / 'without_tensorflow'}:{REPO}",
            "XLA_FLAGS": "--xla_backend_optimization_level=0"}


def read_metrics(run_dir):
    return json.loads((pathlib.Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture
def data_copy(tmp_path):
    """A private copy of data/ that a test may damage (pointed to by DLCOURSE_DATA_DIR)."""
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("SHA256SUMS", "mnist.npz", "iris.csv", "korean_corpus.txt"):
        (copy / name).write_bytes((REPO / "data" / name).read_bytes())
    return copy
