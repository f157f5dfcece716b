"""The labs on every Keras 3 backend: JAX and PyTorch besides TensorFlow (the rest of the suite).

Each lab runs in a subprocess with ``KERAS_BACKEND`` set, as a user would run
it.  JAX comes with the dev extra; PyTorch is not installed by ``make test``
(from PyPI it brings several GB of CUDA libraries), so its tests are skipped
with that reason where it is missing.  The JAX runs use a Python in which
TensorFlow cannot be imported (``tests/without_tensorflow``): a machine with
JAX and no TensorFlow runs the labs, and those runs skip TensorFlow's
start-up time.  Week 1 runs three of its six labs, and week 2 its custom
Adam and AMSGrad against Keras's (the lab's comparison without the lab):
the rest adds no layer or training step, only minutes.  The PyTorch runs keep TensorFlow, which writes their
TensorBoard logs.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

from dlcourse import hangul
from tests.conftest import REPO, jax_test_environment, read_metrics, run_lab
from tests.test_resume import kill_when, logged_epochs

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed (pip install -e .[jax])")
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch is not installed: make test leaves it out, since PyTorch from PyPI brings "
           "several GB of CUDA libraries (pip install -e .[torch] to run these)")
BACKENDS = [pytest.param("jax", marks=needs_jax), pytest.param("torch", marks=needs_torch)]


def environment(backend):
    """KERAS_BACKEND, and on JAX a PYTHONPATH that hides TensorFlow and ``jax_test_environment``'s
    XLA flag."""
    if backend == "jax":
        return jax_test_environment()
    return {"KERAS_BACKEND": backend}


def on(backend, module, *arguments, timeout=600):
    return run_lab(module, *arguments, env=environment(backend), timeout=timeout)


def finished(result, run_dir, backend):
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["backend"] == backend
    assert metrics["devices"] and metrics["replicas"] == 1
    return metrics


# Tiny data and two short epochs: well above chance, far from the full run.
# Three of the six labs (a CNN, the multi-phase stacked autoencoder and the plain autoencoder):
# the other three add no layer or training step these lack, and each lab costs the suite ~10 s.
WEEK1_FLOORS = {"cnn_mnist": 0.5, "stacked_autoencoder": 0.5}


@pytest.mark.parametrize("backend", BACKENDS)
def test_week1(tmp_path, backend):
    """The whole week in one process.  On JAX, Python cannot import TensorFlow here: the labs
    must not need it (only TensorBoard's logs do, and they are left out with a note)."""
    without_tensorflow = backend == "jax"
    labs = [argument for lab in (*WEEK1_FLOORS, "autoencoder") for argument in ("--lab", lab)]
    result = on(backend, "labs.week1", *labs, "--smoke", "--epochs", 2, "--out", tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for lab, floor in WEEK1_FLOORS.items():
        assert finished(result, tmp_path / lab, backend)["test_accuracy"] > floor, lab
        assert list((tmp_path / lab / "checkpoints").glob("best*.keras")), lab  # one per phase
    assert 0 < finished(result, tmp_path / "autoencoder", backend)["test_reconstruction_mse"] < 0.1
    if without_tensorflow:
        assert "TensorFlow is not installed, so no TensorBoard logs are written" in result.stdout
        assert not list(tmp_path.glob("*/tensorboard"))
    else:
        assert len(list(tmp_path.glob("*/tensorboard"))) == 3


@needs_torch
def test_torch_cnn_with_mixed_precision(tmp_path):
    # Not --jit: on PyTorch it is torch.compile, which took 473 s to compile this smoke run on
    # 2 CPU cores (run by hand, not in the suite).  JAX: test_jax_data_parallel_with_mixed_precision_and_jit.
    result = on("torch", "labs.cnn_mnist", "--smoke", "--epochs", 2, "--mixed-precision", "--out", tmp_path)
    metrics = finished(result, tmp_path, "torch")
    assert metrics["dtype_policy"] == "mixed_float16" and metrics["test_accuracy"] > 0.3


CUSTOM_ADAM_FOLLOWS_KERAS = """
import keras, numpy as np
from dlcourse.optimizers import make_optimizer
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = rng.integers(0, 3, 64)
weights = {}
for name in ("adam", "custom_adam", "amsgrad", "custom_amsgrad"):
    keras.utils.set_random_seed(0)   # the same initial weights for every optimizer
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    start = np.concatenate([w.ravel() for w in model.get_weights()])
    model.compile(optimizer=make_optimizer(name, 0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)   # 20 steps
    weights[name] = np.concatenate([w.ravel() for w in model.get_weights()])
def gap(a, b):
    return float(np.abs(weights[a] - weights[b]).max())
print(keras.backend.backend(), gap("custom_adam", "adam"), gap("custom_amsgrad", "amsgrad"),
      float(np.abs(weights["adam"] - start).max()))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_custom_adam_follows_keras_adam(backend):
    """The course's Adam and AMSGrad (``build``/``update_step`` in ``keras.ops``) take the same
    20 steps as Keras's own on this backend (the optimizers lab's comparison, without the lab)."""
    result = subprocess.run([sys.executable, "-c", CUSTOM_ADAM_FOLLOWS_KERAS],
                            env={**os.environ, "PYTHONPATH": str(REPO), **environment(backend)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    name, adam_gap, amsgrad_gap, moved = result.stdout.split()
    assert name == backend and float(moved) > 0.05          # 20 steps of 0.01 moved the weights
    assert float(adam_gap) < 1e-6 and float(amsgrad_gap) < 1e-6  # measured: 0.0 on TF and JAX


@pytest.mark.parametrize("backend", BACKENDS)
def test_char_rnn_trains_and_generates(tmp_path, backend):
    run_dir = tmp_path / "run"
    result = on(backend, "labs.char_rnn", "--smoke", "--epochs", 2, "--sample-length", 20, "--out", run_dir)
    metrics = finished(result, run_dir, backend)
    assert 0 < metrics["val_bits_per_char"] < 20
    # generation runs the traced one-token step of this backend
    generated = on(backend, "labs.char_rnn", "generate", "--run", run_dir, "--prime", "대한민국",
                   "--length", 30, "--seed", 3)
    assert generated.returncode == 0, generated.stderr[-2000:]
    text = generated.stdout[:-1]
    assert text.startswith("대한민국") and len(text) == len("대한민국") + 30
    assert hangul.complete_syllables(text) == text


@pytest.mark.parametrize("backend", BACKENDS)
def test_news_seq2seq_decodes_greedy_and_beam(tmp_path, backend):
    result = on(backend, "labs.news_seq2seq", "--smoke", "--epochs", 1, "--out", tmp_path,
                "--layers", 1, "--units", 16, "--embedding-dim", 16, "--beam-width", 2)
    metrics = finished(result, tmp_path, backend)
    assert set(metrics["rouge"]) == {"lead", "nearest_neighbour", "greedy", "beam"}
    assert all(0 <= scores["rougeL"] <= 1 for scores in metrics["rouge"].values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_rcnn_detects(tmp_path, backend):
    result = on(backend, "labs.rcnn", "--smoke", "--epochs", 1, "--proposals", "fast", "--out", tmp_path)
    metrics = finished(result, tmp_path, backend)
    assert 0 <= metrics["map50"] <= 1 and metrics["proposal_recall50"] > 0.5
    assert (tmp_path / "detections.png").is_file()


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_run_resumes(tmp_path, backend):
    arguments = ["--smoke", "--batch-size", 8, "--epochs", 12, "--out", tmp_path]
    kill_when("softmax_mnist", arguments, lambda: logged_epochs(tmp_path / "history.csv") >= 2,
              env=environment(backend))
    before = logged_epochs(tmp_path / "history.csv")
    metrics = finished(on(backend, "labs.softmax_mnist", *arguments), tmp_path, backend)
    assert metrics["resumed_from_epoch"] == before >= 2 and metrics["epochs"] == 12


def test_jax_data_parallel_with_mixed_precision_and_jit(tmp_path):
    """--strategy mirrored on JAX: keras.distribution.DataParallel over two XLA host devices."""
    pytest.importorskip("jax")
    result = on("jax", "labs.softmax_mnist", "--smoke", "--epochs", 2, "--strategy", "mirrored",
                "--logical-cpus", 2, "--mixed-precision", "--jit", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path)
    assert metrics["replicas"] == 2 and len(metrics["devices"]) == 2
    assert metrics["dtype_policy"] == "mixed_float16" and metrics["test_accuracy"] > 0.3


@pytest.mark.parametrize("backend, strategy", [("torch", "mirrored"), ("jax", "multiworker")])
def test_a_strategy_the_backend_cannot_do_is_one_line(tmp_path, backend, strategy):
    pytest.importorskip(backend)
    result = on(backend, "labs.softmax_mnist", "--smoke", "--strategy", strategy, "--out", tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert f"--strategy {strategy} needs the tensorflow" in message and "Traceback" not in result.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_the_blocker_really_hides_tensorflow():
    probe = run_lab("tests.without_tensorflow.probe", env={"PYTHONPATH": jax_test_environment()["PYTHONPATH"]})
    assert probe.stdout.split() == ["ModuleNotFoundError", "None"]


@pytest.mark.parametrize("backend, name", [
    pytest.param("jax", "week1_softmax_mnist", marks=needs_jax),
    # PyTorch's optimizers take tensors only: this notebook once handed optimizer.apply NumPy arrays.
    pytest.param("torch", "week2_optimizers", marks=needs_torch)])
def test_a_notebook_on_another_backend(tmp_path, monkeypatch, backend, name):
    """The student's path on another backend: the kernel inherits KERAS_BACKEND."""
    nbformat = pytest.importorskip("nbformat")
    from tests.test_notebooks import execute, smoke_version
    for variable, value in environment(backend).items():
        monkeypatch.setenv(variable, value)
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    outputs = execute(smoke_version(notebook, tmp_path / "run"))
    assert not [output for output in outputs if output.output_type == "error"]
    assert [output for output in outputs if "image/png" in output.get("data", {})]
    assert read_metrics(tmp_path / "run")["backend"] == backend


COMPILED_STEP_FOLLOWS_THE_WEIGHTS = """
import keras, numpy as np
from dlcourse import backend
layer = keras.layers.Dense(1, use_bias=False)
layer.build((None, 1))
step = backend.compiled(lambda x: layer(x), layer.variables)
outputs = []
for weight in (2.0, 5.0):  # as between two epochs: same step, new weights
    layer.set_weights([np.full((1, 1), weight, "float32")])
    outputs.append(float(backend.to_numpy(step(np.ones((1, 1), "float32")))[0, 0]))
print(backend.name(), *outputs)
"""


@pytest.mark.parametrize("backend", ["tensorflow", *BACKENDS])
def test_a_compiled_step_reads_the_current_weights(backend):
    """The Char-RNN's samples and the titles' validation ROUGE are written between epochs by
    one traced step: a trace that kept the weights it first saw (jax.jit of a closure does)
    would write every epoch's samples with the first epoch's model."""
    result = subprocess.run([sys.executable, "-c", COMPILED_STEP_FOLLOWS_THE_WEIGHTS],
                            env={**os.environ, "PYTHONPATH": str(REPO), **environment(backend)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [backend, "2.0", "5.0"]


def test_tfds_without_tensorflow_is_one_line(tmp_path):
    pytest.importorskip("jax")
    result = on("jax", "labs.softmax_mnist", "--smoke", "--data-source", "tfds", "--out", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--data-source tfds needs TensorFlow and TensorFlow Datasets" in result.stderr.strip().splitlines()[-1]
