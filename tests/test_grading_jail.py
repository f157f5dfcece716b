"""Submissions that attack the grader, under every jail this machine can build.

Each attack breaks the exercise ``double`` (3 points) while trying to get
its points some other way, and leaves ``total`` (2 points) honest: it must
end with exactly its honest part, the honest classmate graded beside it with
full marks, and no file outside the sandboxes changed.  Most attacks first
switch off the worker's audit hook, as a determined student would, so that
what stops them is the operating system's wall.
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from dlcourse.grading import jail as jail_module
from dlcourse.grading.grader import grade_all, reference_values, student_names
from dlcourse.grading.notebooks import load_lab
from dlcourse.grading.results import write_results
from dlcourse.grading.sandbox import Session, WorkerBroken
from tests.grading_toy import DOUBLE_SOLUTION, FAST, JAIL, digest, graded, submission, toy_notebook

DISABLE_HOOK = (
    "import gc\n"
    "for _fence in gc.get_objects():\n"
    "    if type(_fence).__name__ == 'Fence':\n"
    "        _fence.busy.active = True  # from now on the audit hook returns at once in this thread\n")
WRONG = "    return np.zeros(np.shape(x))\n"

ATTACKS = {
    # The instructor's notebook holds the reference solution: read it, run it.
    "hook_off_runs_the_instructor_solution": DISABLE_HOOK + (
        "import json\n"
        "def double(x):\n"
        "    cells = json.load(open({instructor!r}, encoding='utf-8'))['cells']\n"
        "    code = [''.join(c['source']) for c in cells if 'BEGIN SOLUTION' in ''.join(c['source'])][0]\n"
        "    scope = {{'np': np}}\n"
        "    exec(code, scope)\n"
        "    return scope['double'](x)\n"),
    # Find classmates' notebooks through /proc and the known folder, copy their answer.
    "hook_off_copies_a_classmate": DISABLE_HOOK + (
        "import json, os, re\n"
        "def double(x):\n"
        "    paths = {{{good!r}.encode()}}\n"
        "    for pid in os.listdir('/proc'):\n"
        "        try:\n"
        "            paths.update(re.findall(rb'[^\\x00 ]+[.]ipynb', open(f'/proc/{{pid}}/cmdline', 'rb').read()))\n"
        "        except OSError:\n"
        "            pass\n"
        "    for path in paths:\n"
        "        try:\n"
        "            cells = json.load(open(path, encoding='utf-8'))['cells']\n"
        "        except (OSError, ValueError):\n"
        "            continue\n"
        "        for cell in cells:\n"
        "            if ''.join(cell['source']).startswith('def double'):\n"
        "                scope = {{'np': np}}\n"
        "                exec(''.join(cell['source']), scope)\n"
        "                return scope['double'](x)\n"
        "    raise RuntimeError('nothing to copy')\n"),
    # Change the grader's files: the instructor notebook, a classmate's, its own results.
    "hook_off_writes_outside": DISABLE_HOOK + (
        "def double(x):\n"
        "    for path in ({instructor!r}, {good!r}, {own_results!r}):\n"
        "        try:\n"
        "            open(path, 'w').write('{{\"score\": 99}}')\n"
        "        except OSError:\n"
        "            pass\n" + WRONG),
    # sqlite opens its file in C, with no audit event for the path.
    "sqlite_creates_a_file": (
        "import sqlite3\n"
        "def double(x):\n"
        "    try:\n"
        "        sqlite3.connect({evil_db!r}).execute('create table stolen (x)')\n"
        "    except sqlite3.Error:\n"
        "        pass\n" + WRONG),
    # A path relative to a directory descriptor: the hook resolves it against the wrong folder.
    "descriptor_relative_write": DISABLE_HOOK + (
        "import os\n"
        "def double(x):\n"
        "    try:\n"
        "        root = os.open('/', os.O_RDONLY)\n"
        "        os.close(os.open({evil_relative!r}, os.O_WRONLY | os.O_CREAT, dir_fd=root))\n"
        "    except OSError:\n"
        "        pass\n" + WRONG),
    # A child in its own session that outlives the worker and rewrites results after grading.
    "setsid_child_rewrites_results": DISABLE_HOOK + (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', {child!r}], start_new_session=True)\n"
        "def double(x):\n" + WRONG),
    # The same child started through _posixsubprocess, which raises no audit event: the hook never sees it.
    "process_without_an_audit_event": (
        "import _posixsubprocess, os, sys\n"
        "errors_read, errors_write = os.pipe()\n"
        "executable = os.fsencode(sys.executable)\n"
        "pid = _posixsubprocess.fork_exec([executable, b'-c', {child!r}.encode()], [executable], True, (), None,\n"
        "                                 None, -1, -1, -1, -1, -1, -1, errors_read, errors_write, True, True, -1,\n"
        "                                 None, None, None, -1, None, False)\n"
        "os.close(errors_write)\n"
        "print('launched', pid, flush=True)\n"
        "def double(x):\n" + WRONG),
    # Signal every process it can see: the grader, classmates' workers.
    "signals_everyone": DISABLE_HOOK + (
        "import os, signal\n"
        "def double(x):\n"
        "    for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()] + [os.getppid()]:\n"
        "        if pid != os.getpid():\n"
        "            for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "                try:\n"
        "                    os.kill(pid, sig)\n"
        "                except OSError:\n"
        "                    pass\n" + WRONG),
    # Send what it can find to a Unix socket on the grader's machine.
    "unix_socket_exfiltration": DISABLE_HOOK + (
        "import socket\n"
        "def double(x):\n"
        "    for address in ({socket_path!r}, {abstract!r}):\n"
        "        try:\n"
        "            client = socket.socket(socket.AF_UNIX)\n"
        "            client.connect(address)\n"
        "            client.sendall(b'stolen')\n"
        "        except OSError:\n"
        "            pass\n" + WRONG),
    # An array whose comparisons always say "equal".
    "ndarray_subclass_equal_to_everything": (
        "class Always(np.ndarray):\n"
        "    def __eq__(self, other):\n"
        "        return np.ones(np.shape(other), bool)\n"
        "    def __ne__(self, other):\n"
        "        return np.zeros(np.shape(other), bool)\n"
        "    def __array_ufunc__(self, *args, **kwargs):\n"
        "        return True\n"
        "def double(x):\n"
        "    return np.zeros(np.shape(x)).view(Always)\n"),
    # A trace function that looks for the expected values in the test's frames.
    "trace_function_reads_expected_values": (
        "import sys, threading\n"
        "seen = []\n"
        "def tracer(frame, event, arg):\n"
        "    for name in ('expected', 'reference'):\n"
        "        if name in frame.f_locals:\n"
        "            seen.append(frame.f_locals[name])\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n"
        "threading.settrace(tracer)\n"
        "def double(x):\n"
        "    return seen[-1] if seen else np.zeros(np.shape(x))\n"),
    # Replies forged past the worker's own encoder: object arrays, unknown shapes.
    "forged_replies": (
        "import sys\n"
        "wire = sys.modules['wire']\n"
        "honest = wire.encode\n"
        "def forged(value, depth=0):\n"
        "    if isinstance(value, np.ndarray):\n"
        "        return {{'array': 'gASVAAAAAAAAAAA=', 'dtype': '|O8', 'shape': [1]}}\n"
        "    return honest(value, depth)\n"
        "wire.encode = forged\n"
        "def double(x):\n" + DOUBLE_SOLUTION),
    # Changes its input in place, which the grader copies back (as in the notebook): the asserts that
    # compare with 2 * x then pass; the value compared with the reference solution's does not.
    "mutates_its_input_to_fool_the_asserts": (
        "def double(x):\n"
        "    x[...] = 0\n"
        "    return np.zeros(np.shape(x))\n"),
    # A tree the grader cannot remove with its normal permissions.
    "unremovable_sandbox": (
        "import os\n"
        "os.makedirs('trap/inner', exist_ok=True)\n"
        "open('trap/inner/file', 'w').write('x')\n"
        "os.chmod('trap/inner', 0)\n"
        "os.chmod('trap', 0o500)\n"
        "def double(x):\n" + WRONG),
}
# Stops reading the grader's commands after its first answer: the next, large, command
# must not block the grader.  It keeps double_small (1) and total (2).
STDIN_STALL = (
    "import os\n"
    "pipes = []\n"
    "def double(x):\n"
    "    if np.size(x) == 2:\n"
    "        pipes.append(os.dup(0))\n"
    "        read_end, write_end = os.pipe()\n"
    "        pipes.append(write_end)\n"
    "        os.dup2(read_end, 0)  # the worker now waits on a pipe nobody writes\n"
    + DOUBLE_SOLUTION)
DOUBLE_TESTS = ("double_small", "double_large")


def jail_toy():
    """The toy lab with a hidden test whose argument is larger than a pipe's buffer."""
    return toy_notebook([
        graded('result = double([1, 2])\nassert result.shape == (2,), "shape"\nresult',
               role="test", test="double_small", exercise="double", points=1, visibility="visible"),
        graded("x = np.linspace(0, 1, 200_000)\nresult = double(x)\n"
               "assert np.allclose(result, 2 * x), 'not twice'\nresult[::5000]",
               role="test", test="double_large", exercise="double", points=2, visibility="hidden")])


