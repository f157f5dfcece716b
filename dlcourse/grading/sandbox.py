"""Run one submission's code in a worker process that cannot hurt the grader.

Each submission gets a fresh temporary folder and a worker process
(``worker.py``) with a scrubbed environment, memory and output limits, a
network namespace of its own where the OS allows unprivileged ones
(``unshare --user --net``), and the audit hook described in ``worker.py``.
The grader talks to it one command at a time and waits with a deadline, so a
test that loops forever, exits the process or prints without end costs that
test its points: the worker is killed and a new one carries on with the
remaining tests.  Exercise cells that broke a worker are left out of the
next one.
"""
import atexit
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")
MAX_REPLY_BYTES = 16 << 20
_LIVE_WORKERS = set()  # killed when the grader stops, so no endless loop outlives it
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set on Ctrl-C: no new worker starts


@dataclass(frozen=True)
class Limits:
    test_seconds: float = 10.0        # one cell or one test (a test cell takes milliseconds)
    submission_seconds: float = 300.0  # everything of one submission, restarts included
    memory_mib: int = 4096             # address space (TensorFlow alone reserves about 3 GiB)
    output_bytes: int = 1 << 20        # what the student's code may print
    startup_seconds: float = 120.0     # the setup cell (imports) of a fresh worker


@dataclass
class Outcome:
    """What one test gave: a value to compare, or the reason there is none."""
    value: object = None
    error: str = None


class WorkerBroken(Exception):
    """The worker died, hung, or answered out of protocol; the message says which."""


@lru_cache(maxsize=None)
def network_isolation():
    """``["unshare", "--user", "--net", "--"]`` where unprivileged namespaces work, else ``[]``."""
    command = ["unshare", "--user", "--net", "--", sys.executable, "-c", "pass"]
    if shutil.which("unshare") is None:
        return ()
    try:
        done = subprocess.run(command, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(command[:4]) if done.returncode == 0 else ()


def clean_environment(sandbox):
    """Nothing of the grader's environment (tokens, paths) reaches the student's process."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(sandbox), "TMPDIR": str(sandbox),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow",
            "MPLBACKEND": "Agg"}


class WorkerProcess:
    """One worker: send a command, get its reply or a ``WorkerBroken`` within a deadline."""

    def __init__(self, sandbox, limits, output_path):
        if _STOPPING.is_set():
            raise WorkerBroken("the grader was stopped")
        self.limits = limits
        read_end, write_end = os.pipe()
        with open(output_path, "wb") as output:
            self.process = subprocess.Popen(
                [*network_isolation(), sys.executable, "-I", "-B", str(WORKER), str(write_end),
                 str(sandbox), str(limits.memory_mib), str(limits.output_bytes)],
                stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT, pass_fds=(write_end,),
                cwd=sandbox, env=clean_environment(sandbox), start_new_session=True)
        os.close(write_end)
        self.replies = read_end
        self.buffer = b""
        with _LIVE_LOCK:
            _LIVE_WORKERS.add(self)

    def request(self, command, seconds):
        nonce = secrets.token_hex(8)
        try:
            self.process.stdin.write((json.dumps({**command, "nonce": nonce}) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerBroken(self.ending()) from None
        reply = self._read_line(time.monotonic() + seconds, seconds)
        try:
            reply = json.loads(reply)
        except (ValueError, RecursionError):
            raise WorkerBroken("the submission wrote garbage into the grader's channel") from None
        if not isinstance(reply, dict) or reply.get("nonce") != nonce:
            raise WorkerBroken("the submission wrote into the grader's channel")
        return reply

    def _read_line(self, deadline, seconds):
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken(f"time limit: no answer within {seconds:g} s (an endless loop?)")
            ready, _, _ = select.select([self.replies], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise WorkerBroken(self.ending())
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise WorkerBroken(f"a value larger than {MAX_REPLY_BYTES >> 20} MiB")
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def ending(self):
        """Why the worker stopped, in words."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the submission closed the grader's channel"
        if code < 0:
            name = signal.Signals(-code).name
            if name == "SIGXFSZ":
                return f"printed more than the output limit ({self.limits.output_bytes >> 10} KiB)"
            return f"the process was killed by {name} (memory limit {self.limits.memory_mib} MiB?)"
        return f"the process ended with exit code {code} (sys.exit / os._exit?)"

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self):
        self.kill()
        self.process.wait()
        with _LIVE_LOCK:
            _LIVE_WORKERS.discard(self)
        try:
            self.process.stdin.close()
        except OSError:
            pass  # the worker had already closed its end
        os.close(self.replies)


