"""The process that runs one student's code: started by ``sandbox.py`` inside a jail, never imported.

It is run as a script (``python -I -B worker.py``) from a copy of this file
and ``wire.py`` that the grader puts beside the sandbox, so it imports
nothing from ``dlcourse``.  The grader sends one JSON command per line on
stdin and reads one JSON reply per line from the descriptor named on the
command line; the student's printing goes to stdout/stderr, which the grader
points at a size-capped file outside the sandbox.

Commands, in order: ``setup`` (the instructor's imports), ``cell`` (each
exercise cell, then the instructor's helper cells), then any number of
``call``: call a function the cells defined with arguments sent as plain
data (``wire.py``) and send back its result as plain data.  The test code
itself, its asserts and its expected values never come here: they run in the
grader, which only asks this process for the student's results.

Everything here is under the student's control once their code runs, so
nothing here is trusted: the walls are the operating system's (``jail.py``).
The audit hook below is a second layer that gives students a clear message
("blocked by the grader: ...") for the common mistakes — importing the
course's own solutions, writing outside the sandbox, opening a socket —
and is expected to be switched off by a determined submission.
"""
import json
import os
import resource
import sys
import threading
import traceback

BLOCKED_IMPORTS = ("dlcourse", "labs", "tests")
READABLE_SYSTEM_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/etc", "/opt/conda",
                         "/sys/devices/system/cpu", "/sys/fs/cgroup", "/proc/cpuinfo", "/proc/meminfo",
                         "/proc/self", "/dev/null", "/dev/urandom", "/dev/random", "/dev/zero")
