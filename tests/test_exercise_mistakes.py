"""Wrong but plausible answers to every exercise lose points: the tests tell them from the solution.

Each file ``tests/mistakes/<notebook>.py`` holds ``MISTAKES = {exercise:
{what is wrong: the whole exercise cell as a student might write it}}``.
They run here, in this process (they are ours, not a student's), through
the grader's own test runner and comparison, so "loses points" means what
it means when grading.
"""
import dataclasses
import functools
import importlib

import pytest

from dlcourse.grading import wire
from dlcourse.grading.compare import compare
from dlcourse.grading.notebooks import defined_names, graded_notebooks, load_lab
from dlcourse.grading.runner import run_tests
from dlcourse.grading.sandbox import Limits
from tests.conftest import REPO

LABS = graded_notebooks(REPO / "notebooks")


class InProcess:
    """Stands in for the grader's worker session: the cells run here, values cross as plain data."""
    deadline = None

    def __init__(self, lab, cells):
        self.namespace = {"__name__": "__student__"}
        for code in [lab.setup, *cells.values(), *lab.helpers]:
            exec(compile(code, "<cell>", "exec"), self.namespace)

    def call(self, name, args, kwargs):
        return wire.decode(wire.encode(self.namespace[name](*args, **kwargs)))


def reference_cells(lab):
    return {exercise: code for exercise, (_, code) in lab.exercises.items()}


@functools.cache
def lab_and_expected(name):
    lab = load_lab(LABS[name])
    outcomes = run_tests(lab, InProcess(lab, reference_cells(lab)), Limits())
    assert not [outcome.error for outcome in outcomes.values() if outcome.error], outcomes
    return lab, {test: outcome.value for test, outcome in outcomes.items()}


def mistakes_of(name):
    try:
        return importlib.import_module(f"tests.mistakes.{name}").MISTAKES
    except ModuleNotFoundError:
        return {}


CASES = [(name, exercise, label) for name in sorted(LABS)
         for exercise, wrong in sorted(mistakes_of(name).items()) for label in wrong]


def test_every_exercise_has_mistakes_that_must_fail():
    missing = [(name, exercise) for name in sorted(LABS) for exercise in load_lab(LABS[name]).exercises
               if not mistakes_of(name).get(exercise)]
    assert not missing


@pytest.mark.parametrize("name, exercise, label", CASES, ids=[" · ".join(case) for case in CASES])
def test_a_wrong_answer_loses_points(name, exercise, label):
    lab, expected = lab_and_expected(name)
    assert exercise in lab.exercises, f"{name} has no exercise {exercise!r}"
    wrong = mistakes_of(name)[exercise][label]
    cells = {**reference_cells(lab), exercise: wrong}
    # This exercise's tests, and any other test that calls what the wrong cell defines.
    names = set(defined_names(wrong)) | set(defined_names(lab.exercises[exercise][1]))
    relevant = dataclasses.replace(lab, tests=[test for test in lab.tests if test.exercise == exercise
                                               or any(name in test.source for name in names)])
    outcomes = run_tests(relevant, InProcess(lab, cells), Limits())
    lost = []
    for test in relevant.tests:
        outcome = outcomes[test.name]
        if outcome.error is not None or not compare(expected[test.name], outcome.value, test.rtol, test.atol)[0]:
            lost.append(test)
    assert lost, f"every test passes on: {label}"
    assert {test.exercise for test in lost} == {exercise}, [test.name for test in lost]
