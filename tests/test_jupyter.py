"""The student's way in: `make notebook` registers the course's kernel and starts a JupyterLab that answers."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from dlcourse import jupyter
from dlcourse.notebook import repository_root, setup
from tests.conftest import REPO


def test_the_kernel_is_this_environments_python(tmp_path):
    spec = json.loads((jupyter.register_kernel(prefix=tmp_path) / "kernel.json").read_text())
    assert spec["display_name"] == "dlcourse (Keras 3)"
    assert spec["argv"][0] == sys.executable and "ipykernel_launcher" in spec["argv"]
    assert (tmp_path / "share" / "jupyter" / "kernels" / "dlcourse" / "kernel.json").is_file()


def test_runs_from_a_notebook_land_in_the_repository_whatever_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLCOURSE_RUNS_DIR", "")  # unset for setup(), and put back as it was afterwards
    monkeypatch.chdir(tmp_path)
    assert repository_root() == REPO
    assert setup() == REPO / "runs"
    assert os.environ["DLCOURSE_RUNS_DIR"] == str(REPO / "runs")
    assert str(REPO / "runs") in capsys.readouterr().out
    from dlcourse.training import runs_root
    assert runs_root() == REPO / "runs"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.geturl(), response.read()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_notebook_starts_jupyterlab_at_the_repository_with_the_course_kernel():
    port, token = free_port(), "dlcourse-test-token"
    server = subprocess.Popen(
        ["make", "--no-print-directory", "notebook",
         f"ARGS=--no-browser --port {port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status = json.loads(get(f"{base}/api/status?token={token}")[2])
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(1)
        assert "started" in status
        kernels = json.loads(get(f"{base}/api/kernelspecs?token={token}")[2])["kernelspecs"]
        assert kernels["dlcourse"]["spec"]["display_name"] == "dlcourse (Keras 3)"
        listing = json.loads(get(f"{base}/api/contents/notebooks?token={token}")[2])
        names = {item["name"] for item in listing["content"]}
        assert {"00_시작하기.ipynb", "week1_softmax_mnist.ipynb"} <= names
        _, landed, page = get(f"{base}/?token={token}")
        assert "/lab/tree/notebooks/" in urllib.parse.unquote(landed) and b"JupyterLab" in page
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
