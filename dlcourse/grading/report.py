"""The instructor's class report: what a folder of graded ``results.json`` files says about the class.

``write_report(grades_dir)`` reads every student's Gradescope ``results.json``
under ``grades_dir`` (the grader's ``<student>/results.json``, or a Gradescope
export with nested folders) and writes into ``grades_dir/report/``:

- ``report.md``: for the instructor, in Korean: the class's scores, each
  exercise and test, the tests most students failed with their most common
  reason, and the submissions that could not be graded at all;
- ``announcement.md``: the same numbers for the students: no names, and no
  reason of a hidden test (that would tell them what the hidden test checks);
- ``scores.png`` and ``pass_rate.png``: the score histogram and each test's pass rate;
- ``lms.csv``: one row per student, the points of each exercise and the total.
"""
import csv
import io
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dlcourse import figures
from dlcourse.files import atomic_write
from dlcourse.grading.notebooks import NotebookError

HARDEST = 5          # tests listed under "가장 많이 틀린 테스트"
EXAMPLE_CHARS = 160  # a failure reason is cut to this length
# A number in a reason ("max abs difference -0.31", "index (2,)"), so that reasons differing only there count as one.
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Outcome:
    """One test of one student, as the student's results.json has it."""
    exercise: str
    test: str
    score: float
    max_score: float
    passed: bool
    hidden: bool
    output: str


@dataclass
class TestSummary:
    """One test over the class; ``reasons`` counts the failures' reasons with their numbers replaced by #."""
    exercise: str
    test: str
    points: float
    hidden: bool
    passed: int = 0
    taken: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason with # -> the first real text of it

    @property
    def rate(self):
        return self.passed / self.taken if self.taken else 0.0

    def most_common_reason(self):
        """``(students, one real text)`` of the reason most failures share; None when none is counted."""
        if not self.reasons:
            return None
        pattern, count = self.reasons.most_common(1)[0]
        return count, self.examples[pattern]

    def other_reasons(self):
        """``(students, reasons)`` of the failures the most common reason leaves out."""
        counts = [count for _, count in self.reasons.most_common()[1:]]
        return sum(counts), len(counts)


@dataclass
class ExerciseSummary:
    exercise: str
    points: float
    mean: float
    full: int
    partial: int
    zero: int


@dataclass
class ClassSummary:
    lab: str
    max_score: float
    totals: dict        # student -> total score
    earned: dict        # student -> {exercise: points}
    exercises: list     # ExerciseSummary, in the notebook's order
    tests: list         # TestSummary, in the notebook's order
    problems: dict      # student -> why no test could pass (no notebook, unreadable file)

    @property
    def scores(self):
        return list(self.totals.values())

    @property
    def mean(self):
        return statistics.fmean(self.scores)

    @property
    def median(self):
        return statistics.median(self.scores)

    @property
    def full_marks(self):
        return sum(score >= self.max_score - 1e-9 for score in self.scores)

    @property
    def zeros(self):
        return sum(score == 0 for score in self.scores)

    def hardest(self):
        """The tests someone failed, lowest pass rate first (ties in the notebook's order)."""
        failed = [test for test in self.tests if test.passed < test.taken]
        return sorted(failed, key=lambda test: test.rate)[:HARDEST]


