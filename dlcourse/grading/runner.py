"""Run a lab's tests in the grader's own process; only the student's functions run in the worker.

For each test the grader builds a namespace from the instructor's setup cell
(run here once per lab) and, for every name the exercise and helper cells
define, a ``StudentFunction`` that forwards the call to the student's worker
and returns the plain data that came back (``wire.py``).  The test's own
code — its inputs, asserts, expected values and messages — runs here and is
never sent anywhere, so nothing in the student's process can read it, patch
it or answer it with an object that compares equal to everything.
"""
import ast
import builtins
import functools
import threading
import time
from dataclasses import dataclass

from dlcourse.grading.notebooks import AST_LOCK
from dlcourse.grading.sandbox import WorkerBroken

MAX_TEXT = 400
_SETUPS = {}
_SETUP_LOCK = threading.Lock()


@dataclass
class Outcome:
    """What one test gave: the value of its last line, or the reason there is none."""
    value: object = None
    error: str = None


class StudentFunction:
    """Stands for a function of the student's: calling it calls the real one in the worker."""

    def __init__(self, name, session):
        self.name, self.session = name, session

    def __call__(self, *args, **kwargs):
        return self.session.call(self.name, args, kwargs)

    def __repr__(self):
        return f"<the student's {self.name}>"


def setup_namespace(setup):
    """The instructor's setup cell run once in this process (trusted code: imports and helpers)."""
    with _SETUP_LOCK:
        if setup not in _SETUPS:
            namespace = {"__name__": "__grader__", "__builtins__": builtins}
            exec(compile(setup, "<setup>", "exec"), namespace)
            _SETUPS[setup] = namespace
        return _SETUPS[setup]


@functools.lru_cache(maxsize=1024)
def split_last_expression(source, filename):
    """The cell's statements and its last line's expression (whose value the test reports), compiled once.

    Under ``AST_LOCK``: submissions are graded in threads, and CPython 3.11
    cannot build two syntax trees at once.
    """
    with AST_LOCK:
        tree = ast.parse(source, filename)
        if not tree.body or not isinstance(tree.body[-1], ast.Expr):
            return compile(tree, filename, "exec"), None
        last = ast.Expression(tree.body.pop().value)
        return compile(tree, filename, "exec"), compile(last, filename, "eval")


def describe(error):
    """One line for a failed test: the student's own error as the worker told it, or the assert's message."""
    if getattr(error, "student_description", None):
        return error.student_description
    message = str(error)
    text = f"{type(error).__name__}{': ' + message if message else ''}"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ..."


def run_tests(lab, session, limits):
    """``{test name: Outcome}`` for every test of ``lab``, against the code in ``session``."""
    outcomes = {}
    base = setup_namespace(lab.setup)
    for test in lab.tests:
        scope = dict(base)
        scope.update({name: StudentFunction(name, session) for name in lab.student_names})
        session.deadline = time.monotonic() + (test.timeout or limits.test_seconds)
        session.test = test.name  # names the seed of each call the test makes
        try:
            statements, last = split_last_expression(test.source, f"<test {test.name}>")
            exec(statements, scope)
            outcomes[test.name] = Outcome(value=eval(last, scope) if last is not None else None)
        except WorkerBroken as broken:
            outcomes[test.name] = Outcome(error=str(broken))
        except Exception as error:  # noqa: BLE001 - a failed assert, or the student's error
            outcomes[test.name] = Outcome(error=describe(error))
        finally:
            session.deadline = None
    return outcomes