def _grant_traversal(paths):
    """o+x on the folders above ``paths`` that lack it (a root machine with Python under /root)."""
    changed = []
    for path in paths:
        for folder in Path(path).resolve().parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                changed.append((folder, mode))
                os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)
    return changed


@pytest.fixture(scope="module", params=["namespaces", "uid"])
def jail(request):
    """Each layer this machine can give; a layer it cannot give is skipped, with the reason."""
    name, restore = request.param, []
    if name == "uid" and hasattr(os, "geteuid") and os.geteuid() == 0 and jail_module.why_not("uid"):
        # CI runs as root with Python under /root (mode 700): let worker uids reach it, for this test only.
        restore = _grant_traversal([sys.executable, *jail_module.python_roots()])
        jail_module.why_not.cache_clear()
    reason = jail_module.why_not(name)
    if reason:
        for folder, mode in restore:
            os.chmod(folder, mode)
        pytest.skip(f"no {name} jail on this machine: {reason}")
    yield jail_module.choose_jail(name)
    for folder, mode in restore:
        os.chmod(folder, mode)
    jail_module.why_not.cache_clear()


@pytest.fixture
def world_tmp(monkeypatch):
    """The grader's temporary folders in a folder of their own, which the workers' uids can traverse."""
    folder = tempfile.mkdtemp(prefix="grader-tmp-", dir="/tmp")
    os.chmod(folder, 0o711)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


