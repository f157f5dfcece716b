"""The wall around a student's worker, built by the operating system: the strongest this machine allows.

Three layers, tried in this order by ``choose_jail("auto")``; the grader
names the one it used in its table and in every ``results.json``
(``extra_data.jail``), and ``python -m dlcourse.grading jail`` says which
ones a machine offers and why not the others.

- ``namespaces`` — bubblewrap (``bwrap``) gives each worker its own user,
  mount, PID, IPC, UTS and network namespaces and runs it as ``nobody``
  without capabilities.  Its file system is built from nothing: the system's
  programs and libraries and the Python installation, read-only; a private
  ``/tmp``; a ``/proc`` of its own PID namespace; the sandbox folder, the only
  writable place, at ``/sandbox``.  The course's folder, the instructor's
  notebooks, other submissions and the results folder are not mounted at
  all; the network has only loopback; no host Unix socket is reachable;
  every process it starts dies with it, ``setsid`` or not, because its PID
  namespace ends with it.
- ``uid`` — where namespaces are refused (a Docker container's default
  seccomp profile, which is where Gradescope runs) and the grader is root:
  every worker runs as a user id of its own with no supplementary groups, in
  a sandbox only that uid can open; the grader refuses to start while that
  uid could read the instructor's notebooks or any submission; after each
  worker, every process of its uid is killed with ``kill(-1)`` sent *as*
  that uid, which ``setsid`` cannot escape.  The network and world-readable
  files stay reachable.
- ``none`` — the worker runs as the grader's own user: only for trusted
  submissions (``--trusted-submissions``), and the grader says so.
"""
import fcntl
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

NOBODY = 65534
UID_BASE = 1_800_000_000  # far above the uids of real accounts; one per running worker
# Which of those uids are in use, across every grader on the machine (one lock file per uid): two
# graders at once must never share a uid, or one would kill the other's workers.  Only root
# runs this jail, and only root may write under /run.
UID_LOCKS = Path("/run/dlcourse-grader-uids")
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/alternatives")
SANDBOX_INSIDE = "/sandbox"
CODE_INSIDE = "/grader"


class JailError(RuntimeError):
    """No jail of the kind asked for; the message is one line that says why and what to do."""


def course_dirs():
    """The course's own packages: never mounted, never readable from a worker."""
    package = Path(__file__).resolve().parents[1]
    return [str(package), str(package.parent / "labs")]


def _nested_in(path, roots):
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def python_roots():
    """The folders the worker's Python needs: its installation, its environment, its packages."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages()}
    roots = []
    for path in sorted({os.path.realpath(path) for path in candidates if os.path.isdir(path)}, key=len):
        if not _nested_in(path, roots) and not _nested_in(path, SYSTEM_PATHS):
            roots.append(path)
    return roots


class Placement:
    """One worker's place in a jail: how to start it, and what to clean up after it."""

    sandbox_inside = None  # the sandbox's path as the worker sees it (None: the same path)
    code_inside = None
    parent_check = True    # the worker can check that its parent is still the grader
    processes = 0          # RLIMIT_NPROC for the worker (0: not set)

    def __init__(self, jail):
        self.jail = jail

    def prepare(self, sandbox, code_dir):
        """Make the folders ready for the worker before it starts."""

    def argv(self, sandbox, code_dir, python_argv):
        return python_argv

    def popen_options(self):
        return {}

    def release(self):
        """After the worker: nothing it started may live on."""


class Jail:
    name = "none"
    summary = "none: submissions trusted (--trusted-submissions), no wall around them"

    def place(self):
        return Placement(self)


class NamespaceJail(Jail):
    name = "namespaces"
    summary = "namespaces (bubblewrap: own user, mount, PID, IPC and network namespaces; / read-only)"

    def place(self):
        return _NamespacePlacement(self)


class _NamespacePlacement(Placement):
    sandbox_inside = SANDBOX_INSIDE
    code_inside = CODE_INSIDE
    parent_check = False

    def argv(self, sandbox, code_dir, python_argv):
        return [*bwrap_prefix(str(sandbox), str(code_dir)), *python_argv]


def bwrap_prefix(sandbox, code_dir):
    """``bwrap ... --`` building the worker's whole file system; ``sandbox`` becomes ``/sandbox``."""
    return [*_bwrap_system(), "--bind", sandbox, SANDBOX_INSIDE, "--ro-bind", code_dir, CODE_INSIDE,
            "--chdir", SANDBOX_INSIDE, "--"]


@cache
def _bwrap_system():
    """The part of the bwrap command that is the same for every worker (looked up once)."""
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in ETC_FILES:
        if os.path.lexists(path):
            argv += ["--ro-bind", path, path]
    roots = python_roots()
    for path in roots:
        argv += ["--ro-bind", path, path]
    for path in course_dirs():  # a non-editable install puts the course inside site-packages
        if _nested_in(path, roots) and os.path.isdir(path):
            argv += ["--tmpfs", path]
    argv += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    return tuple(argv)


