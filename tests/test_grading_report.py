"""The class report (``dlcourse.grading.report``) on a small class whose statistics are worked out by hand."""
import csv
import json
import types

import pytest
from matplotlib import image

from dlcourse import figures
from dlcourse.grading import grader
from dlcourse.grading.notebooks import NotebookError
from dlcourse.grading.report import lms_csv, read_results, reason_pattern, report_markdown, summarize, write_report
from dlcourse.grading.results import gradescope_json

# exercise, test, points, visibility, in the notebook's order
TESTS = [("alpha", "a_visible", 1, "visible"), ("alpha", "a_hidden", 2, "hidden"),
         ("beta", "b_visible", 2, "visible"), ("beta", "b_hidden", 1, "hidden")]
NOT_DONE = "NotImplementedError: 여기를 채우세요 (at <exercise alpha> line 8)"
NO_NOTEBOOK = "no toylab.ipynb in jung_hoon/ (0 other notebooks)"
# student -> {test: why it failed}; every other test passed.
FAILURES = {
    "kim_minji": {},
    "lee_junho": {"a_hidden": "values differ: max abs difference 0.31 at index (2,)",
                  "b_hidden": "AssertionError: SECRET check 7 failed"},
    "park_seoyeon": {"a_hidden": "values differ: max abs difference 0.27 at index (1,)",
                     "b_hidden": "AssertionError: SECRET check 12 failed"},
    "choi_yuna": {"a_hidden": "values differ: max abs difference -1.5e-3 at index (0,)",
                  "b_visible": "AssertionError: 합이 1이 아닙니다"},
    "jung_hoon": {test: NO_NOTEBOOK for _, test, _, _ in TESTS},
    "kang_dahye": {"a_visible": NOT_DONE, "a_hidden": NOT_DONE},
}
# Worked out from FAILURES: totals 6, 3, 3, 2, 0, 3.
TOTALS = {"kim_minji": 6, "lee_junho": 3, "park_seoyeon": 3, "choi_yuna": 2, "jung_hoon": 0, "kang_dahye": 3}
PASSED = {"a_visible": 4, "a_hidden": 1, "b_visible": 4, "b_hidden": 3}


def write_class(folder, failures=FAILURES, lab="toylab"):
    """``folder/<student>/results.json`` as the grader writes them."""
    for student, failed in failures.items():
        tests = [grader.TestResult(test, exercise, 0 if test in failed else points, points,
                                   failed.get(test, "passed"), visibility)
                 for exercise, test, points, visibility in TESTS]
        result = grader.Result(student=student, submission=f"{student}.ipynb", tests=tests,
                               problem=NO_NOTEBOOK if student == "jung_hoon" else "")
        path = folder / student / "results.json"
        path.parent.mkdir(parents=True)
        results = gradescope_json(result, types.SimpleNamespace(name=lab))
        path.write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def grades(tmp_path):
    return write_class(tmp_path / "grades")


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The small class's report, written once for the tests that only read it."""
    grades = write_class(tmp_path_factory.mktemp("reported") / "grades")
    return grades, write_report(grades)


def test_class_statistics_come_from_the_results(grades):
    summary = summarize(*read_results(grades, grades / "report"))
    assert summary.lab == "toylab"
    assert summary.totals == TOTALS
    assert summary.max_score == 6
    assert summary.mean == pytest.approx(17 / 6)
    assert summary.median == 3
    assert (summary.full_marks, summary.zeros) == (1, 1)
    assert {test.test: (test.passed, test.taken) for test in summary.tests} == {
        name: (count, 6) for name, count in PASSED.items()}
    assert [test.test for test in summary.tests] == [test for _, test, _, _ in TESTS]
    assert summary.tests[1].rate == pytest.approx(1 / 6)
    assert [(e.exercise, e.points, e.full, e.partial, e.zero) for e in summary.exercises] == [
        ("alpha", 3, 1, 3, 2), ("beta", 3, 2, 3, 1)]
    assert [e.mean for e in summary.exercises] == pytest.approx([6 / 6, 11 / 6])
    assert summary.problems == {"jung_hoon": NO_NOTEBOOK}
    assert [test.test for test in summary.hardest()] == ["a_hidden", "b_hidden", "a_visible", "b_visible"]


