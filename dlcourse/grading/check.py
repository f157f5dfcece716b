"""A student's check while working: run the visible tests of one exercise (or all) and show the points.

In a notebook::

    from dlcourse.grading.check import Checker
    check = Checker("week1_softmax_mnist")
    check("softmax")     # the visible tests of one exercise
    check()              # every visible test of the notebook

The tests are read from the notebook file (the one next to the kernel, else
the repository's copy: visible tests are the same in both) and run against
the functions defined in the kernel right now, on a copy of its variables.
This is a convenience, not the grade: grading also runs hidden tests and
compares each test's value with the reference solution's.
"""
import pathlib

import nbformat

import __main__
from dlcourse.grading.notebooks import grading_of, source_of
from dlcourse.grading.runner import describe, split_last_expression
from dlcourse.notebook import repository_root


class CheckReport:
    """What ``Checker`` found; shown in the notebook as a few Korean lines."""

    def __init__(self, title, lines, score, max_score, hidden):
        self.title, self.lines, self.score, self.max_score, self.hidden = title, lines, score, max_score, hidden

    @property
    def passed(self):
        return self.score == self.max_score

    def __repr__(self):
        hidden = (f"숨겨진 테스트 {self.hidden[0]}개 ({self.hidden[1]:g}점)" if self.hidden[0]
                  else "숨겨진 테스트")
        return "\n".join([
            f"{self.title}: 공개 테스트 {self.score:g}/{self.max_score:g}점",
            *self.lines,
            f"채점할 때는 {hidden}도 실행하고, 각 테스트의 값이 참고 답안의 값과 같은지도 비교합니다.",
        ])


class Checker:
    """Runs a notebook's visible tests in the kernel that is open (see the module docstring)."""

    def __init__(self, lab, folder=None):
        self.lab = lab
        self.path = self._find(lab, folder)

    @staticmethod
    def _find(lab, folder):
        places = [pathlib.Path(folder)] if folder else [pathlib.Path.cwd()]
        root = repository_root()
        if root:
            places.append(root / "notebooks")
        for place in places:
            if (place / f"{lab}.ipynb").is_file():
                return place / f"{lab}.ipynb"
        raise FileNotFoundError(f"{lab}.ipynb를 찾을 수 없습니다 (찾아본 곳: {', '.join(map(str, places))})")

    def tests(self):
        """``[(grading metadata, source)]`` of every test cell in the notebook, in order."""
        notebook = nbformat.read(self.path, as_version=4)
        return [(grading_of(cell), source_of(cell)) for cell in notebook.cells
                if cell.cell_type == "code" and grading_of(cell).get("role") == "test"]

    def __call__(self, exercise=None, namespace=None):
        tests = self.tests()
        exercises = list(dict.fromkeys(grading["exercise"] for grading, _ in tests))
        if exercise is not None and exercise not in exercises:
            raise ValueError(f"연습 {exercise!r} 는 이 노트북에 없습니다. 있는 연습: {', '.join(exercises)}")
        chosen = [(grading, source) for grading, source in tests
                  if exercise is None or grading["exercise"] == exercise]
        visible = [(grading, source) for grading, source in chosen if grading.get("visibility") == "visible"]
        hidden = [grading for grading, _ in chosen if grading.get("visibility") != "visible"]
        user = namespace if namespace is not None else _kernel_namespace()
        lines, score = [], 0
        width = max((len(grading["test"]) for grading, _ in visible), default=0)
        for grading, source in visible:
            points = grading.get("points", 0)
            error = _run(source, dict(user), grading["test"])
            if error is None:
                score += points
                lines.append(f"  ✔ {grading['test']:<{width}}  {points:g}/{points:g}점")
            else:
                lines.append(f"  ✘ {grading['test']:<{width}}  0/{points:g}점  {error}")
        title = f"연습 {exercise}" if exercise else f"{self.lab} 전체"
        return CheckReport(title, lines, score, sum(g.get("points", 0) for g, _ in visible),
                           (len(hidden), sum(grading.get("points", 0) for grading in hidden)))


def _kernel_namespace():
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    return shell.user_ns if shell is not None else vars(__main__)


def _run(source, scope, name):
    """None when the test passes, else one line saying why."""
    try:
        statements, last = split_last_expression(source, f"<test {name}>")
        exec(statements, scope)
        if last is not None:
            eval(last, scope)
    except NotImplementedError:
        return "아직 풀지 않았습니다 (NotImplementedError)"
    except Exception as error:  # noqa: BLE001 - a failed assert or the student's own error
        return describe(error)
    return None
