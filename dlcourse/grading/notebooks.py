"""Graded cells in a notebook: read them from the instructor's copy, a student's copy, or strip them.

A cell's role is in its metadata, ``cell.metadata["grading"]``:

- ``{"role": "setup"}``: the imports (and plain helpers) the exercises and
  tests need (one per notebook; the grader runs the instructor's copy, both
  in the student's worker and in its own process);
- ``{"role": "exercise", "exercise": ID}``: code the student writes, with the
  reference solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
  it runs only in the student's worker; optional ``"forbidden": [module, ...]``:
  modules that would do the exercise for the student (week 3's ``unicodedata``)
  — a cell that names one scores 0 on that exercise, and the worker cannot
  import them;
- ``{"role": "helper"}`` (optional): the instructor's code that runs in the
  student's worker after the exercises, for a test that needs the student's
  objects where they live (a Keras optimizer applied to Keras variables);
  released unchanged;
- ``{"role": "test", "test": ID, "exercise": ID, "points": N,
  "visibility": "visible" | "hidden"}`` (optional ``rtol``, ``atol``,
  ``timeout``): asserts, then a last line whose value the grader compares
  with the reference solution's value for the same cell.  The grader runs a
  test in its own process: every name an exercise or helper cell defines is
  there a stand-in that calls the student's code in the worker and brings
  back plain data (``wire.py``), so the asserts and the values they compare
  against never enter the student's process.  In the notebook the same cell
  runs as it reads.
"""
import ast
import copy
import errno
import json
import os
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("여기를 채우세요")'
VISIBILITIES = ("visible", "hidden")
MAX_NOTEBOOK_BYTES = 64 << 20  # a notebook saved with many figures is a few MiB
_MARKER = re.compile(r"^(\s*)(### (?:BEGIN|END) SOLUTION)\s*$")


# CPython 3.11 keeps one recursion counter for building and reading syntax trees per interpreter, and the grader
# grades several submissions in threads: two trees built at once can fail with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905).  Every tree the grader builds or compiles holds this lock.
AST_LOCK = threading.Lock()


def parse(code, filename="<unknown>"):
    """``ast.parse``, one thread at a time (see ``AST_LOCK``)."""
    with AST_LOCK:
        return ast.parse(code, filename)


class NotebookError(ValueError):
    """A notebook the grader cannot use; the message is one line."""


@dataclass(frozen=True)
class Test:
    name: str
    exercise: str
    points: float
    visibility: str
    source: str
    rtol: float = 1e-5
    atol: float = 1e-7
    timeout: float = None


@dataclass
class Lab:
    """What the grader needs from an instructor notebook."""
    name: str
    setup: str
    exercises: dict = field(default_factory=dict)  # exercise id -> (cell id, reference code)
    tests: list = field(default_factory=list)
    helpers: list = field(default_factory=list)    # the instructor's code run in the worker after the exercises
    forbidden: dict = field(default_factory=dict)  # exercise id -> modules its cell may not use
    names: list = None  # the names below, when the reference code is not at hand (the autograder zip)

    @property
    def student_names(self):
        """Names the exercise and helper cells define: in the grader, stand-ins for the worker's."""
        if self.names is not None:
            return sorted(self.names)
        names = set()
        for code in [code for _, code in self.exercises.values()] + self.helpers:
            names.update(defined_names(code))
        return sorted(names)

    @property
    def all_forbidden(self):
        """Every module some exercise forbids: the worker refuses to import them."""
        return sorted({name for names in self.forbidden.values() for name in names})

    @property
    def max_score(self):
        return sum(test.points for test in self.tests)


def points_line(test):
    """The first line of a test cell: the points a student sees, and whether graders run it only."""
    kind = "공개 테스트" if test.visibility == "visible" else "숨겨진 테스트"
    return f"# [{kind} · {test.points:g}점] {test.name}"


def defined_names(code):
    """Top-level names a cell defines: functions, classes and assigned variables."""
    names = []
    for node in parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.extend(target.id for target in targets if isinstance(target, ast.Name))
    return names


def source_of(cell):
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def grading_of(cell):
    metadata = cell.get("metadata")
    grading = metadata.get("grading") if isinstance(metadata, dict) else None
    return grading if isinstance(grading, dict) else {}