@atexit.register
def kill_all_workers():
    """Kill every worker still running and start no new one (the grader was interrupted)."""
    _STOPPING.set()
    with _LIVE_LOCK:
        workers = list(_LIVE_WORKERS)
    for worker in workers:
        worker.kill()


def run_submission(setup, cells, tests, limits, files=(), keep_output=None):
    """Outcomes of ``tests`` (``{name: Outcome}``) after running ``cells`` (``{exercise: code}``).

    ``tests`` is a list of ``notebooks.Test``; ``files`` are copied into the
    sandbox (the temporary copy the code runs beside).  Returns the outcomes,
    the exercise cells' own failures (``{exercise: reason}``) and the seconds
    taken.  ``keep_output``: a path to copy what the code printed to.
    """
    started = time.monotonic()
    outcomes, cell_failures, skipped_cells = {}, {}, set()
    pending, logs = list(tests), []
    sandbox = Path(tempfile.mkdtemp(prefix="dlcourse-grading-"))
    try:
        for path in files:
            shutil.copyfile(path, sandbox / Path(path).name)
        while pending:
            remaining = limits.submission_seconds - (time.monotonic() - started)
            if remaining <= 0 or _STOPPING.is_set():
                reason = f"submission time limit ({limits.submission_seconds:g} s)" if remaining <= 0 \
                    else "the grader was stopped"
                for test in pending:
                    outcomes[test.name] = Outcome(error=reason)
                break
            worker = WorkerProcess(sandbox, limits, sandbox / f"output-{len(logs)}.log")
            logs.append(worker)
            try:
                _run_in(worker, setup, cells, pending, outcomes, cell_failures, skipped_cells, limits, started)
            finally:
                worker.close()
        if keep_output is not None:
            _join_logs([sandbox / f"output-{index}.log" for index in range(len(logs))],
                       keep_output, limits.output_bytes)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    return outcomes, cell_failures, time.monotonic() - started


def _join_logs(paths, destination, limit):
    """What every worker printed, one after another, cut at ``limit`` bytes."""
    with open(destination, "wb") as out:
        for index, path in enumerate(paths):
            if out.tell() >= limit or not path.is_file():
                break
            out.write(f"--- worker {index + 1} ---\n".encode())
            with open(path, "rb") as log:
                out.write(log.read(max(0, limit - out.tell())))


def _deadline(seconds, limits, started):
    return max(0.1, min(seconds, limits.submission_seconds - (time.monotonic() - started)))


def _run_in(worker, setup, cells, pending, outcomes, cell_failures, skipped_cells, limits, started):
    """Run setup, cells and as many pending tests as this worker survives; updates the dicts."""
    try:
        reply = worker.request({"setup": setup}, _deadline(limits.startup_seconds, limits, started))
    except WorkerBroken as broken:
        reply = {"error": str(broken)}
    if "error" in reply:
        for test in pending:
            outcomes[test.name] = Outcome(error=f"the setup cell failed: {reply['error']}")
        pending.clear()
        return
    for exercise, code in cells.items():
        if exercise in skipped_cells:
            continue
        try:
            reply = worker.request({"cell": code, "exercise": exercise},
                                   _deadline(limits.test_seconds, limits, started))
        except WorkerBroken as broken:
            cell_failures[exercise] = str(broken)
            skipped_cells.add(exercise)
            return  # a fresh worker runs the other cells
        if "error" in reply:
            cell_failures[exercise] = reply["error"]
    while pending:
        test = pending.pop(0)
        try:
            reply = worker.request({"test": test.source, "name": test.name},
                                   _deadline(test.timeout or limits.test_seconds, limits, started))
        except WorkerBroken as broken:
            outcomes[test.name] = Outcome(error=str(broken))
            return
        outcomes[test.name] = Outcome(error=reply["error"]) if "error" in reply \
            else Outcome(value=reply.get("value"))