class Listeners:
    """A filesystem and an abstract Unix socket and a TCP port on this machine, counting what reaches them."""

    def __init__(self, folder):
        self.path = str(folder / "grader.sock")
        self.abstract = "\0dlcourse-test-" + os.urandom(4).hex()
        self.servers = [socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX),
                        socket.create_server(("127.0.0.1", 0))]
        self.labels = ["filesystem socket", "abstract socket", "TCP on 127.0.0.1"]
        self.servers[0].bind(self.path)
        os.chmod(self.path, 0o777)
        self.servers[1].bind(self.abstract)
        self.port = self.servers[2].getsockname()[1]
        self.accepted = []
        self.stop = threading.Event()
        self.threads = []
        for server, label in zip(self.servers, self.labels):
            server.listen()
            server.settimeout(0.2)
            thread = threading.Thread(target=self.serve, args=(server, label), daemon=True)
            thread.start()
            self.threads.append(thread)

    def serve(self, server, label):
        while not self.stop.is_set():
            try:
                server.accept()[0].close()
                self.accepted.append(label)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()
        for server in self.servers:
            server.close()


def processes_mentioning(marker):
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def test_attacks_get_only_their_honest_points_and_change_nothing(jail, tmp_path, world_tmp):
    source = tmp_path / "instructor"
    source.mkdir()
    nbformat.write(jail_toy(), source / "toy.ipynb")
    lab = load_lab(source / "toy.ipynb")
    out = tmp_path / "out"
    private = tmp_path / "private"  # the grader's own folder: other users cannot enter it
    private.mkdir(mode=0o700)
    listeners = Listeners(private)
    marker = "dlcourse-attack-" + os.urandom(4).hex()
    good = submission(tmp_path, "good", "def double(x):\n" + DOUBLE_SOLUTION, notebook=jail_toy())
    names = {"instructor": str(source / "toy.ipynb"), "good": str(good), "marker": marker,
             "good_results": str(out / "good" / "results.json"), "socket_path": listeners.path,
             "abstract": listeners.abstract, "evil_db": str(out / "evil.db"),
             "evil_relative": str(out / "dirfd.txt").lstrip("/")}
    names["child"] = (  # what the setsid child runs, after its worker is gone
        "import time\ntime.sleep(3)\n"
        f"for path in ({str(out / 'setsid_child_rewrites_results' / 'results.json')!r}, {names['good_results']!r}):\n"
        "    try:\n        open(path, 'w').write('{}')\n    except OSError:\n        pass\n"
        f"# {marker}")
    attacks = [submission(tmp_path, name, code.format(**names, own_results=str(out / name / "results.json")),
                          notebook=jail_toy())
               for name, code in ATTACKS.items()]
    stall = submission(tmp_path, "stdin_stall", STDIN_STALL, notebook=jail_toy())
    hook_off = submission(tmp_path, "hook_off_but_honest", DISABLE_HOOK + (
        "import socket\n"
        "socket.socket(socket.AF_INET).close()  # the hook would have refused this\n"
        "def double(x):\n" + DOUBLE_SOLUTION), notebook=jail_toy())
    watched = [source / "toy.ipynb", good, *attacks, stall, hook_off]
    before = {path: digest(path) for path in watched}
    expected = reference_values(lab, FAST, jail)
    try:
        results = grade_all(lab, expected, [good, *attacks, stall, hook_off], FAST, out, jail, jobs=2,
                            progress=False)
        write_results(results, lab, out, jail)
        saved = {path.parent.name: path.read_bytes() for path in out.glob("*/results.json")}
        time.sleep(4)  # the setsid child would write now
    finally:
        listeners.close()

    by_student = {result.student: result for result in results}
    assert by_student["good"].score == 5, by_student["good"].tests
    assert by_student["hook_off_but_honest"].score == 5, "switching the hook off is no use and no harm"
    for name in ATTACKS:
        result = by_student[name]
        lost = {test.name: test.output for test in result.tests if test.score == 0}
        if name == "forged_replies":
            assert set(DOUBLE_TESTS) <= set(lost) and "not plain data" in lost["double_small"], lost
        elif name == "mutates_its_input_to_fool_the_asserts":
            assert set(lost) == set(DOUBLE_TESTS) and "differs from the reference" in lost["double_large"], lost
        else:
            assert set(lost) == set(DOUBLE_TESTS), (name, lost)
    stalled = by_student["stdin_stall"]
    assert stalled.score == 3, stalled.tests
    assert "stopped reading" in next(test.output for test in stalled.tests if test.name == "double_large")

    assert {path: digest(path) for path in watched} == before, "no submission or instructor file changed"
    assert {path.parent.name: path.read_bytes() for path in out.glob("*/results.json")} == saved
    assert not (out / "evil.db").exists() and not (out / "dirfd.txt").exists()
    assert sorted(path.name for path in out.iterdir()) == sorted(result.student for result in results)
    assert not processes_mentioning(marker), "the setsid children died with their workers"
    if sys.version_info[:2] == (3, 11):  # fork_exec's arguments as of 3.11; the hook saw nothing
        assert "launched" in (out / "process_without_an_audit_event" / "output.log").read_text()
    reached = listeners.accepted
    if jail.name == "uid":  # no network namespace: abstract Unix sockets stay reachable (README says so)
        reached = [label for label in reached if label != "abstract socket"]
    assert not reached, f"a submission reached a socket of the grader's machine: {reached}"
    assert not list(world_tmp.iterdir()), "every sandbox was removed"
    assert all(json.loads(path.read_text())["extra_data"]["jail"] == jail.summary
               for path in out.glob("*/results.json"))