def test_reasons_that_differ_only_in_their_numbers_count_as_one(grades):
    assert reason_pattern("max abs difference -1.5e-3 at index (0,)") == "max abs difference # at index (#,)"
    summary = summarize(*read_results(grades, grades / "report"))
    a_hidden = summary.tests[1]
    # choi, lee and park differ only in numbers (the example is the first student's, by name); kang's stub is
    # another reason; jung's missing notebook says nothing about the test and is not counted.
    assert a_hidden.most_common_reason() == (3, "values differ: max abs difference -1.5e-3 at index (0,)")
    assert a_hidden.other_reasons() == (1, 1)
    assert summary.tests[3].most_common_reason() == (2, "AssertionError: SECRET check 7 failed")


def test_report_names_students_and_reasons_the_announcement_does_not(reported):
    grades, paths = reported
    assert set(paths) == {"report", "announcement", "scores", "pass_rate", "lms"}
    assert all(path.parent == grades / "report" for path in paths.values())
    report = paths["report"].read_text(encoding="utf-8")
    announcement = paths["announcement"].read_text(encoding="utf-8")
    for text in (report, announcement):
        assert "평균: 2.83점, 중앙값: 3점" in text
        assert "| a_hidden | alpha | 숨김 | 2점 | 1/6명 | 17% |" in text
        assert "| alpha | 3점 | 1.00점 | 1명 | 3명 | 2명 |" in text
    assert "(3명): `values differ: max abs difference -1.5e-3 at index (0,)`" in report
    assert "SECRET check 7 failed" in report
    assert "- jung_hoon: `no toylab.ipynb" in report
    assert "values differ" not in announcement and "SECRET" not in announcement
    assert not [student for student in FAILURES if student in announcement]
    assert "AssertionError: 합이 1이 아닙니다" in announcement  # a visible test's reason may be shown
    assert "채점하지 못한 제출물이 1건" in announcement
    assert not list(grades.glob("report/.*")), "no temporary file is left"


def test_lms_csv_has_each_exercise_and_a_total_that_adds_up(reported):
    with open(reported[1]["lms"], newline="", encoding="utf-8") as table:
        rows = list(csv.reader(table))
    assert rows[0] == ["student", "alpha", "beta", "total", "max_score"]
    assert [row[0] for row in rows[1:]] == sorted(FAILURES)
    for student, alpha, beta, total, max_score in rows[1:]:
        assert float(alpha) + float(beta) == float(total) == TOTALS[student]
        assert max_score == "6"
    assert ["lee_junho", "1", "2", "3", "6"] in rows


def test_both_figures_are_png_images_of_a_plausible_size(reported):
    paths = reported[1]
    for kind in ("scores", "pass_rate"):
        assert paths[kind].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = image.imread(paths[kind]).shape
        assert 300 <= width <= 2000 and 200 <= height <= 1500, (kind, width, height)


@pytest.mark.parametrize("font", [None, "found"])
def test_the_figures_draw_the_numbers_they_are_given(monkeypatch, font):
    if font is None:
        monkeypatch.setattr(figures, "hangul_font", lambda: None)  # English labels
    elif figures.hangul_font() is None:
        pytest.skip("no Hangul font on this machine")
    histogram = figures.plot_score_histogram([0, 2, 3, 3, 3, 6], 6, "toylab").axes[0]
    assert [patch.get_height() for patch in histogram.patches] == [1, 0, 1, 3, 0, 0, 1]
    assert [line.get_xdata()[0] for line in histogram.lines] == pytest.approx([17 / 6, 3])
    assert ("6명" if font else "6 students") in histogram.get_title()
    rates = figures.plot_pass_rates([("alpha", "a_visible", 4 / 6, False), ("alpha", "a_hidden", 1 / 6, True)],
                                    "toylab").axes[0]
    bars = rates.patches[:2]
    assert [bar.get_width() for bar in bars] == pytest.approx([400 / 6, 100 / 6])
    assert [bar.get_hatch() for bar in bars] == [None, "///"]
    assert [label.get_text() for label in rates.get_yticklabels()] == ["a_visible", "a_hidden"]
    assert {text.get_text() for text in rates.get_legend().get_texts()} == (
        {"alpha", "공개 테스트", "숨김 테스트"} if font else {"alpha", "visible test", "hidden test"})


