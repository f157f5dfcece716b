"""Run one submission's code in a jailed worker, and never wait on it without a deadline.

A ``Session`` is one submission: a fresh sandbox folder, a worker process
started in the jail (``jail.py``) with a scrubbed environment and resource
limits, the instructor's setup, the student's exercise cells and the
instructor's helper cells run in it, then one ``call`` per use of a student's
function by a test.  The worker's replies come through a pipe, its printing
goes to a log in a folder of the grader's that the jail does not contain, and
every write to it and read from it has a deadline: a worker that loops,
exits, stops reading, or floods costs the test that was running, and a fresh
worker carries on with the rest.  Exercise cells that broke a worker are left
out of the next one.
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
import zlib
from dataclasses import dataclass
from pathlib import Path

from dlcourse.grading import wire
from dlcourse.grading.jail import course_dirs

CODE_FILES = [Path(__file__).with_name("worker.py"), Path(__file__).with_name("wire.py")]
MAX_REPLY_BYTES = 80 << 20
_LIVE_WORKERS = set()  # killed when the grader stops, so no endless loop outlives it
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set on Ctrl-C: no new worker starts


@dataclass(frozen=True)
class Limits:
    test_seconds: float = 10.0        # one test or one exercise cell (a test takes milliseconds)
    submission_seconds: float = 300.0  # everything of one submission, restarts included
    memory_mib: int = 4096             # address space (TensorFlow alone reserves about 3 GiB)
    output_bytes: int = 1 << 20        # what the student's code may print
    startup_seconds: float = 120.0     # the setup cell (imports) of a fresh worker


class WorkerBroken(BaseException):
    """The worker died, hung, stalled or answered out of protocol; the message says which.

    A ``BaseException``, so that a test's own ``except Exception`` cannot swallow it.
    """


class StudentError(Exception):
    """Stands for an exception of the student's code whose class is not a built-in one."""


