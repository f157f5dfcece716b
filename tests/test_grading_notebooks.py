"""The course's notebooks as graded labs: full marks for the solutions, zero for the release."""
import re

import nbformat
import pytest

from dlcourse.grading.grader import grade_all, reference_values
from dlcourse.grading.notebooks import (
    BEGIN,
    END,
    forbidden_uses,
    graded_notebooks,
    grading_of,
    load_lab,
    points_line,
    release_folder,
)
from dlcourse.grading.sandbox import Limits
from tests.conftest import REPO
from tests.grading_toy import JAIL

LABS = graded_notebooks(REPO / "notebooks")


def test_every_week_has_at_least_two_exercises():
    exercises = {}
    for name, path in LABS.items():
        week = re.match(r"week\d+", name).group()
        exercises.setdefault(week, []).extend(load_lab(path).exercises)
    assert sorted(exercises) == ["week1", "week2", "week3", "week4", "week5"]
    assert all(len(names) >= 2 for names in exercises.values()), exercises


@pytest.mark.parametrize("name", sorted(LABS))
def test_every_exercise_has_visible_and_hidden_tests(name):
    lab = load_lab(LABS[name])
    for exercise in lab.exercises:
        visibilities = {test.visibility for test in lab.tests if test.exercise == exercise}
        assert visibilities == {"visible", "hidden"}, exercise
        assert all(test.points > 0 for test in lab.tests if test.exercise == exercise)


@pytest.mark.parametrize("name", sorted(LABS))
def test_every_test_cell_shows_its_points_as_its_metadata_says(name):
    lab = load_lab(LABS[name])
    wrong = [test.name for test in lab.tests if test.source.splitlines()[0] != points_line(test)]
    assert not wrong, f"first line should be points_line(test): {wrong}"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return release_folder(REPO / "notebooks", tmp_path_factory.mktemp("release"))


def test_release_is_idempotent(released, tmp_path):
    again = release_folder(REPO / "notebooks", tmp_path)
    assert [path.read_bytes() for path in released] == [path.read_bytes() for path in again]


def solution_lines(code):
    """The non-trivial lines between the markers."""
    inside, lines = False, []
    for line in code.splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and len(line.strip()) > 12 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def test_release_strips_every_solution_and_hidden_test_and_keeps_the_rest(released):
    for path in released:
        instructor = nbformat.read(REPO / "notebooks" / path.name, as_version=4)
        student = nbformat.read(path, as_version=4)
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path.name
        hidden = [cell for cell in instructor.cells if grading_of(cell).get("visibility") == "hidden"]
        assert not [cell for cell in student.cells if grading_of(cell).get("visibility") == "hidden"]
        assert not [cell for cell in hidden if cell.source in text], path.name
        kept = [cell for cell in instructor.cells if grading_of(cell).get("visibility") != "hidden"]
        assert [cell.id for cell in kept] == [cell.id for cell in student.cells]
        for before, after in zip(kept, student.cells):
            if grading_of(before).get("role") == "exercise":
                assert 'raise NotImplementedError' in after.source
                assert not [line for line in solution_lines(before.source) if line in after.source], before.id
                compile(after.source, before.id, "exec")
            else:
                assert before == after, before.id


@pytest.mark.parametrize("name", sorted(LABS))
def test_solutions_score_full_marks_and_the_release_zero(name, released, tmp_path):
    lab = load_lab(LABS[name])
    limits = Limits()
    expected = reference_values(lab, limits, JAIL)
    student = next(path for path in released if path.stem == name)
    results = grade_all(lab, expected, [LABS[name], student], limits, tmp_path, jail=JAIL, progress=False)
    assert [result.score for result in results] == [lab.max_score, 0], [
        (test.name, test.output) for result in results for test in result.tests][:6]
    assert lab.max_score > 0
    assert all("NotImplementedError" in test.output for test in results[1].tests), name


def test_week3_syllables_cannot_be_split_with_unicodedata(released, tmp_path):
    lab = load_lab(LABS["week3_char_rnn"])
    assert lab.forbidden["decompose_syllable"] == ("unicodedata",)
    notebook = nbformat.read(LABS["week3_char_rnn"], as_version=4)
    for cell in notebook.cells:
        if grading_of(cell).get("role") == "exercise" and grading_of(cell)["exercise"] == "decompose_syllable":
            cell.source = ("import unicodedata\n\ndef decompose_syllable(char):\n"
                           "    initial, medial, *final = unicodedata.normalize('NFD', char)\n"
                           "    return initial, medial, ''.join(final)\n")
    nbformat.write(notebook, tmp_path / "nfd.ipynb")
    limits = Limits()
    results = grade_all(lab, reference_values(lab, limits, JAIL), [tmp_path / "nfd.ipynb"], limits,
                        tmp_path / "out", jail=JAIL, progress=False)
    lost = {test.name: test.output for test in results[0].tests if test.score < test.max_score}
    assert set(lost) == {test.name for test in lab.tests if test.exercise == "decompose_syllable"}
    assert all("uses unicodedata, which this exercise does not allow" in output for output in lost.values())


def test_week5_box_targets_cannot_use_the_course_box_regression():
    lab = load_lab(LABS["week5_rcnn"])
    assert lab.forbidden["box_targets"] == ("dlcourse",)
    for cheat in ("from dlcourse.box_regression import encode\n",
                  "from dlcourse import box_regression\nencode_box = box_regression.encode\n",
                  "import dlcourse.box_regression as boxes\n"):
        assert forbidden_uses(cheat, lab.forbidden["box_targets"]) == ["dlcourse"], cheat