def strip_solutions(source, where):
    """The cell's code with every solution region replaced by a stub that raises NotImplementedError."""
    lines, out, inside = source.split("\n"), [], False
    for number, line in enumerate(lines, 1):
        marker = _MARKER.match(line)
        if marker and marker.group(2) == BEGIN:
            if inside:
                raise NotebookError(f"{where} line {number}: {BEGIN} inside another solution")
            inside = True
            out.append(marker.group(1) + STUB)
        elif marker:
            if not inside:
                raise NotebookError(f"{where} line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def _number(grading, key, default, where):
    value = grading.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise NotebookError(f"{where}: {key} must be a non-negative number, got {value!r}")
    return value


def load_lab(path):
    """The setup, the exercises (with their reference code) and the tests of an instructor notebook."""
    path = Path(path)
    notebook = _read_instructor_notebook(path)
    lab = Lab(name=path.stem, setup=None)
    names = set()
    for index, cell in enumerate(notebook.cells):
        grading, where = grading_of(cell), f"{path.name} cell {index} ({cell.get('id')})"
        role = grading.get("role")
        if role is None:
            continue
        if cell.cell_type != "code":
            raise NotebookError(f"{where}: a graded cell must be a code cell")
        if role == "setup":
            if lab.setup is not None:
                raise NotebookError(f"{where}: a second setup cell")
            lab.setup = source_of(cell)
        elif role == "exercise":
            exercise = grading.get("exercise")
            if not exercise or exercise in lab.exercises:
                raise NotebookError(f"{where}: missing or repeated exercise id {exercise!r}")
            code = source_of(cell)
            if BEGIN not in code:
                raise NotebookError(f"{where}: exercise {exercise!r} has no {BEGIN} region")
            strip_solutions(code, where)  # checks the markers pair up
            lab.exercises[exercise] = (cell.get("id"), code)
            lab.forbidden[exercise] = _forbidden_modules(grading, where)
            if forbidden_uses(code, lab.forbidden[exercise]):
                raise NotebookError(f"{where}: the reference solution uses a forbidden module")
        elif role == "helper":
            lab.helpers.append(source_of(cell))
        elif role == "test":
            lab.tests.append(_read_test(grading, source_of(cell), lab, names, where))
        else:
            raise NotebookError(f"{where}: unknown grading role {role!r}")
    if not lab.tests:
        raise NotebookError(f"{path.name} has no graded tests")
    if lab.setup is None:
        raise NotebookError(f"{path.name} has tests but no setup cell")
    return lab


def _forbidden_modules(grading, where):
    modules = grading.get("forbidden", [])
    if not isinstance(modules, list) or not all(isinstance(name, str) and name.isidentifier() for name in modules):
        raise NotebookError(f"{where}: forbidden must be a list of module names, got {modules!r}")
    return tuple(modules)


def forbidden_uses(code, modules):
    """The forbidden modules a cell names: imported, used as a name or attribute, or spelled in a string.

    What the grader reads in the code; the worker also refuses to import them
    at run time.  Code that assembles a module's name from pieces at run time
    and finds it through another module could still reach it: this rule is
    for the honest majority, the behaviour checks are for the rest.
    """
    if not modules:
        return []
    try:
        tree = parse(code)
    except SyntaxError:
        return []  # the worker reports the syntax error
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            words = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            words = [(node.module or "").split(".")[0]]
        elif isinstance(node, ast.Name):
            words = [node.id]
        elif isinstance(node, ast.Attribute):
            words = [node.attr]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = [name for name in modules if name in node.value]
        else:
            continue
        found.update(word for word in words if word in modules)
    return sorted(found)


def _read_instructor_notebook(path):
    import nbformat  # here, not above: the autograder image grades from lab.json and does without it
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NotebookError(f"cannot read {path}: {type(error).__name__}: {error}") from None


def _read_test(grading, code, lab, names, where):
    name, exercise = grading.get("test"), grading.get("exercise")
    if not name or name in names:
        raise NotebookError(f"{where}: missing or repeated test id {name!r}")
    names.add(name)
    if exercise not in lab.exercises:
        raise NotebookError(f"{where}: test {name!r} names exercise {exercise!r}, not an earlier exercise cell")
    visibility = grading.get("visibility")
    if visibility not in VISIBILITIES:
        raise NotebookError(f"{where}: visibility must be one of {VISIBILITIES}, got {visibility!r}")
    tree = parse(code)
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise NotebookError(f"{where}: test {name!r} must end with an expression (the value to compare)")
    return Test(name=name, exercise=exercise, points=_number(grading, "points", None, where) or 0,
                visibility=visibility, source=code,
                rtol=_number(grading, "rtol", 1e-5, where), atol=_number(grading, "atol", 1e-7, where),
                timeout=_number(grading, "timeout", None, where))


def graded_notebooks(source_dir):
    """``{lab name: path}`` of the notebooks in ``source_dir`` that have graded tests."""
    labs = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        notebook = _read_instructor_notebook(path)
        if any(grading_of(cell).get("role") == "test" for cell in notebook.cells):
            labs[path.stem] = path
    return labs


def release(notebook):
    """The student's copy: solutions replaced by stubs, hidden tests removed, the rest as it was."""
    notebook = copy.deepcopy(notebook)
    kept = []
    for index, cell in enumerate(notebook.cells):
        grading = grading_of(cell)
        if grading.get("role") == "test" and grading.get("visibility") != "visible":
            continue
        if cell.cell_type == "code" and (grading.get("role") == "exercise" or BEGIN in source_of(cell)):
            cell.source = strip_solutions(source_of(cell), f"cell {index} ({cell.get('id')})")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        kept.append(cell)
    notebook.cells = kept
    return notebook


def student_code(path, lab):
    """``{exercise id: code}`` from a student's notebook, matched by metadata, else by cell id.

    Only exercise cells are taken: what a student wrote anywhere else is never run.
    """
    path = Path(path)
    data = read_submission_file(path, MAX_NOTEBOOK_BYTES)
    try:
        notebook = json.loads(data.decode("utf-8"))
        cells = notebook["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as error:
        raise NotebookError(f"{path.name} is not a readable notebook ({type(error).__name__})") from None
    cell_ids = {exercise_cell_id: exercise for exercise, (exercise_cell_id, _) in lab.exercises.items()}
    found = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grading = grading_of(cell)
        exercise = grading.get("exercise") if grading.get("role") == "exercise" else None
        if not isinstance(exercise, str) or exercise not in lab.exercises:
            cell_id = cell.get("id")
            exercise = cell_ids.get(cell_id) if isinstance(cell_id, str) else None
        if exercise is not None and exercise not in found:
            found[exercise] = source_of(cell)
    return found


def read_submission_file(path, max_bytes):
    """The bytes of a student's file, refused with a reason if it is a link, a FIFO, a device or too large.

    Opened without following links and without blocking (a FIFO would wait for
    a writer forever), then checked on the open descriptor, so the file cannot
    be swapped between the check and the read.
    """
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotebookError(f"{name} is a symbolic link, not the student's own file") from None
        raise NotebookError(f"{name}: cannot read it ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError(f"{name} is not a regular file")
        data = handle.read(max_bytes + 1) if info.st_size <= max_bytes else b""
    if info.st_size > max_bytes or len(data) > max_bytes:
        raise NotebookError(f"{name} is larger than {max_bytes >> 20} MiB")
    return data


def release_folder(source_dir, out_dir):
    """Write the student copy of every notebook in ``source_dir`` to ``out_dir``; the paths written.

    Byte-for-byte the same on every run, so releasing twice changes nothing.
    Refuses to write over the instructor's folder.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not source_dir.is_dir():
        raise NotebookError(f"no notebook folder {source_dir}")
    if out_dir.resolve() == source_dir.resolve():
        raise NotebookError("--out is the instructor's notebook folder; the release would overwrite the solutions")
    paths = sorted(source_dir.glob("*.ipynb"))
    if not paths:
        raise NotebookError(f"no notebooks in {source_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    import nbformat
    written = []
    for path in paths:
        student_copy = release(_read_instructor_notebook(path))
        nbformat.validate(student_copy)
        target = out_dir / path.name
        temporary = target.with_name(target.name + ".tmp")
        nbformat.write(student_copy, temporary)
        temporary.replace(target)
        written.append(target)
    return written