def clean_environment(home):
    """Nothing of the grader's environment (tokens, paths) reaches the student's process."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow",
            "MPLBACKEND": "Agg"}


def remove_tree(path):
    """Remove a folder whatever its contents did to their permissions."""
    def force(function, failed, _):
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, onerror=force)
            else:
                os.unlink(failed)
        except OSError:
            pass
    shutil.rmtree(path, onerror=force)
    if os.path.lexists(path):
        print(f"warning: could not remove {path}", file=sys.stderr)


class WorkerProcess:
    """One worker in its jail: send a command, get its reply or a ``WorkerBroken`` within a deadline."""

    def __init__(self, placement, sandbox, code_dir, limits, log_path):
        if _STOPPING.is_set():
            raise WorkerBroken("the grader was stopped")
        self.limits, self.placement = limits, placement
        read_end, write_end = os.pipe()
        placement.prepare(sandbox, code_dir)
        inside_sandbox = placement.sandbox_inside or str(sandbox)
        inside_code = placement.code_inside or str(code_dir)
        python_argv = [sys.executable, "-I", "-B", f"{inside_code}/worker.py", str(write_end), inside_sandbox,
                       str(limits.memory_mib), str(limits.output_bytes), str(placement.processes),
                       str(os.getpid() if placement.parent_check else 0)]
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            self.process = subprocess.Popen(
                placement.argv(sandbox, code_dir, python_argv), stdin=subprocess.PIPE, stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(write_end,), cwd=sandbox,
                env=clean_environment(inside_sandbox), start_new_session=True, **placement.popen_options())
        except BaseException:
            os.close(read_end)
            placement.release()
            raise
        finally:
            os.close(log)
            os.close(write_end)
        self.commands = self.process.stdin.fileno()
        os.set_blocking(self.commands, False)
        self.replies = read_end
        self.buffer = b""
        with _LIVE_LOCK:
            _LIVE_WORKERS.add(self)
            stopped = _STOPPING.is_set()  # kill_all_workers sets it before it reads the set
        if stopped:  # Ctrl-C came while this one was starting: kill_all_workers did not see it
            self.close()
            raise WorkerBroken("the grader was stopped")

    def request(self, command, seconds):
        """Send ``command``; its reply (a dict) within ``seconds``, or ``WorkerBroken``."""
        deadline = time.monotonic() + seconds
        nonce = secrets.token_hex(8)
        self._write((json.dumps({**command, "nonce": nonce}, allow_nan=True) + "\n").encode(), deadline, seconds)
        line = self._read_line(deadline, seconds)
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            raise WorkerBroken("the submission wrote garbage into the grader's channel") from None
        if not isinstance(reply, dict) or reply.get("nonce") != nonce:
            raise WorkerBroken("the submission wrote into the grader's channel")
        return reply

    def _write(self, data, deadline, seconds):
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken(f"time limit: the worker stopped reading the grader's commands "
                                   f"for {seconds:g} s")
            try:
                _, ready, _ = select.select([], [self.commands], [], remaining)
                if ready:
                    view = view[os.write(self.commands, view):]
            except BlockingIOError:
                continue
            except OSError:
                raise WorkerBroken(self.ending()) from None

    def _read_line(self, deadline, seconds):
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken(f"time limit: no answer within {seconds:g} s (an endless loop?)")
            ready, _, _ = select.select([self.replies], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.replies, 1 << 20)
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
        if code > 128 and self.placement.sandbox_inside:  # bubblewrap reports its child's signal as 128 + n
            code = 128 - code
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name == "SIGXFSZ":
                return f"printed more than the output limit ({self.limits.output_bytes >> 10} KiB)"
            return f"the process was killed by {name} (memory limit {self.limits.memory_mib} MiB?)"
        return f"the process ended with exit code {code} (sys.exit / os._exit?)"

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.kill()
            except (ProcessLookupError, PermissionError):
                pass

    def close(self):
        self.kill()
        self.process.wait()
        with _LIVE_LOCK:
            _LIVE_WORKERS.discard(self)
        try:
            self.placement.release()
        finally:
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


class Session:
    """One submission's code behind the wall: cells run once per worker, calls answered as plain data."""

    def __init__(self, jail, setup, cells, limits, helpers=(), forbidden=(), seed=0):
        self.jail, self.setup, self.limits, self.seed = jail, setup, limits, seed
        self.forbidden = list(forbidden)  # modules the worker refuses to import (after the setup cell)
        self.cells = dict(cells)        # exercise id -> the student's code
        self.helpers = list(helpers)    # the instructor's code that runs after the exercises
        self.cell_failures, self.skipped = {}, set()
        self.started = time.monotonic()
        self.deadline = None            # set per test by the grader
        self.test = None                # the test now running, set by the grader: it names the calls' seeds
        self.calls = {}                 # test -> how many calls it has made
        self.worker = None
        self.workers = 0
        self.private = Path(tempfile.mkdtemp(prefix="dlcourse-grader-"))  # logs: outside every jail
        self.sandbox = Path(tempfile.mkdtemp(prefix="dlcourse-sandbox-"))
        self.code_dir = Path(tempfile.mkdtemp(prefix="dlcourse-code-"))  # the worker's own code, read-only
        for path in CODE_FILES:
            shutil.copyfile(path, self.code_dir / path.name)

    def remaining(self):
        return self.limits.submission_seconds - (time.monotonic() - self.started)

    def _seconds(self, seconds):
        if self.remaining() <= 0:
            raise WorkerBroken(f"submission time limit ({self.limits.submission_seconds:g} s)")
        if _STOPPING.is_set():
            raise WorkerBroken("the grader was stopped")
        limit = min(seconds, self.remaining())
        if self.deadline is not None:
            limit = min(limit, self.deadline - time.monotonic())
        return max(0.05, limit)

    def _start(self):
        """A fresh worker with the setup, the exercise cells (but those that broke one) and the helpers."""
        self.workers += 1
        self.worker = WorkerProcess(self.jail.place(), self.sandbox, self.code_dir, self.limits,
                                    self.private / f"output-{self.workers}.log")
        setup = {"op": "setup", "code": self.setup, "course_dirs": course_dirs(), "forbidden": self.forbidden,
                 "seed": self.seed}
        reply = self.worker.request(setup, self._seconds(self.limits.startup_seconds))
        if "error" in reply:
            raise WorkerBroken(f"the setup cell failed: {reply['error']}")
        for exercise, code in self.cells.items():
            if exercise in self.skipped:
                continue
            try:
                reply = self.worker.request({"op": "cell", "exercise": exercise, "code": code},
                                            self._seconds(self.limits.test_seconds))
            except WorkerBroken as broken:
                self.cell_failures[exercise] = str(broken)
                self.skipped.add(exercise)
                self._stop()
                return self._start()
            if "error" in reply:
                self.cell_failures[exercise] = reply["error"]
        for index, code in enumerate(self.helpers):
            reply = self.worker.request({"op": "cell", "exercise": f"helper {index + 1}", "code": code},
                                        self._seconds(self.limits.test_seconds))
            if "error" in reply:
                raise WorkerBroken(f"the instructor's helper cell failed: {reply['error']}")

    def _start_outside_the_test(self):
        """Start a worker under its own limits; the test that needed it keeps its whole time.

        A fresh worker imports the setup cell's modules (Keras: seconds, more on a
        loaded machine), which must not eat into a 10-second test."""
        test_deadline, started = self.deadline, time.monotonic()
        self.deadline = None
        try:
            self._start()
        finally:
            if test_deadline is not None:
                self.deadline = test_deadline + (time.monotonic() - started)

    def _stop(self):
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def call(self, name, args, kwargs):
        """``name(*args, **kwargs)`` in the worker: its value as plain data, or its exception raised here."""
        self.calls[self.test] = number = self.calls.get(self.test, 0) + 1
        command = {"op": "call", "name": name, "args": wire.encode(list(args)),
                   "kwargs": wire.encode(dict(kwargs)), "seed": call_seed(self.seed, self.test, number)}
        try:
            if self.worker is None:
                self._start_outside_the_test()
            # A call may use what is left of its test's time (a test that trains has a "timeout" of its own).
            budget = self.limits.test_seconds if self.deadline is None else self.deadline - time.monotonic()
            reply = self.worker.request(command, self._seconds(budget))
        except WorkerBroken:
            self._stop()
            raise
        try:
            if "error" in reply:
                raise _student_exception(reply)
            value = wire.decode(reply.get("value"))
            changed = reply.get("changed") or {}
            if type(changed) is not dict:
                raise wire.WireError("a malformed reply")
            for index, data in changed.items():
                _write_back(args, index, wire.decode(data))
        except wire.WireError as error:
            self._stop()
            raise WorkerBroken(f"the submission sent something that is not plain data ({error})") from None
        return value

    def output(self, destination, limit):
        """Copy what every worker printed, one after another, cut at ``limit`` bytes."""
        with open(destination, "wb") as out:
            for index in range(1, self.workers + 1):
                path = self.private / f"output-{index}.log"
                if out.tell() >= limit or not path.is_file():
                    break
                out.write(f"--- worker {index} ---\n".encode())
                with open(path, "rb") as log:
                    out.write(log.read(max(0, limit - out.tell())))

    def close(self):
        try:
            self._stop()
        finally:
            for folder in (self.sandbox, self.code_dir, self.private):
                remove_tree(folder)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def call_seed(seed, test, number):
    """The seed of one call: the grading seed, the test and the call's number, so the same on every run.

    ``zlib.crc32`` rather than ``hash``: Python salts string hashes per process.
    """
    return zlib.crc32(f"{seed}/{test}/{number}".encode())


def _student_exception(reply):
    """The student's exception, as its nearest built-in class, so a test can catch it as written."""
    import builtins
    message, name = reply.get("error"), reply.get("type")
    if type(message) is not str or type(name) is not str:
        raise wire.WireError("a malformed error reply")
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(cls, (StopIteration, Warning)):
        cls = StudentError
    try:
        error = cls(message)
    except Exception:  # noqa: BLE001 - built-ins with other signatures (UnicodeDecodeError, ...)
        error = StudentError(message)
    error.student_description = message[:1000]
    return error


def _write_back(args, index, value):
    """The student's function changed an input array in place: change the grader's copy too."""
    import numpy as np
    try:
        position = int(index)
    except ValueError:
        raise wire.WireError("a malformed reply") from None
    if not 0 <= position < len(args):
        raise wire.WireError("a malformed reply")
    original = args[position]
    if isinstance(original, np.ndarray) and isinstance(value, np.ndarray) and original.shape == value.shape \
            and original.flags.writeable:
        original[...] = value.astype(original.dtype, copy=False)
