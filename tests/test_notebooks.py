"""Every lesson notebook runs, its student version fails only where it should, and it only
calls what the package really has (so notebooks and package cannot drift apart).

Notebooks run in fast mode (TACO_FAST=1), inside one real `nbgrader autograde` run (the
session fixture `autograded` in conftest.py, a per-cell timeout), so the plain
`python -m pytest` covers them: CI executes each version of each notebook once.
New notebooks `notebooks/NN_*.ipynb` are picked up automatically.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from taco_lite import course

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from conftest import AUTOGRADE_TIMEOUT, NOTEBOOK_TIMEOUT
except ImportError:  # tests/ is a package
    from tests.conftest import AUTOGRADE_TIMEOUT, NOTEBOOK_TIMEOUT

NOTEBOOKS = course.lesson_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
GRADED_SERIES = ("00", "01", "02", "03", "04", "05")  # the graded lesson arc of issue 5


def test_the_series_is_there():
    names = {p.name[:2] for p in NOTEBOOKS}
    assert set(GRADED_SERIES) <= names, f"missing lesson notebooks: {set(GRADED_SERIES) - names}"


# ---------------------------------------------------------------- static structure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_without_outputs_and_graded_cells_are_named(path: Path):
    nb = course.read_notebook(path)
    ids = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} cell {k} holds outputs: clear outputs before saving "
                "(python -m taco_lite.course execute writes executed copies elsewhere)"
            )
        meta = cell.metadata.get("nbgrader")
        role = course.cell_role(cell)
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
    nb = course.read_notebook(path)
    roles = [course.cell_role(c) for c in nb.cells]
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
    refs = taco_references(_code(course.read_notebook(path)))
    missing = sorted(r for r in refs if not resolves(r))
    assert not missing, f"{path.name} uses names the package does not have: {missing}"


# ---------------------------------------------------------------- notebooks vs repo files

REPO = Path(__file__).resolve().parents[1]
WRITTEN = ("runs",)  # top-level folders notebooks write into (git-ignored outputs)
FILE_EXT = r"(?:md|png|jpe?g|gif|svg|pt|json|gz|npy|npz|csv|txt|ipynb)"
MARKER = re.compile(r"<!--\s*([\w.-]+):(start|end)\s*-->")


def _repo_files() -> list[str]:
    import subprocess

    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout:
        return out.stdout.splitlines()
    return [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()]  # no git


def repo_reads(source: str) -> tuple[set[str], set[str], set[str]]:
    """What notebook code reads from the repo: (paths, bare file names, results markers).

    paths: repo-relative paths built as `REPO / "docs" / "results.md"` (REPO being any name
    bound to `Path(taco_lite.__file__)...parents[1]`, followed through assignments like
    `CHECKPOINTS = REPO / "data" / "checkpoints"`), or written as literals "docs/x.md".
    names: literal file names such as "taco.pt" (any string without spaces or slashes ending in
    a data/figure extension). markers: `<!-- name:start -->` / `<!-- name:end -->` names in
    any string literal, regex patterns included.
    """
    tree = ast.parse(source)
    tops = {f.split("/")[0] for f in _repo_files()}
    known: dict[str, tuple[str, ...]] = {}
    paths: set[str] = set()
    names: set[str] = set()
    markers: set[str] = set()
    in_chain: set[int] = set()  # ids of the literals that `resolve` put into a path

    def is_root(node: ast.AST) -> bool:
        # Path(taco_lite.__file__).resolve().parents[1] (or .parent.parent)
        text = ast.unparse(node)
        return "__file__" in text and ("parents[1]" in text or text.count(".parent") >= 2)

    def resolve(node: ast.AST) -> tuple[str, ...] | None:
        if isinstance(node, ast.Name) and node.id in known:
            return known[node.id]
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("str", "Path"):
            return resolve(node.args[0]) if len(node.args) == 1 else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = resolve(node.left)
            right = node.right
            if (
                left is not None
                and isinstance(right, ast.Constant)
                and isinstance(right.value, str)
            ):
                in_chain.add(id(right))
                return (*left, *right.value.split("/"))
            return None
        if is_root(node):
            return ()
        return None

    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1]
    for _ in range(len(assigns) + 1):  # until no new name resolves (any order of cells)
        before = dict(known)
        for node in assigns:
            where = resolve(node.value)
            if isinstance(node.targets[0], ast.Name) and where is not None:
                known[node.targets[0].id] = where
        if known == before:
            break
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            where = resolve(node)
            if where:
                paths.add("/".join(where))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            markers |= {m.group(1) for m in MARKER.finditer(text)}
            if any(c.isspace() for c in text) or "{" in text or id(node) in in_chain:
                continue
            if "/" in text and text.split("/")[0] in tops and not text.startswith("/"):
                paths.add(text.rstrip("/"))
            elif "/" not in text and re.fullmatch(rf"[\w.-]+\.{FILE_EXT}", text):
                names.add(text)
    # REPO / "docs" is only the inner part of REPO / "docs" / "x.md": keep the longest paths
    paths = {p for p in paths if not any(q.startswith(p + "/") for q in paths)}
    return {p for p in paths if p.split("/")[0] not in WRITTEN}, names, markers


def markdown_figures(nb) -> set[str]:
    """Images the markdown cells show: `![alt](path)` and `<img src="path">`, local only."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for m in re.finditer(r"!\[[^\]]*\]\(([^)\s]+)|<img[^>]*\ssrc=[\"']([^\"']+)", cell.source):
            target = m.group(1) or m.group(2)
            if not re.match(r"(https?:|data:|attachment:)", target):
                found.add(target)
    return found


