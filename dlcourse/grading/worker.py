"""The process that runs one student's code: started by ``sandbox.py``, never imported.

It is run as a script (``python -I -B worker.py``) so that it imports nothing
from ``dlcourse``: a student's code must not find the course's own solutions
already loaded.  The grader sends it one JSON command per line on stdin and
reads one JSON reply per line from the file descriptor given on the command
line; the student's printing goes to stdout/stderr, which the grader points
at a size-capped file.

Order of work: lower its own resource limits, run the instructor's setup cell
(imports), install the audit hook that fences in what follows, then run the
student's exercise cells and the tests one command at a time.

What the hook blocks once student code runs: writing, deleting or renaming
anything outside the sandbox folder; reading outside the sandbox, the Python
installation and the system folders (so not the instructor's notebooks, other
students' work or the grader's results); sockets; new processes; signals to
other processes; ctypes; raising resource limits; importing or reading
``dlcourse`` and ``labs`` (the course's own solutions).  Audit hooks are not
a full sandbox (the Python docs say so): this is one layer, next to the
separate process, the limits and a network namespace.  What keeps a score honest is elsewhere: the grader compares the
values a test returns with the reference solution's values, which never
enter this process.
"""
import ast
import json
import os
import resource
import sys
import threading
import traceback

BLOCKED_IMPORTS = ("dlcourse", "labs", "tests")
READABLE_SYSTEM_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/etc", "/opt/conda",
                         "/sys/devices/system/cpu", "/sys/fs/cgroup", "/proc/cpuinfo", "/proc/meminfo",
                         "/dev/null", "/dev/urandom", "/dev/random", "/dev/zero")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
PATH_EVENTS = {  # event -> indices of the arguments that are paths to write
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
    "shutil.move": (0, 1), "os.chflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
}
BLOCKED_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                  "os.fork", "os.forkpty", "os.killpg", "os.symlink", "os.link",
                  "resource.setrlimit", "resource.prlimit", "pty.spawn", "webbrowser.open")
BLOCKED_PREFIXES = ("socket.", "ctypes.", "_ctypes.")
MAX_TEXT = 400


def die_with_the_grader():
    """On Linux, be killed when the grader's process ends, even by ``kill -9``."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass  # not Linux: the grader still kills its workers when it exits normally


def set_limits(memory_mib, output_bytes):
    """Cap address space (memory), file size (so printing cannot fill the disk) and core dumps."""
    for limit, value in ((resource.RLIMIT_AS, memory_mib << 20),
                         (resource.RLIMIT_FSIZE, output_bytes), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


class Fence:
    """The audit hook: a ``PermissionError`` for everything outside what a test may need."""

    def __init__(self, sandbox):
        self.sandbox = os.path.realpath(sandbox)
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        self.readable = tuple(os.path.realpath(root) for root in (*prefixes, *READABLE_SYSTEM_ROOTS))
        # The course's own code holds solutions, and may sit inside site-packages.
        package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        self.unreadable = (package, os.path.join(os.path.dirname(package), "labs"))
        self.pid = os.getpid()
        self.busy = threading.local()

    def inside(self, path, roots):
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def resolve(self, path):
        if isinstance(path, int):
            return None  # an already open descriptor
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return os.path.realpath(os.fspath(path))

    def check_path(self, path, writing):
        resolved = self.resolve(path)
        if resolved is None or self.inside(resolved, (self.sandbox,)):
            return
        own_proc = f"/proc/{self.pid}"
        if self.inside(resolved, self.unreadable):
            raise PermissionError(f"blocked by the grader: reading the course's code {path!r}")
        if not writing and (self.inside(resolved, self.readable) or self.inside(resolved, (own_proc,))):
            return
        raise PermissionError(f"blocked by the grader: {'writing' if writing else 'reading'} {path!r}")

    def __call__(self, event, args):
        if getattr(self.busy, "active", False):
            return
        self.busy.active = True
        try:
            self.check(event, args)
        finally:
            self.busy.active = False

    def check(self, event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
            self.check_path(path, writing)
        elif event in ("os.listdir", "os.scandir"):
            self.check_path(args[0] if args and args[0] is not None else ".", writing=False)
        elif event in PATH_EVENTS:
            for index in PATH_EVENTS[event]:
                if index < len(args) and args[index] is not None:
                    self.check_path(args[index], writing=True)
        elif event == "os.kill" or event == "signal.pthread_kill":
            if event == "os.kill" and args[0] not in (self.pid, 0):
                raise PermissionError("blocked by the grader: signalling another process")
        elif event == "import":
            if args[0].split(".")[0] in BLOCKED_IMPORTS:
                raise ImportError(f"blocked by the grader: import {args[0]} (write the exercise yourself)")
        elif event in BLOCKED_EVENTS or event.startswith(BLOCKED_PREFIXES):
            raise PermissionError(f"blocked by the grader: {event}")


def short(text):
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ..."


def describe(error):
    """``Type: message`` plus the line of student code it came from, in a few hundred characters."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename.startswith("<")]
    where = f" (at {frames[-1].filename} line {frames[-1].lineno})" if frames else ""
    message = str(error)
    return short(f"{type(error).__name__}{': ' + message if message else ''}{where}")