def read_results(grades_dir, out_dir):
    """``(lab, {student: [Outcome, ...]})`` from every results.json under ``grades_dir``.

    A student is the path of the folder that holds the file.  The report's own
    folder ``out_dir`` never holds a results.json; one there is a student's,
    whom the report would overwrite, so it is refused rather than skipped.
    """
    grades_dir, out_dir = Path(grades_dir), Path(out_dir)
    if not grades_dir.is_dir():
        raise NotebookError(f"no folder {grades_dir}")
    paths = sorted(grades_dir.rglob("results.json"))
    inside_report = [path for path in paths if path.resolve().is_relative_to(out_dir.resolve())]
    if inside_report:
        raise NotebookError(f"{inside_report[0]} is a student's results.json inside the report's folder "
                            f"{out_dir}; write the report to another folder")
    if not paths:
        raise NotebookError(f"no results.json under {grades_dir}; grade the submissions first")
    labs, students = {}, {}
    for path in paths:
        relative = path.parent.relative_to(grades_dir).as_posix()
        student = grades_dir.resolve().name if relative == "." else relative
        labs[student], students[student] = _read_one(path)
    if len(set(labs.values())) > 1:
        counts = Counter(labs.values())
        shown = ", ".join(f"{lab or '(no lab)'}: {count} students" for lab, count in sorted(counts.items()))
        raise NotebookError(f"{grades_dir} mixes the results of {len(counts)} labs ({shown}); "
                            f"write one report per lab")
    return next(iter(labs.values())), students


def _read_one(path):
    """``(lab, [Outcome, ...])`` of one results.json; results of older graders lack the extra_data."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise NotebookError(f"{path}: not valid JSON ({error})") from None
    except OSError as error:
        raise NotebookError(f"{path}: cannot read it ({error.strerror})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise NotebookError(f"{path}: no list of tests; not a Gradescope results.json")
    extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    lab = extra.get("lab") or str(data.get("output", "")).partition(":")[0].strip()
    outcomes = []
    for index, test in enumerate(data["tests"]):
        try:
            ids = test.get("extra_data") if isinstance(test.get("extra_data"), dict) else {}
            exercise, _, name = str(test["name"]).partition(": ")
            score, max_score = float(test["score"]), float(test["max_score"])
            passed = test["status"] == "passed" if "status" in test else score >= max_score
            # Gradescope shows "visible" tests at once; any other kind is treated as hidden here.
            hidden = test.get("visibility", data.get("visibility", "visible")) != "visible"
            outcomes.append(Outcome(ids.get("exercise", exercise), ids.get("test", name or exercise), score,
                                    max_score, passed, hidden, " ".join(str(test.get("output", "")).split())))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NotebookError(f"{path}: test {index} is not a Gradescope test "
                                f"({type(error).__name__}: {error})") from None
    return lab, outcomes


def submission_problem(outcomes):
    """Why a submission scored nothing, when every test failed with the same output (no notebook, …), else None."""
    outputs = {outcome.output for outcome in outcomes}
    if len(outcomes) > 1 and len(outputs) == 1 and not any(outcome.passed or outcome.score for outcome in outcomes):
        return outputs.pop()
    return None


def reason_pattern(output):
    """The reason with its numbers replaced by #: "max abs difference 0.31" and "… 0.27" are one reason."""
    return NUMBER.sub("#", output)


def summarize(lab, students):
    """The class's statistics, computed from ``{student: [Outcome, ...]}``."""
    names = sorted(students)
    tests = {}
    for student in sorted(names, key=lambda name: -len(students[name])):  # the fullest list sets the order
        for outcome in students[student]:
            key = (outcome.exercise, outcome.test)
            if key not in tests:
                tests[key] = TestSummary(outcome.exercise, outcome.test, outcome.max_score, outcome.hidden)
            tests[key].points = max(tests[key].points, outcome.max_score)
    problems = {name: reason for name in names if (reason := submission_problem(students[name])) is not None}
    for name in names:
        for outcome in students[name]:
            test = tests[(outcome.exercise, outcome.test)]
            test.taken += 1
            test.passed += outcome.passed
            if not outcome.passed and name not in problems:  # a missing notebook says nothing of the test
                pattern = reason_pattern(outcome.output)
                test.reasons[pattern] += 1
                test.examples.setdefault(pattern, outcome.output)
    exercise_ids = list(dict.fromkeys(exercise for exercise, _ in tests))
    earned = {name: {exercise: sum(outcome.score for outcome in students[name] if outcome.exercise == exercise)
                     for exercise in exercise_ids} for name in names}
    exercises = []
    for exercise in exercise_ids:
        points = sum(test.points for test in tests.values() if test.exercise == exercise)
        got = [earned[name][exercise] for name in names]
        full = sum(score >= points - 1e-9 for score in got)
        zero = sum(score == 0 for score in got if score < points - 1e-9)
        exercises.append(ExerciseSummary(exercise, points, statistics.fmean(got), full, len(got) - full - zero, zero))
    return ClassSummary(lab=lab, max_score=sum(test.points for test in tests.values()),
                        totals={name: sum(earned[name].values()) for name in names}, earned=earned,
                        exercises=exercises, tests=list(tests.values()), problems=problems)