def missing_repo_reads(nb, folder: Path = REPO / "notebooks") -> list[str]:
    """Every path, file name, results marker and figure the notebook reads that the repo lacks."""
    files = _repo_files()
    basenames = {f.rsplit("/", 1)[-1] for f in files}
    dirs = {"/".join(f.split("/")[:k]) for f in files for k in range(1, f.count("/") + 1)}
    paths, names, markers = repo_reads(_code(nb))
    problems = [f"path {p!r}" for p in sorted(paths) if p not in files and p not in dirs]
    problems += [f"file {n!r}" for n in sorted(names) if n not in basenames]
    read_md = [p for p in paths if p.endswith(".md") and p in files]
    targets = read_md or [f for f in files if f.endswith(".md")]
    texts = [(REPO / t).read_text(encoding="utf-8") for t in targets]
    for m in sorted(markers):
        for end in ("start", "end"):
            if not any(re.search(rf"<!--\s*{re.escape(m)}:{end}\s*-->", t) for t in texts):
                problems.append(f"marker <!-- {m}:{end} --> (not in {', '.join(sorted(targets))})")
    for fig in sorted(markdown_figures(nb)):
        if not (folder / fig).resolve().is_file():
            problems.append(f"figure {fig!r}")
    return problems


OLD_CELL_21 = """
import taco_lite, re
from pathlib import Path
REPO = Path(taco_lite.__file__).resolve().parents[1]
results = REPO / "docs" / "results.md"
text = results.read_text() if results.is_file() else ""
section = re.search(r"<!-- sweep:start -->(.*?)<!-- sweep:end -->", text, re.S)
"""