def test_the_network_is_loopback_only_under_namespaces(tmp_path, world_tmp):
    if jail_module.why_not("namespaces"):
        pytest.skip(f"no namespaces jail: {jail_module.why_not('namespaces')}")
    jail = jail_module.choose_jail("namespaces")
    source = tmp_path / "instructor"
    source.mkdir()
    nbformat.write(jail_toy(), source / "toy.ipynb")
    lab = load_lab(source / "toy.ipynb")
    listeners = Listeners(tmp_path)
    try:
        attack = submission(tmp_path, "tcp", DISABLE_HOOK + (
            "import socket\n"
            f"def double(x):\n    socket.create_connection(('127.0.0.1', {listeners.port}), timeout=1)\n"
            + DOUBLE_SOLUTION), notebook=jail_toy())
        result = grade_all(lab, reference_values(lab, FAST, jail), [attack], FAST, tmp_path / "out", jail,
                           progress=False)[0]
    finally:
        listeners.close()
    assert not listeners.accepted
    assert result.score == 2 and "Connection refused" in result.tests[0].output


# --- what the grader reads before any code runs -------------------------------------------------

def test_links_fifos_and_devices_are_refused_without_blocking(tmp_path):
    lab = load_lab_here(tmp_path)
    good = submission(tmp_path, "good", "def double(x):\n" + DOUBLE_SOLUTION)
    link = tmp_path / "link.ipynb"
    link.symlink_to(good)
    folder = tmp_path / "linked_folder"
    folder.mkdir()
    (folder / "toy.ipynb").symlink_to(good)
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    fifo_folder = tmp_path / "fifo_folder"
    fifo_folder.mkdir()
    os.mkfifo(fifo_folder / "toy.ipynb")
    device = tmp_path / "device_folder"
    device.mkdir()
    (device / "toy.ipynb").symlink_to("/dev/zero")
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as handle:
        handle.truncate(65 << 20)
    started = time.monotonic()
    results = grade_all(lab, reference_values(lab, FAST, JAIL), [link, folder, fifo, fifo_folder, device, big, good],
                        FAST, tmp_path / "out", JAIL, progress=False)
    assert time.monotonic() - started < 30
    problems = [result.problem for result in results]
    assert [result.score for result in results] == [0, 0, 0, 0, 0, 0, 5], problems
    assert "symbolic link" in problems[0] and "symbolic link" in problems[1] and "symbolic link" in problems[4]
    assert "not a regular file" in problems[2] and "not a regular file" in problems[3]
    assert "larger than" in problems[5]


