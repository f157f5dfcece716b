"""Fault tolerance: a run killed with SIGKILL mid-training resumes when the same command is rerun."""
import os
import signal
import subprocess
import time

from tests.conftest import REPO, lab_command, read_metrics, run_lab
from tests.test_labs import history_epochs

EPOCHS = 20


def wait_for_epochs(process, run_dir, count, timeout=240):
    """Block until ``count`` epochs are logged and backed up (or the process ends)."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        backed_up = (run_dir / "backup" / "training_metadata.json").exists()
        if backed_up and (run_dir / "history.csv").exists() and len(history_epochs(run_dir)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("training ended or stalled before it could be interrupted")


def test_killed_run_resumes_from_last_completed_epoch(tmp_path):
    run_dir = tmp_path / "run"
    # A small batch makes each smoke epoch long enough to be interrupted.
    arguments = ["--smoke", "--epochs", EPOCHS, "--batch-size", 8, "--out", run_dir]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(lab_command("labs.softmax_mnist", *arguments), cwd=REPO,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_epochs(process, run_dir, count=3)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    epochs_before_kill = len(history_epochs(run_dir))
    assert 3 <= epochs_before_kill < EPOCHS and not (run_dir / "metrics.json").exists()

    result = run_lab("labs.softmax_mnist", *arguments)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming the unfinished run" in result.stdout
    metrics = read_metrics(run_dir)
    # It went on from where it was killed (at most the epoch in flight is redone) ...
    assert metrics["resumed_from_epoch"] >= epochs_before_kill - 1 >= 2
    # ... and ended with every epoch exactly once, the requested number in all.
    assert history_epochs(run_dir) == list(range(EPOCHS))
    assert metrics["epochs"] == EPOCHS
    assert metrics["test_accuracy"] > 0.6


def test_rerun_without_out_finds_the_unfinished_run(tmp_path):
    """Without --out, the newest unfinished run with the same settings is resumed."""
    arguments = ["--smoke", "--epochs", EPOCHS, "--batch-size", 8]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(lab_command("labs.softmax_mnist", *arguments), cwd=tmp_path,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab_root = tmp_path / "runs" / "softmax_mnist"
    try:
        deadline = time.time() + 120
        while not (lab_root.is_dir() and any(lab_root.iterdir())) and time.time() < deadline:
            time.sleep(0.05)
        run_dir = next(lab_root.iterdir())
        wait_for_epochs(process, run_dir, count=2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    result = run_lab("labs.softmax_mnist", *arguments, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [path.name for path in lab_root.iterdir()] == [run_dir.name]
    assert read_metrics(run_dir)["epochs"] == EPOCHS


def test_killed_multi_phase_run_does_not_redo_finished_phases(tmp_path):
    """Stacked autoencoder killed in step 2: the rerun keeps step 1 and finishes steps 2 and 3."""
    run_dir = tmp_path / "run"
    epochs = 4
    arguments = ["--smoke", "--epochs", epochs, "--batch-size", 8, "--out", run_dir]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(lab_command("labs.stacked_autoencoder", *arguments), cwd=REPO,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        step_two_log = run_dir / "history-classifier.csv"
        while process.poll() is None and time.time() < deadline and not (
                step_two_log.exists() and step_two_log.read_text().count("\n") >= 2):
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    pretrain_log = (run_dir / "history-pretrain.csv").read_bytes()

    result = run_lab("labs.stacked_autoencoder", *arguments)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pretrain: finished in an earlier run" in result.stdout
    assert (run_dir / "history-pretrain.csv").read_bytes() == pretrain_log
    metrics = read_metrics(run_dir)
    assert metrics["epochs"] == 3 * epochs and metrics["resumed_from_epoch"] >= epochs + 1