def test_repo_read_finder_catches_drift():
    """Notebook 05's old cell 21 read a marker the sweep never writes: the check must say so."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(OLD_CELL_21)])
    assert repo_reads(OLD_CELL_21) == ({"docs/results.md"}, set(), {"sweep"})
    problems = missing_repo_reads(nb)
    assert problems == [
        "marker <!-- sweep:start --> (not in docs/results.md)",
        "marker <!-- sweep:end --> (not in docs/results.md)",
    ]
    fixed = OLD_CELL_21.replace("sweep:", "sweep-test:")
    assert (
        missing_repo_reads(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(fixed)])) == []
    )
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            "CK = REPO / 'data' / 'checkpoints'\nload(CK / 'nope.pt')\nload_or_train(checkpoint='gone.pt')\n"
            "REPO = Path(taco_lite.__file__).parents[1]\nopen('docs/missing.md')\nopen('runs/out.pt')"
        ),
        nbformat.v4.new_markdown_cell("![clip](../docs/no_such.png) ![ok](../docs/world_clip.png)"),
    ])  # fmt: skip
    assert missing_repo_reads(bad) == [
        "path 'data/checkpoints/nope.pt'",
        "path 'docs/missing.md'",
        "file 'gone.pt'",
        "figure '../docs/no_such.png'",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reads_only_what_the_repo_has(path: Path):
    problems = missing_repo_reads(course.read_notebook(path), path.parent)
    assert not problems, f"{path.name} reads what the repo does not have: {problems}"


# ---------------------------------------------------------------- execution (fast mode)


@pytest.mark.slow
@pytest.mark.timeout(AUTOGRADE_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_instructor_notebook_executes(path: Path, autograded):
    """The instructor version, executed by nbgrader autograde as the "solution" submission."""
    res = autograded[("solution", path.stem)]
    nb = res.notebook
    errors = course.error_cells(nb)
    assert not errors, f"{path.name} (instructor version) failed:\n" + "\n".join(map(str, errors))
    unrun = [
        k for k, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None
    ]
    assert not unrun, f"{path.name}: cells {unrun} never ran"
    # both versions ran in this one autograde call, each within the per-notebook budget
    assert res.seconds < 2 * NOTEBOOK_TIMEOUT, f"{path.name}: {res.seconds:.0f} s for 2 versions"


@pytest.mark.slow
@pytest.mark.timeout(AUTOGRADE_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_notebook_fails_only_with_not_implemented(path: Path, autograded):
    """Cell by cell: the only errors are NotImplementedError, in exercise or grade cells.

    The executed copy is nbgrader's release ("untouched" submission); the kit's own
    `course.release_notebook` must give the same code, so the check covers both."""
    res = autograded[("untouched", path.stem)]
    ours = [c.source for c in course.release_notebook(course.read_notebook(path)).cells
            if c.cell_type == "code"]  # fmt: skip
    theirs = [c.source for c in res.release.cells if c.cell_type == "code"]
    assert ours == theirs, f"{path.name}: course.release_notebook differs from nbgrader's release"
    nb = res.notebook
    errors = course.error_cells(nb)
    wrong = [
        e for e in errors if e.ename != "NotImplementedError" or e.role not in ("exercise", "grade")
    ]
    assert not wrong, f"{path.name} (student version): unexpected errors:\n" + "\n".join(
        map(str, wrong)
    )
    graded = [k for k, c in enumerate(nb.cells) if course.cell_role(c) == "grade"]
    failed = {e.index for e in errors}
    assert set(graded) <= failed, (
        f"{path.name}: grade cells {sorted(set(graded) - failed)} pass without any work"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_parameters_cell_and_every_exercise_checked_right_away(path: Path):
    """Every notebook (06 and 07 included, issue 19): a `parameters` cell reading TACO_FAST, and
    each exercise cell followed by its grade cell(s)."""
    nb = course.read_notebook(path)
    assert any(
        "TACO_FAST" in c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])
    ), f"{path.name}: no parameters cell (tag `parameters`) reading TACO_FAST"
    roles = [course.cell_role(c) for c in nb.cells]
    for k, role in enumerate(roles):
        gid = nb.cells[k].metadata.get("nbgrader", {}).get("grade_id")
        if role == "exercise" and gid != "ex05_your_functions":
            assert k + 1 < len(roles) and roles[k + 1] == "grade", (
                f"{path.name} cell {k} ({gid}): an exercise must be followed by its grade cell"
            )
