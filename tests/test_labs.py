"""Each week-1 lab end to end in smoke mode, as a user runs it (a subprocess, offline)."""
import csv
import json

import numpy as np
import pytest

from dlcourse import data
from tests.conftest import read_metrics, run_lab

RUN_FILES = ("config.json", "history.csv", "metrics.json", "checkpoints/best.keras",
             "curves.png", "confusion_matrix.png")


def history_epochs(run_dir):
    with open(run_dir / "history.csv", newline="") as stream:
        return [int(row["epoch"]) for row in csv.DictReader(stream)]


@pytest.mark.parametrize("lab, extra, floor", [
    ("softmax_mnist", ["--optimizer", "custom_adam", "--lr", "0.01"], 0.6),
    ("mlp_mnist", ["--optimizer", "custom_amsgrad"], 0.6),
    ("cnn_mnist", [], 0.5),
    ("iris_ann", ["--epochs", 40], 0.8),
])
def test_classifier_lab_smoke_run_writes_the_whole_run_directory(tmp_path, lab, extra, floor):
    run_dir = tmp_path / "run"
    result = run_lab(f"labs.{lab}", "--smoke", "--epochs", 3, "--out", run_dir, *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert not (run_dir / "backup").exists(), "the backup is removed once training ends"
    metrics = read_metrics(run_dir)
    # Tiny data and a few short epochs: well above chance, far from the full run.
    assert floor < metrics["test_accuracy"] <= 1.0
    assert metrics["test_loss"] > 0 and metrics["wall_seconds"] > 0
    epochs = int(extra[extra.index("--epochs") + 1]) if "--epochs" in extra else 3
    assert metrics["epochs"] == epochs and history_epochs(run_dir) == list(range(epochs))
    if "--optimizer" in extra:
        assert json.loads((run_dir / "config.json").read_text())["optimizer"] == extra[1]
    if lab == "cnn_mnist":  # the CNN lab also draws the test digits it gets wrong
        assert (run_dir / "misclassified.png").stat().st_size > 1000


def test_autoencoder_smoke_reconstructs_better_than_a_blank_image(tmp_path):
    result = run_lab("labs.autoencoder", "--smoke", "--epochs", 3, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    test_images = data.mnist_splits(smoke=True, flatten=True)["test"][0]
    blank_image_mse = float(np.mean(test_images ** 2))
    assert 0 < metrics["test_reconstruction_mse"] < blank_image_mse
    with open(tmp_path / "history.csv", newline="") as stream:
        losses = [float(row["val_loss"]) for row in csv.DictReader(stream)]
    assert losses[-1] < losses[0]
    assert (tmp_path / "reconstructions.png").stat().st_size > 1000


def test_stacked_autoencoder_smoke_reports_both_accuracies(tmp_path):
    result = run_lab("labs.stacked_autoencoder", "--smoke", "--epochs", 2, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    assert 0 < metrics["test_accuracy_before_finetuning"] <= 1
    assert 0.3 < metrics["test_accuracy"] <= 1
    assert metrics["finetuning_gain"] == pytest.approx(
        metrics["test_accuracy"] - metrics["test_accuracy_before_finetuning"], abs=1e-4)
    assert metrics["epochs"] == 6  # three steps of two epochs
    for phase in ("pretrain", "classifier", "finetune"):
        assert (tmp_path / "checkpoints" / f"best-{phase}.keras").is_file()
        assert (tmp_path / f"curves-{phase}.png").is_file()


def test_week1_runs_one_lab_and_prints_the_table(tmp_path):
    result = run_lab("labs.week1", "--lab", "softmax_mnist", "--smoke", "--epochs", 1,
                     "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout.split("week1: 1 lab(s)")[1]
    assert "lab" in table and "course" in table and "run_dir" in table
    row = next(line for line in table.splitlines() if line.startswith("softmax_mnist"))
    value = read_metrics(tmp_path / "softmax_mnist")["test_accuracy"]
    assert str(value) in row and "0.918" in row and str(tmp_path / "softmax_mnist") in row
    assert "cnn_mnist" not in table
    for name in RUN_FILES:  # the lab's default settings write the whole run directory too
        assert (tmp_path / "softmax_mnist" / name).is_file(), name


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = run_lab("labs.softmax_mnist", "--smoke", "--epochs", 2, "--out", tmp_path,
                     "--strategy", "mirrored", "--logical-cpus", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    assert metrics["replicas"] == 2
    assert metrics["test_accuracy"] > 0.6


def test_mixed_precision_and_xla_flags_train(tmp_path):
    # The smallest lab: what is tested is the two flags, not the model (XLA compiles a CNN slowly).
    result = run_lab("labs.softmax_mnist", "--smoke", "--epochs", 2, "--out", tmp_path,
                     "--mixed-precision", "--jit")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    assert metrics["dtype_policy"] == "mixed_float16"
    assert json.loads((tmp_path / "config.json").read_text())["jit"] is True
    assert metrics["test_accuracy"] > 0.6


def test_finished_run_directory_is_never_overwritten(tmp_path):
    first = run_lab("labs.softmax_mnist", "--smoke", "--epochs", 1, "--out", tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    saved = (tmp_path / "metrics.json").read_bytes()
    again = run_lab("labs.softmax_mnist", "--smoke", "--epochs", 1, "--out", tmp_path)
    assert again.returncode == 2
    assert "already holds a finished run" in again.stderr
    assert (tmp_path / "metrics.json").read_bytes() == saved