def encode(value, depth=0):
    """A JSON-able copy of a test's value: numbers, text, None, arrays, lists and dicts of them."""
    if depth > 20:
        return {"__unsupported__": "nesting deeper than 20"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, int) or abs(value) < 2 ** 63 else float(value)
    if isinstance(value, (list, tuple)):
        return [encode(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {"__dict__": {str(key): encode(item, depth + 1) for key, item in value.items()}}
    if hasattr(value, "__array__") or type(value).__module__ == "numpy":
        import numpy as np
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return {"__array__": array.tolist(), "shape": list(array.shape),
                    "dtype": array.dtype.kind}
        if array.dtype.kind in "USO" and array.ndim:
            return [encode(item, depth + 1) for item in array.tolist()]
        if array.dtype.kind in "USO":
            return encode(array.item(), depth + 1)
    return {"__unsupported__": type(value).__name__}


def split_last_expression(source, filename):
    """The cell's statements and its last line's expression (whose value the test reports)."""
    tree = ast.parse(source, filename)
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return compile(tree, filename, "exec"), None
    last = ast.Expression(tree.body.pop().value)
    return compile(tree, filename, "exec"), compile(last, filename, "eval")


class Worker:
    def __init__(self, reply_fd):
        self.replies = os.fdopen(reply_fd, "w", encoding="utf-8")
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}

    def reply(self, **fields):
        self.replies.write(json.dumps(fields, allow_nan=True) + "\n")
        self.replies.flush()

    def run_cell(self, command):
        try:
            exec(compile(command["cell"], f"<exercise {command['exercise']}>", "exec"), self.namespace)
        except BaseException as error:  # SystemExit and KeyboardInterrupt included: a cell's failure
            self.reply(nonce=command["nonce"], error=describe(error))
            return
        self.reply(nonce=command["nonce"], ok=True)

    def run_test(self, command):
        scope = dict(self.namespace)
        try:
            statements, last = split_last_expression(command["test"], f"<test {command['name']}>")
            exec(statements, scope)
            value = eval(last, scope) if last is not None else None
            encoded = encode(value)
            text = json.dumps(encoded, allow_nan=True)
        except BaseException as error:
            self.reply(nonce=command["nonce"], error=describe(error))
            return
        self.replies.write(f'{{"nonce": {json.dumps(command["nonce"])}, "value": {text}}}\n')
        self.replies.flush()

    def serve(self, sandbox):
        setup = json.loads(sys.stdin.readline())
        try:
            exec(compile(setup["setup"], "<setup>", "exec"), self.namespace)
        except BaseException as error:
            self.reply(nonce=setup["nonce"], error=describe(error))
            return
        sys.addaudithook(Fence(sandbox))
        self.reply(nonce=setup["nonce"], ok=True)
        for line in sys.stdin:
            command = json.loads(line)
            if "cell" in command:
                self.run_cell(command)
            else:
                self.run_test(command)


def main():
    reply_fd, sandbox, memory_mib, output_bytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    die_with_the_grader()
    if os.getppid() == 1:
        sys.exit("the grader ended before this worker started")
    set_limits(memory_mib, output_bytes)
    os.chdir(sandbox)
    Worker(reply_fd).serve(sandbox)


if __name__ == "__main__":
    main()