def load_lab_here(tmp_path):
    source = tmp_path / "instructor"
    source.mkdir(exist_ok=True)
    nbformat.write(toy_notebook(), source / "toy.ipynb")
    return load_lab(source / "toy.ipynb")


def test_student_names_are_distinct_safe_and_stay_inside_out(tmp_path):
    made = []
    for relative in ["a/Kim.ipynb", "b/kim.ipynb", "c/KIM.ipynb", "d/.hidden.ipynb", "e/-rf.ipynb",
                     "f/김철수.ipynb", "g/김철수.ipynb", "h/a b.ipynb", "i/x..ipynb"]:
        path = tmp_path / relative
        path.parent.mkdir()
        path.write_text("{}")
        made.append(path)
    made += [tmp_path / "a" / "..", tmp_path / "b" / ".", Path("/")]
    names = student_names(made)
    assert len({name.lower() for name in names}) == len(names)
    out = (tmp_path / "out").resolve()
    for name in names:
        assert (out / name).resolve().parent == out, name
        assert name and not name.startswith(".") and "/" not in name
    assert names[:3] == ["Kim", "kim-2", "KIM-3"]
    assert names[5:7] == ["김철수", "김철수-2"]


def test_a_worker_that_kills_its_own_process_group_hits_only_itself(tmp_path):
    """Workers start in sessions of their own: ``killpg(0)`` from one cannot reach the grader."""
    code = DISABLE_HOOK + ("import os, signal\ndef boom(x):\n    os.killpg(0, signal.SIGKILL)\n"
                           "def fine(x):\n    return 2 * x\n")
    with Session(JAIL, "import numpy as np", {"boom": code}, FAST) as session:
        with pytest.raises(WorkerBroken, match="killed by SIGKILL"):
            session.call("boom", (1,), {})
        assert session.call("fine", (21,), {}) == 42  # a fresh worker carries on
        assert session.workers == 2


