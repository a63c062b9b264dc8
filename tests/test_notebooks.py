"""Every lesson notebook runs, its student version fails only where it should, and it only
calls what the package really has (so notebooks and package cannot drift apart).

Notebooks run in fast mode (TACO_FAST=1), one at a time, through nbclient with a per-cell
timeout, so the plain `python -m pytest` covers them. CI also runs `pytest --nbmake`.
New notebooks `notebooks/NN_*.ipynb` are picked up automatically.
"""

from __future__ import annotations

import ast
import importlib
import re
import time
from pathlib import Path

import pytest

from taco_lite.course import assignments

NOTEBOOKS = assignments.lesson_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
CELL_TIMEOUT = 420  # seconds per cell: training cells on a busy 2-core machine
NOTEBOOK_TIMEOUT = 900  # seconds per notebook (pytest-timeout)
GRADED_SERIES = ("00", "01", "02", "03", "04", "05")  # the graded lesson arc of issue 5
TIMINGS: dict[str, float] = {}


def test_the_series_is_there():
    names = {p.name[:2] for p in NOTEBOOKS}
    assert set(GRADED_SERIES) <= names, f"missing lesson notebooks: {set(GRADED_SERIES) - names}"


# ---------------------------------------------------------------- static structure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_without_outputs_and_graded_cells_are_named(path: Path):
    nb = assignments._read(path)
    ids = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} cell {k} holds outputs: clear outputs before saving "
                "(python -m taco_lite.course execute writes executed copies elsewhere)"
            )
        meta = cell.metadata.get("nbgrader")
        role = assignments.cell_role(cell)
        if "BEGIN SOLUTION" in cell.source:
            assert role in ("exercise", "answer"), (
                f"{path.name} cell {k}: solution region outside a solution cell"
            )
        if "BEGIN HIDDEN TESTS" in cell.source:
            assert role == "grade", f"{path.name} cell {k}: hidden tests outside a grade cell"
        if meta:
            assert meta.get("schema_version") == 3 and meta.get("grade_id"), (
                f"{path.name} cell {k}: unnamed"
            )
            ids.append(meta["grade_id"])
        if role == "grade":
            assert meta.get("locked") and meta.get("points", 0) > 0, (
                f"{path.name} cell {k}: grade cells are locked, with points"
            )
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade ids {ids}"


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.name[:2] in GRADED_SERIES], ids=lambda p: p.stem
)
def test_lesson_structure(path: Path):
    """Goals first, >= 2 graded exercises with checks, an inline question, summary, reading."""
    nb = assignments._read(path)
    roles = [assignments.cell_role(c) for c in nb.cells]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Learning goals" in nb.cells[0].source
    assert roles.count("grade") >= 2 and roles.count("exercise") >= 2
    assert roles.count("answer") >= 1
    assert "## Summary" in text and "## Further reading" in text
    assert re.search(r"Eqs?\. \d", text), "theory should cite the paper's equations"
    assert any(
        "TACO_FAST" in c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])
    )
    for k, role in enumerate(roles):  # every exercise is checked right away
        if (
            role == "exercise"
            and nb.cells[k].metadata["nbgrader"]["grade_id"] != "ex05_your_functions"
        ):
            assert roles[k + 1] == "grade", (
                f"{path.name} cell {k}: an exercise must be followed by its grade cell"
            )


# ---------------------------------------------------------------- notebooks vs package


def _code(nb) -> str:
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [
                "" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines()
            ]
    return "\n".join(lines)


def taco_references(source: str) -> set[str]:
    """Dotted names `taco_lite.x.y` the code uses: imports, and attributes of imported modules."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    refs: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "taco_lite"
        ):
            for a in node.names:
                refs.add(f"{node.module}.{a.name}")
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "taco_lite":
                    refs.add(a.name)
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "taco_lite"

    def visit(node: ast.AST, shadowed: frozenset[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            shadowed = shadowed | {
                a.arg for a in params if a is not None
            }  # parameters hide globals
        if isinstance(node, ast.Attribute):
            parts, base = [], node
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases and base.id not in shadowed:
                refs.add(".".join([aliases[base.id], *reversed(parts)]))
                return
        for child in ast.iter_child_nodes(node):
            visit(child, shadowed)

    visit(tree, frozenset())
    return refs


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_reference_finder_catches_drift():
    refs = taco_references(
        "from taco_lite import course as checks\nimport taco_lite\nchecks.no_such_fn(1)\ntaco_lite.losses.token_nce"
    )
    shadow = "from taco_lite.cascade import pair_scores\ndef f(pair_scores):\n    return pair_scores.detach()"
    assert taco_references(shadow) == {"taco_lite.cascade.pair_scores"}
    assert "taco_lite.course.no_such_fn" in refs and not resolves("taco_lite.course.no_such_fn")
    assert "taco_lite.losses.token_nce" in refs and resolves("taco_lite.losses.token_nce")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_calls_only_what_the_package_has(path: Path):
    refs = taco_references(_code(assignments._read(path)))
    missing = sorted(r for r in refs if not resolves(r))
    assert not missing, f"{path.name} uses names the package does not have: {missing}"


# ---------------------------------------------------------------- execution (fast mode)


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_instructor_notebook_executes(path: Path):
    t0 = time.perf_counter()
    nb = assignments.execute_notebook(path, timeout=CELL_TIMEOUT, allow_errors=True, fast=True)
    TIMINGS[path.name] = time.perf_counter() - t0
    errors = assignments.error_cells(nb)
    assert not errors, f"{path.name} (instructor version) failed:\n" + "\n".join(map(str, errors))
    unrun = [
        k for k, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None
    ]
    assert not unrun, f"{path.name}: cells {unrun} never ran"


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_notebook_fails_only_with_not_implemented(path: Path):
    """Cell by cell: the only errors are NotImplementedError, in exercise or grade cells."""
    student = assignments.release_notebook(assignments._read(path))
    nb = assignments.execute_notebook(
        student, timeout=CELL_TIMEOUT, allow_errors=True, fast=True, cwd=path.parent
    )
    errors = assignments.error_cells(nb)
    wrong = [
        e for e in errors if e.ename != "NotImplementedError" or e.role not in ("exercise", "grade")
    ]
    assert not wrong, f"{path.name} (student version): unexpected errors:\n" + "\n".join(
        map(str, wrong)
    )
    graded = [k for k, c in enumerate(nb.cells) if assignments.cell_role(c) == "grade"]
    failed = {e.index for e in errors}
    assert set(graded) <= failed, (
        f"{path.name}: grade cells {sorted(set(graded) - failed)} pass without any work"
    )
