"""Fault tolerance: a run killed with SIGKILL mid-training resumes when the same command is rerun."""
import os
import signal
import subprocess
import time

from tests.conftest import REPO, lab_command, read_metrics, run_lab
from tests.test_labs import history_epochs

EPOCHS = 10
# A small batch makes each smoke epoch long enough to be interrupted.
SLOW_SMOKE = ["--smoke", "--batch-size", 8]


def logged_epochs(history_csv):
    return max(0, history_csv.read_text().count("\n") - 1) if history_csv.exists() else 0


def kill_when(lab, arguments, ready, cwd=REPO, timeout=240, env=None):
    """Start ``python -m labs.<lab> arguments`` and SIGKILL it as soon as ``ready()`` is true."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    process = subprocess.Popen(lab_command(f"labs.{lab}", *arguments), cwd=cwd, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline and not ready():
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline, "training stalled"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def test_killed_run_resumes_from_last_completed_epoch(tmp_path):
    """Killed mid-run and rerun with the same command, without --out: the newest unfinished run
    with the same settings goes on from its last completed epoch, in its own folder."""
    arguments = [*SLOW_SMOKE, "--epochs", EPOCHS]
    lab_root = tmp_path / "runs" / "softmax_mnist"
    kill_when("softmax_mnist", arguments, cwd=tmp_path,
              ready=lambda: any(logged_epochs(path) >= 3 for path in lab_root.glob("*/history.csv")))
    (run_dir,) = lab_root.iterdir()
    epochs_before_kill = len(history_epochs(run_dir))
    assert 3 <= epochs_before_kill < EPOCHS and not (run_dir / "metrics.json").exists()

    result = run_lab("labs.softmax_mnist", *arguments, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming the unfinished run" in result.stdout
    assert [path.name for path in lab_root.iterdir()] == [run_dir.name]
    metrics = read_metrics(run_dir)
    # It went on from where it was killed ...
    assert metrics["resumed_from_epoch"] == epochs_before_kill
    # ... and ended with every epoch exactly once, the requested number in all.
    assert history_epochs(run_dir) == list(range(EPOCHS))
    assert metrics["epochs"] == EPOCHS
    assert metrics["test_accuracy"] > 0.6


def test_killed_multi_phase_run_does_not_redo_finished_phases(tmp_path):
    """Stacked autoencoder killed in step 2: the rerun keeps step 1 and finishes steps 2 and 3."""
    run_dir = tmp_path / "run"
    epochs = 4
    arguments = [*SLOW_SMOKE, "--epochs", epochs, "--out", run_dir]
    kill_when("stacked_autoencoder", arguments,
              lambda: logged_epochs(run_dir / "history-classifier.csv") >= 1)
    pretrain_log = (run_dir / "history-pretrain.csv").read_bytes()

    result = run_lab("labs.stacked_autoencoder", *arguments)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pretrain: finished in an earlier run" in result.stdout
    assert (run_dir / "history-pretrain.csv").read_bytes() == pretrain_log
    metrics = read_metrics(run_dir)
    assert metrics["epochs"] == 3 * epochs and metrics["resumed_from_epoch"] >= epochs + 1