class UidJail(Jail):
    name = "uid"
    summary = "separate uid (a user id of its own per worker; network and world-readable files reachable)"

    def place(self):
        slot, lock = claim_uid_slot()
        return _UidPlacement(self, slot, lock)


def claim_uid_slot(locks=UID_LOCKS):
    """The lowest uid slot no process on this machine holds, and the open file whose lock holds it."""
    locks.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(locks)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077 or not os.path.isdir(locks) or os.path.islink(locks):
        raise JailError(f"{locks} must be a folder of the grader's own that nobody else may write")
    slot = 0
    while True:
        lock = os.open(locks / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, lock
        except BlockingIOError:
            os.close(lock)
            slot += 1


class _UidPlacement(Placement):
    processes = 1024  # threads count too: TensorFlow starts dozens

    def __init__(self, jail, slot, lock):
        super().__init__(jail)
        self.slot, self.lock = slot, lock
        self.uid = UID_BASE + slot

    def prepare(self, sandbox, code_dir):
        os.chown(sandbox, self.uid, self.uid)
        os.chmod(sandbox, 0o700)
        os.chmod(code_dir, 0o755)
        for path in Path(code_dir).iterdir():
            os.chmod(path, 0o644)

    def popen_options(self):
        return {"user": self.uid, "group": self.uid, "extra_groups": [], "umask": 0o077}

    def release(self):
        try:
            kill_every_process_of(self.uid)
        finally:
            os.close(self.lock)  # frees the uid for the next worker, here or in another grader


def processes_of(uid):
    """Ids of the living processes (zombies aside: they run nothing) whose real uid is ``uid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith(("Z", "X")):
                found.append(int(status.parent.name))
        except (OSError, ValueError, KeyError, IndexError):
            pass
    return found


def kill_every_process_of(uid, rounds=20):
    """SIGKILL everything running as ``uid``: ``kill(-1)`` sent by a process of that uid."""
    for _ in range(rounds):
        if not processes_of(uid):
            return
        subprocess.run([sys.executable, "-I", "-S", "-c",
                        "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass"],
                       user=uid, group=uid, extra_groups=[], capture_output=True, timeout=30, check=False)
    leftover = processes_of(uid)
    if leftover:
        raise RuntimeError(f"processes of uid {uid} survived {rounds} rounds of kill(-1): {leftover}")


def readable_by(uid, paths):
    """Which of ``paths`` a process running as ``uid`` can open (files) or list (folders).

    Every worker uid is an account of no group that owns nothing outside its
    sandbox, so what one of them can read, all of them can.
    """
    probe = ("import json, os, sys\nfound = []\nfor path in json.load(sys.stdin):\n    try:\n"
             "        os.listdir(path) if os.path.isdir(path) else os.close(os.open(path, os.O_RDONLY))\n"
             "        found.append(path)\n    except OSError:\n        pass\nprint(json.dumps(found))")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], input=json.dumps([str(p) for p in paths]),
                          user=uid, group=uid, extra_groups=[], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise JailError(f"cannot check what uid {uid} may read: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _try(argv, **options):
    """``""`` if ``argv`` runs and exits 0, else the reason in a few words."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, **options)
    except (OSError, subprocess.SubprocessError) as error:
        return f"{type(error).__name__}: {error}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit code {done.returncode}"
    return ""


@cache
def why_not(name):
    """``""`` when layer ``name`` works on this machine, else why it does not (checked once)."""
    if name == "namespaces":
        if shutil.which("bwrap") is None:
            return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        with tempfile.TemporaryDirectory(prefix="dlcourse-probe-") as sandbox, \
                tempfile.TemporaryDirectory(prefix="dlcourse-probe-code-") as code:
            reason = _try([*bwrap_prefix(sandbox, code), sys.executable, "-I", "-c", "import sys"])
        return f"bwrap could not start a worker: {reason}" if reason else ""
    if name == "uid":
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return "the grader is not root, so it cannot run workers as other users"
        reason = _try([sys.executable, "-I", "-c", "pass"], user=UID_BASE, group=UID_BASE, extra_groups=[])
        return (f"uid {UID_BASE} cannot run {sys.executable}: {reason} "
                "(make the Python installation readable by other users)") if reason else ""
    if name == "none":
        return ""
    raise ValueError(name)


LAYERS = {"namespaces": NamespaceJail, "uid": UidJail, "none": Jail}


def choose_jail(requested="auto", trusted=False):
    """The jail to grade in: ``requested`` (or the strongest that works, for ``auto``)."""
    if requested == "none" or (requested == "auto" and trusted and why_not("namespaces") and why_not("uid")):
        if not trusted:
            raise JailError("--jail none runs student code unconfined; add --trusted-submissions "
                            "only if you trust every submission")
        return Jail()
    names = ["namespaces", "uid"] if requested == "auto" else [requested]
    for name in names:
        if not why_not(name):
            return LAYERS[name]()
    reasons = "; ".join(f"{name}: {why_not(name)}" for name in names)
    raise JailError(f"no jail for the submissions ({reasons}); install bubblewrap, run the grader as root, "
                    "or pass --trusted-submissions if you trust every submission")