def _quoted(text):
    """A reason as one line of inline code, cut to about EXAMPLE_CHARS, so Markdown leaves it as it is."""
    text = " ".join(text.split())
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS - 1] + "…"
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _visibility(test):
    return "숨김" if test.hidden else "공개"


def _score_lines(summary):
    return [f"- 만점: {summary.max_score:g}점",
            f"- 평균: {summary.mean:.2f}점, 중앙값: {summary.median:g}점",
            f"- 최고점: {max(summary.scores):g}점, 최저점: {min(summary.scores):g}점",
            f"- 만점을 받은 학생: {summary.full_marks}명, 0점을 받은 학생: {summary.zeros}명"]


def _tables(summary):
    """The per-exercise and per-test tables both documents share."""
    lines = ["## exercise별 점수", "",
             "| exercise | 배점 | 평균 | 만점 | 부분 점수 | 0점 |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {exercise.exercise} | {exercise.points:g}점 | {exercise.mean:.2f}점 | {exercise.full}명 "
              f"| {exercise.partial}명 | {exercise.zero}명 |" for exercise in summary.exercises]
    lines += ["", "## 테스트별 통과율", "",
              "| 테스트 | exercise | 공개 여부 | 배점 | 통과 | 통과율 |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {test.test} | {test.exercise} | {_visibility(test)} | {test.points:g}점 "
              f"| {test.passed}/{test.taken}명 | {test.rate:.0%} |" for test in summary.tests]
    return lines


def _other_reasons_line(test):
    students, reasons = test.other_reasons()
    return [f"   - 다른 이유로 틀린 학생: {students}명 (이유 {reasons}가지)"] if students else []


def report_markdown(summary):
    """report.md: everything the instructor needs, student names and every failure reason included."""
    lines = [f"# {summary.lab} 채점 보고서", "",
             f"{len(summary.totals)}명의 제출물을 채점한 결과입니다. 학생별 점수는 같은 폴더의 lms.csv에 있습니다.", "",
             *_score_lines(summary), "", *_tables(summary), "", "## 가장 많이 틀린 테스트", ""]
    hardest = summary.hardest()
    if hardest:
        lines += ["통과율이 낮은 순서입니다. 실패 이유는 숫자만 다른 메시지를 하나로 묶어 세었고, "
                  "그중 실제 메시지 하나를 예로 들었습니다.", ""]
    for rank, test in enumerate(hardest, 1):
        lines.append(f"{rank}. **{test.test}** ({test.exercise}, {_visibility(test)}, {test.points:g}점): "
                     f"{test.taken}명 중 {test.passed}명 통과 ({test.rate:.0%})")
        reason = test.most_common_reason()
        lines.append(f"   - 가장 흔한 실패 이유 ({reason[0]}명): {_quoted(reason[1])}" if reason else
                     "   - 이 테스트에서 틀린 학생은 모두 제출물 자체에 문제가 있었습니다.")
        lines += _other_reasons_line(test)
    if not hardest:
        lines.append("모든 학생이 모든 테스트를 통과했습니다.")
    lines += ["", "## 제출물 자체에 문제가 있는 학생", ""]
    if summary.problems:
        lines += ["모든 테스트가 같은 이유로 실패해 0점을 받은 학생입니다. 노트북이 없거나 파일을 읽을 수 없는 "
                  "경우이니 제출물을 직접 확인해 주세요.", ""]
        lines += [f"- {student}: {_quoted(reason)}" for student, reason in summary.problems.items()]
    else:
        lines.append("없습니다. 모든 제출물이 채점되었습니다.")
    return "\n".join(lines) + "\n"