# --- choosing the jail ----------------------------------------------------------------------------

def grading(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlcourse.grading", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})}, cwd=cwd)


def test_no_jail_only_for_trusted_submissions_and_missing_bwrap_is_one_line(tmp_path):
    source = tmp_path / "instructor"
    source.mkdir()
    nbformat.write(toy_notebook(), source / "toy.ipynb")
    submission_path = submission(tmp_path, "s", "def double(x):\n" + DOUBLE_SOLUTION)
    common = ["grade", "--lab", "toy", "--source", source, "--out", tmp_path / "out", "--quiet"]
    refused = grading(*common, "--jail", "none", submission_path)
    assert refused.returncode == 1 and "--trusted-submissions" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "s").exists()
    no_bwrap = grading(*common, "--jail", "namespaces", submission_path, env={"PATH": "/nonexistent"})
    assert no_bwrap.returncode == 1 and "bubblewrap is not installed" in no_bwrap.stderr
    assert len(no_bwrap.stderr.strip().splitlines()) == 1
    trusted = grading(*common, "--jail", "none", "--trusted-submissions", submission_path)
    assert trusted.returncode == 0, trusted.stderr
    assert "jail: none" in trusted.stdout and "warning: no jail" in trusted.stderr
    saved = json.loads((tmp_path / "out" / "s" / "results.json").read_text())
    assert saved["score"] == 5 and saved["extra_data"]["jail"].startswith("none")


def test_the_jail_command_says_what_this_machine_gives():
    done = grading("jail")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["namespaces", "uid", "none"]
    for name, line in zip(["namespaces", "uid"], lines):
        assert ("available" in line) == (not jail_module.why_not(name)), line


def test_the_uid_jail_refuses_files_other_users_can_read(jail, tmp_path):
    if jail.name != "uid":
        pytest.skip("only the separate-uid jail relies on file permissions")
    shared = Path(tempfile.mkdtemp(prefix="world-readable-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        source = shared / "instructor"
        source.mkdir(mode=0o755)
        nbformat.write(toy_notebook(), source / "toy.ipynb")
        os.chmod(source / "toy.ipynb", 0o644)
        good = submission(tmp_path, "s", "def double(x):\n" + DOUBLE_SOLUTION)
        done = grading("grade", "--lab", "toy", "--source", source, "--jail", "uid", "--out", tmp_path / "out",
                       "--quiet", good)
        assert done.returncode == 1 and "cannot hide" in done.stderr and "toy.ipynb" in done.stderr
        os.chmod(source, 0o700)
        done = grading("grade", "--lab", "toy", "--source", source, "--jail", "uid", "--out", tmp_path / "out",
                       "--quiet", good)
        assert done.returncode == 0, done.stderr
        assert "separate uid" in done.stdout and "5 / 5" in done.stdout
    finally:
        shutil.rmtree(shared)


def test_a_uid_is_never_shared_by_two_graders_on_one_machine(tmp_path):
    locks = tmp_path / "uids"
    first, first_lock = jail_module.claim_uid_slot(locks)
    second, second_lock = jail_module.claim_uid_slot(locks)
    holder = subprocess.Popen(  # another grader, in another process, holding the next slot
        [sys.executable, "-c", ("import fcntl, os, sys\n"
                                f"fd = os.open({str(locks / '2.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                                "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        third, third_lock = jail_module.claim_uid_slot(locks)
        assert (first, second, third) == (0, 1, 3)
        os.close(first_lock)
        again, again_lock = jail_module.claim_uid_slot(locks)
        assert again == 0
    finally:
        holder.communicate("")
    for lock in (second_lock, third_lock, again_lock):
        os.close(lock)
    os.chmod(locks, 0o777)
    with pytest.raises(jail_module.JailError, match="nobody else may write"):
        jail_module.claim_uid_slot(locks)