def test_a_second_run_reads_the_same_class(reported):
    grades, paths = reported
    first = {kind: path.read_text(encoding="utf-8") for kind, path in paths.items() if path.suffix != ".png"}
    second = {kind: path.read_text(encoding="utf-8") for kind, path in write_report(grades).items()
              if path.suffix != ".png"}
    assert first == second
    assert "6명의 제출물" in second["report"]  # the report's folder is no seventh student


def test_a_results_json_inside_the_report_folder_is_refused_not_lost(grades):
    (grades / "report").mkdir()
    (grades / "report" / "results.json").write_bytes((grades / "kim_minji" / "results.json").read_bytes())
    with pytest.raises(NotebookError, match="inside the report's folder"):
        write_report(grades)
    assert write_report(grades, grades.parent / "elsewhere")["report"].is_file()


def test_older_results_and_nested_folders(tmp_path):
    """No status, no extra_data (the lab from the output, the ids from the name); students in sections."""
    long_reason = "AssertionError: " + "x" * 400
    for student, score in [("section1/kim", 2), ("section2/lee", 0)]:
        path = tmp_path / student / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"score": score, "max_score": 2, "output": f"oldlab: {score} / 2", "tests": [
            {"name": "ex: t1", "score": score / 2, "max_score": 1, "output": "passed" if score else long_reason,
             "visibility": "visible"},
            {"name": "ex: t2", "score": score / 2, "max_score": 1, "output": "passed" if score else "nope",
             "visibility": "visible"}]}))
    summary = summarize(*read_results(tmp_path, tmp_path / "report"))
    rows = list(csv.reader(lms_csv(summary).splitlines()))
    assert rows == [["student", "ex", "total", "max_score"], ["section1/kim", "2", "2", "2"],
                    ["section2/lee", "0", "0", "2"]]
    report = report_markdown(summary)
    assert report.startswith("# oldlab 채점 보고서")
    assert "| t1 | ex | 공개 | 1점 | 1/2명 | 50% |" in report
    quoted = next(line for line in report.splitlines() if "xxxx" in line)
    assert quoted.endswith("…`") and len(quoted) < 220


@pytest.mark.parametrize("damage, message", [
    (lambda grades: None, "no results.json under"),
    (lambda grades: (grades / "x" / "results.json").write_text("{not json"), "not valid JSON"),
    (lambda grades: (grades / "x" / "results.json").write_text('{"score": 1}'), "no list of tests"),
    (lambda grades: write_class(grades / "x", {"a": {}}, lab="otherlab"), "mixes the results of 2 labs"),
])
def test_a_folder_it_cannot_report_on_gives_one_line(tmp_path, damage, message):
    grades = tmp_path / "grades"
    grades.mkdir()
    if "no results" not in message:
        write_class(grades)
        (grades / "x").mkdir()
    damage(grades)
    with pytest.raises(NotebookError, match=message) as error:
        write_report(grades)
    assert "\n" not in str(error.value)
    assert not (grades / "report").exists()


def test_a_class_where_everyone_passed(tmp_path):
    everyone_passed = write_class(tmp_path, {"a": {}, "b": {}})
    summary = summarize(*read_results(everyone_passed, everyone_passed / "report"))
    assert (summary.mean, summary.median, summary.full_marks, summary.zeros) == (6, 6, 2, 0)
    assert summary.hardest() == [] and summary.problems == {}
    report = report_markdown(summary)
    assert "모든 학생이 모든 테스트를 통과했습니다." in report
    assert [test.rate for test in summary.tests] == [1.0] * len(TESTS)