def announcement_markdown(summary):
    """announcement.md: the numbers for the students; no names, and hidden tests only with their pass rate."""
    lines = [f"# {summary.lab} 채점 결과 안내", "",
             f"{summary.lab} 채점이 끝났습니다. 반 전체 결과를 알려 드립니다. 자신의 점수와 공개 테스트의 결과는 "
             "각자 받은 채점 결과에서 확인해 주세요.", "",
             "## 전체 점수", "", f"- 채점한 제출물: {len(summary.totals)}명", *_score_lines(summary), "",
             *_tables(summary), "", "## 많이 틀린 테스트", ""]
    for rank, test in enumerate(summary.hardest(), 1):
        lines.append(f"{rank}. **{test.test}** ({test.exercise}, {_visibility(test)} 테스트): 통과율 {test.rate:.0%}")
        reason = test.most_common_reason()
        if test.hidden:
            lines.append("   - 숨김 테스트라 실패 이유는 공개하지 않습니다.")
        elif reason:
            lines.append(f"   - 가장 많이 나온 실패 이유 ({reason[0]}명): "
                         f"{_quoted(_without_names(reason[1], summary.totals))}")
            lines += _other_reasons_line(test)
    if not summary.hardest():
        lines.append("모든 학생이 모든 테스트를 통과했습니다. 수고 많았습니다.")
    if any(test.hidden for test in summary.tests):
        lines += ["", "숨김 테스트는 채점할 때만 실행됩니다. 공개 테스트를 모두 통과했는데 점수를 잃었다면, "
                      "공개 테스트에 없는 입력(큰 값, 여러 행 등)에서도 맞게 동작하는지 다시 확인해 보세요."]
    if summary.problems:
        lines += ["", f"노트북이 없거나 파일을 읽을 수 없어 채점하지 못한 제출물이 {len(summary.problems)}건 "
                      "있습니다. 0점을 받았다면 제출한 파일을 확인해 주세요."]
    return "\n".join(lines) + "\n"


def _without_names(text, students):
    """The text with any student's name (a whole word) replaced: a reason may quote a file name."""
    names = sorted({part for name in students for part in (name, name.rsplit("/", 1)[-1])}, key=len, reverse=True)
    if not names:
        return text
    return re.sub(r"(?<![\w.-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])", "(학생)", text)


def lms_csv(summary):
    """lms.csv: student, the points of each exercise, total, max_score; one row per student, sorted by name."""
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["student", *(exercise.exercise for exercise in summary.exercises), "total", "max_score"])
    for student, total in summary.totals.items():
        writer.writerow([student, *(f"{points:g}" for points in summary.earned[student].values()),
                         f"{total:g}", f"{summary.max_score:g}"])
    return table.getvalue()


def _write_text(path, text):
    with atomic_write(path, encoding="utf-8", newline="") as out:
        out.write(text)


def write_report(grades_dir, out_dir=None):
    """Read the class's results under ``grades_dir`` and write the report files; ``{kind: path}``."""
    grades_dir = Path(grades_dir)
    out_dir = Path(out_dir) if out_dir is not None else grades_dir / "report"
    summary = summarize(*read_results(grades_dir, out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in [
        ("report", "report.md"), ("announcement", "announcement.md"), ("scores", "scores.png"),
        ("pass_rate", "pass_rate.png"), ("lms", "lms.csv")]}
    _write_text(paths["report"], report_markdown(summary))
    _write_text(paths["announcement"], announcement_markdown(summary))
    _write_text(paths["lms"], lms_csv(summary))
    with atomic_write(paths["scores"], "wb") as out:
        figures.plot_score_histogram(summary.scores, summary.max_score, summary.lab, out)
    with atomic_write(paths["pass_rate"], "wb") as out:
        figures.plot_pass_rates([(test.exercise, test.test, test.rate, test.hidden) for test in summary.tests],
                                summary.lab, out)
    return paths