WRITABLE_ROOTS = ("/dev/null",)
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
    """On Linux, be killed when the process that started this one ends, even by ``kill -9``."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass  # not Linux: the grader still kills its workers when it exits normally


def set_limits(memory_mib, output_bytes, processes):
    """Cap address space, file size (printing cannot fill the disk), core dumps and processes."""
    limits = [(resource.RLIMIT_AS, memory_mib << 20), (resource.RLIMIT_FSIZE, output_bytes),
              (resource.RLIMIT_CORE, 0)]
    if processes:
        limits.append((resource.RLIMIT_NPROC, processes))
    for limit, value in limits:
        resource.setrlimit(limit, (value, value))


class Fence:
    """The audit hook: a ``PermissionError`` with a plain reason for what a test never needs."""

    def __init__(self, sandbox, course_dirs, forbidden=()):
        self.sandbox = os.path.realpath(sandbox)
        self.forbidden = set(forbidden)
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        self.readable = tuple(os.path.realpath(root) for root in (*prefixes, *READABLE_SYSTEM_ROOTS))
        self.unreadable = tuple(course_dirs)
        self.pid = os.getpid()
        self.busy = threading.local()

    def inside(self, path, roots):
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def check_path(self, path, writing):
        if isinstance(path, int):
            return  # an already open descriptor
        resolved = os.path.realpath(os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path))
        if self.inside(resolved, (self.sandbox, *WRITABLE_ROOTS)):
            return
        if self.inside(resolved, self.unreadable):
            raise PermissionError(f"blocked by the grader: reading the course's code {path!r}")
        if not writing and (self.inside(resolved, self.readable)
                            or self.inside(resolved, (f"/proc/{self.pid}",))):
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
        elif event == "os.kill":
            if args[0] not in (self.pid, 0):
                raise PermissionError("blocked by the grader: signalling another process")
        elif event == "import":
            if args[0].split(".")[0] in BLOCKED_IMPORTS or args[0].split(".")[0] in self.forbidden:
                raise ImportError(f"blocked by the grader: import {args[0]} (write the exercise yourself)")
        elif event in BLOCKED_EVENTS or event.startswith(BLOCKED_PREFIXES):
            raise PermissionError(f"blocked by the grader: {event}")


def reseed(seed):
    """Start Python's, NumPy's and Keras's random generators from ``seed``: the same submission, the same grade.

    The grader sends a seed with the setup and with every call (derived from
    the grading seed, the test and the call's number), so a call gives the same
    value whatever ran before it in this worker, or whether the worker was
    restarted.  TensorFlow, when the setup cell loaded it, is also told to pick
    deterministic kernels (the same sums in the same order on every run).
    """
    import random
    random.seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed % 2**32)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].config.experimental.enable_op_determinism()


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


def builtin_base(error):
    """The nearest built-in exception class's name, so a test's ``except ValueError`` still works."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception):
            return cls.__name__
    return "Exception"


class Worker:
    def __init__(self, reply_fd, wire):
        self.replies = os.fdopen(reply_fd, "w", encoding="utf-8")
        self.wire = wire
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}

    def reply(self, **fields):
        self.replies.write(json.dumps(fields, allow_nan=True) + "\n")
        self.replies.flush()

    def run_code(self, command, filename):
        try:
            exec(compile(command["code"], filename, "exec"), self.namespace)
        except BaseException as error:  # SystemExit and KeyboardInterrupt included: a cell's failure
            self.reply(nonce=command["nonce"], error=describe(error), type=builtin_base(error))
            return False
        self.reply(nonce=command["nonce"], ok=True)
        return True

    def call(self, command):
        """Call a function the cells defined; reply with its result, and with inputs it changed."""
        nonce, name = command["nonce"], command["name"]
        try:
            function = self.namespace.get(name)
            if not callable(function):
                raise NameError(f"name {name!r} is not defined (run the exercise cell that defines it)")
            args = self.wire.decode(command["args"])
            kwargs = self.wire.decode(command["kwargs"])
            reseed(command["seed"])
            import numpy  # arguments arrive as plain data: lists, numbers, base-class arrays
            before = [arg.copy() if isinstance(arg, numpy.ndarray) else None for arg in args]
            value = function(*args, **kwargs)
            try:
                encoded = self.wire.encode(value)
            except self.wire.WireError as error:
                raise TypeError(f"{name}() returned something the grader cannot check: {error} "
                                "(return numbers, text, NumPy arrays, or lists, tuples and dicts of them)") from None
            changed = {str(index): self.wire.encode(arg) for index, (arg, old) in enumerate(zip(args, before))
                       if old is not None and not numpy.array_equal(arg, old, equal_nan=old.dtype.kind in "fc")}
            text = json.dumps({"nonce": nonce, "value": encoded, "changed": changed}, allow_nan=True)
        except BaseException as error:
            self.reply(nonce=nonce, error=describe(error), type=builtin_base(error))
            return
        self.replies.write(text + "\n")
        self.replies.flush()

    def serve(self, sandbox):
        setup = json.loads(sys.stdin.readline())
        reseed(setup["seed"])
        if not self.run_code(setup, "<setup>"):
            return
        reseed(setup["seed"])  # now Keras too, if the setup cell imported it
        forbidden = setup.get("forbidden", [])
        for name in forbidden:  # an exercise that must be written without it: `import` now fails
            sys.modules[name] = None
        sys.addaudithook(Fence(sandbox, setup.get("course_dirs", []), forbidden))
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "cell":
                self.run_code(command, f"<exercise {command['exercise']}>")
            elif command["op"] == "call":
                self.call(command)


def load_wire():
    """``wire.py`` from beside this file (``-I`` leaves the script's folder off ``sys.path``)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import wire
    finally:
        sys.path.pop(0)
    return wire


def main():
    reply_fd, sandbox = int(sys.argv[1]), sys.argv[2]
    memory_mib, output_bytes, processes, parent = map(int, sys.argv[3:7])
    die_with_the_grader()
    if parent and os.getppid() != parent:  # 0: in a PID namespace, whose end kills this process
        sys.exit("the grader ended before this worker started")
    set_limits(memory_mib, output_bytes, processes)
    os.chdir(sandbox)
    Worker(reply_fd, load_wire()).serve(sandbox)


if __name__ == "__main__":
    main()
