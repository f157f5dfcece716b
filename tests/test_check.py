"""The student's own check in a notebook: visible tests of one exercise, points, and a Korean summary."""
import numpy as np
import pytest

from dlcourse.grading.check import Checker
from dlcourse.grading.notebooks import load_lab
from tests.conftest import REPO

LAB = "week1_softmax_mnist"


def namespace_with(softmax_code=None):
    lab = load_lab(REPO / "notebooks" / f"{LAB}.ipynb")
    namespace = {"np": np}
    for exercise, (_, code) in lab.exercises.items():
        exec(softmax_code if exercise == "softmax" and softmax_code else code, namespace)
    return namespace


def test_a_solved_exercise_gets_all_its_visible_points_and_hidden_tests_are_announced(tmp_path):
    report = Checker(LAB, folder=tmp_path)("softmax", namespace_with())
    text = repr(report)
    assert report.passed and report.score == report.max_score == 2
    assert text.splitlines()[0] == "연습 softmax: 공개 테스트 2/2점"
    assert "softmax_rows_sum_to_one" in text and "softmax_is_stable_for_large_logits" not in text
    assert "숨겨진 테스트 2개 (4점)" in text


def test_a_wrong_or_missing_answer_says_which_test_and_why():
    wrong = "def softmax(logits):\n    return np.exp(logits) / np.sum(np.exp(logits), axis=0)\n"
    report = Checker(LAB)("softmax", namespace_with(wrong))
    assert report.score == 1 and not report.passed
    failed = [line for line in report.lines if "✘" in line]
    assert len(failed) == 1 and "softmax_rows_sum_to_one" in failed[0] and "마지막 axis" in failed[0]
    unsolved = "def softmax(logits):\n    raise NotImplementedError('여기를 채우세요')\n"
    report = Checker(LAB)("softmax", namespace_with(unsolved))
    assert report.score == 0 and all("아직 풀지 않았습니다" in line for line in report.lines)


def test_the_whole_notebook_and_the_students_variables_are_left_alone():
    namespace = namespace_with()
    namespace["logits"] = "mine"
    report = Checker(LAB)(namespace=namespace)
    assert report.score == report.max_score == 5 and report.title == f"{LAB} 전체"
    assert namespace["logits"] == "mine"


def test_an_unknown_exercise_or_notebook_is_one_korean_line(tmp_path):
    with pytest.raises(ValueError, match="있는 연습: softmax, cross_entropy"):
        Checker(LAB)("sotfmax", {})
    with pytest.raises(FileNotFoundError, match="no_such_lab.ipynb를 찾을 수 없습니다"):
        Checker("no_such_lab", folder=tmp_path)
