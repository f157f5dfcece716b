"""``--strategy multiworker``: two workers on this machine train one model together.

Each worker is its own process with its own ``TF_CONFIG`` (the same cluster
of two addresses on 127.0.0.1, its own task index) and its own ``--out``, as
on two machines.  A worker whose partner is gone waits for it, so both are
killed when either fails or time runs out.  (Without ``TF_CONFIG`` the flag is
a one-line usage error: tests/test_cli.py.)
"""
import importlib.util
import json
import os
import socket
import subprocess
import time

import pytest

from tests.conftest import REPO, lab_command, read_metrics

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                reason="MultiWorkerMirroredStrategy needs TensorFlow")

TIMEOUT = 240  # seconds for both workers together; about 60 on two busy CPU cores


def free_ports(count):
    """Ports nobody listens on now (the system picks them), for the workers to bind."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_workers(module, arguments, out_dirs, timeout=TIMEOUT):
    """Run ``python -m module arguments --out DIR`` once per worker, all at once.

    Fails the test, with every worker's output, unless all exit 0 within
    ``timeout`` seconds.  Output goes to ``DIR.log`` (a pipe nobody reads
    while they run could fill up and stall a worker).
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(len(out_dirs))]}
    workers, logs = [], [out.with_name(out.name + ".log") for out in out_dirs]
    deadline = time.monotonic() + timeout
    try:
        for index, (out, log) in enumerate(zip(out_dirs, logs)):
            env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow",
                   "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}})}
            with open(log, "wb") as stream:
                workers.append(subprocess.Popen(lab_command(module, *arguments, "--out", out),
                                                cwd=REPO, env=env, stdout=stream,
                                                stderr=subprocess.STDOUT))
        # One worker that fails leaves the other waiting for it: stop at the first failure.
        while any(worker.poll() is None for worker in workers):
            if time.monotonic() > deadline or any(worker.returncode for worker in workers):
                break
            time.sleep(0.5)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    if any(worker.returncode for worker in workers):
        why = f"timed out after {timeout} s" if time.monotonic() > deadline else "a worker failed"
        report = "\n".join(f"--- worker {index}: exit {worker.returncode}\n"
                           f"{log.read_text(errors='replace')[-3000:]}"
                           for index, (worker, log) in enumerate(zip(workers, logs)))
        pytest.fail(f"{why}:\n{report}")


def test_two_local_workers_train_one_model(tmp_path):
    out_dirs = [tmp_path / "worker0", tmp_path / "worker1"]
    run_workers("labs.softmax_mnist", ["--smoke", "--epochs", 1, "--strategy", "multiworker"],
                out_dirs)
    metrics = [read_metrics(out) for out in out_dirs]
    for worker in metrics:
        assert worker["replicas"] == 2
        assert worker["test_accuracy"] > 0.5  # chance is 0.1
        assert worker["epochs"] == 1
    # Synchronous training: both workers end with the same weights, hence the same numbers.
    assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"]
    assert metrics[0]["test_loss"] == metrics[1]["test_loss"]
