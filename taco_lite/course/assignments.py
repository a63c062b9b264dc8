"""Release, execute and autograde the graded notebooks with nbgrader (instructor tooling).

    python -m taco_lite.course release --out build/student     # student versions
    python -m taco_lite.course execute --out notebooks/executed  # executed copies to browse
    python -m taco_lite.course autograde                         # solutions vs untouched copies

Why: student versions are *generated*, never kept by hand (nbgrader's rule), so that the
solution and the stub can never drift apart. Release runs nbgrader's own preprocessors
(ClearSolutions, ClearHiddenTests, ClearOutput) through nbconvert; autograde runs the real
`nbgrader generate_assignment` + `nbgrader autograde` in a throw-away course directory.

Every `notebooks/[0-9][0-9]_*.ipynb` is picked up automatically (06 and 07 included once they
exist). Each notebook is its own nbgrader assignment, named after the file's stem.
Fast mode: `TACO_FAST=1` in the environment shrinks sizes inside the notebooks; `--fast`
sets it for the kernels started here.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import taco_lite

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"

__all__ = [
    "NOTEBOOK_GLOB",
    "CellError",
    "GradeResult",
    "autograde",
    "cell_role",
    "error_cells",
    "execute",
    "execute_notebook",
    "lesson_notebooks",
    "main",
    "notebooks_dir",
    "release",
    "release_notebook",
    "stub_mismatches",
]


def repo_root() -> Path:
    """The repository root (see `taco_lite.repo_root`)."""
    return taco_lite.repo_root()


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def lesson_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """Every `NN_name.ipynb` of `folder` (default: the repo's notebooks/), in order."""
    root = Path(folder) if folder is not None else notebooks_dir()
    return sorted(p for p in root.glob(NOTEBOOK_GLOB) if p.is_file())


def _read(path: str | os.PathLike) -> Any:
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _write(nb: Any, path: Path) -> Path:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def cell_role(cell: Any) -> str:
    """'exercise' (nbgrader solution cell), 'grade' (autograded test), 'answer' or 'plain'."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    solution, grade = bool(meta.get("solution")), bool(meta.get("grade"))
    if solution and grade:
        return "answer"
    if solution:
        return "exercise"
    if grade:
        return "grade"
    return "plain"


# ------------------------------------------------------------------------------ release


def release_notebook(nb: Any) -> Any:
    """The student version of one instructor notebook, made by nbgrader's own preprocessors.

    ClearSolutions replaces each `### BEGIN SOLUTION ... ### END SOLUTION` region with the
    stub `raise NotImplementedError()` (markdown answers with "YOUR ANSWER HERE"),
    ClearHiddenTests drops the hidden tests, ClearOutput the outputs. The input is not modified.
    """
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = copy.deepcopy(nb)
    resources: dict[str, Any] = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def release(out: str | os.PathLike, notebooks: Iterable[Path] | None = None) -> list[Path]:
    """Write the student version of every lesson notebook into `out`; returns the paths."""
    out = Path(out)
    written = []
    for path in notebooks if notebooks is not None else lesson_notebooks():
        written.append(_write(release_notebook(_read(path)), out / Path(path).name))
    return written


def _without_regions(source: str, begin: str, end: str, keep: str | None) -> list[str]:
    """Lines of `source` with each begin..end region (marker lines included) -> `keep` (or dropped)."""
    out, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
            if keep is not None:
                out.append(keep)
            continue
        if inside:
            if end in line:
                inside = False
            continue
        out.append(line)
    if inside:
        raise ValueError(f"a '{begin}' region is never closed by '{end}'")
    return out


def _without_stubs(source: str) -> list[str]:
    """Lines of a student cell with each stub (any indentation) -> '<solution>'."""
    stubs = [CODE_STUB.splitlines(), TEXT_STUB.splitlines()]
    lines, out, i = source.splitlines(), [], 0
    while i < len(lines):
        for stub in stubs:
            block = [ln.strip() for ln in lines[i : i + len(stub)]]
            if block == stub:
                out.append("<solution>")
                i += len(stub)
                break
        else:
            out.append(lines[i])
            i += 1
    return out


def stub_mismatches(instructor: Any, student: Any) -> list[str]:
    """Where the student notebook differs from the instructor's outside the marked regions.

    Cell by cell: the instructor cell with solution regions replaced by '<solution>' and hidden
    tests removed must equal the student cell with its stubs replaced by '<solution>', and the
    nbgrader metadata must be the same. Returns human-readable differences (empty = identical).
    """
    problems = []
    if len(instructor.cells) != len(student.cells):
        return [f"{len(instructor.cells)} instructor cells but {len(student.cells)} student cells"]
    for k, (a, b) in enumerate(zip(instructor.cells, student.cells, strict=True)):
        left = _without_regions(a.source, BEGIN_HIDDEN, END_HIDDEN, None)
        if cell_role(a) in ("exercise", "answer") and BEGIN_SOLUTION not in a.source:
            left = ["<solution>"]  # nbgrader replaces a solution cell without markers whole
        else:
            left = _without_regions("\n".join(left), BEGIN_SOLUTION, END_SOLUTION, "<solution>")
            left = [ln.strip() if ln.strip() == "<solution>" else ln for ln in left]
        right = _without_stubs(b.source)
        if a.cell_type != b.cell_type:
            problems.append(f"cell {k}: {a.cell_type} became {b.cell_type}")
        elif left != right:
            diff = next(
                (i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
                min(len(left), len(right)),
            )
            problems.append(f"cell {k} ({cell_role(a)}): first difference at line {diff + 1}")
        if a.get("metadata", {}).get("nbgrader") != b.get("metadata", {}).get("nbgrader"):
            problems.append(f"cell {k}: nbgrader metadata differs")
    return problems


# ------------------------------------------------------------------------------ execute


@dataclass
class CellError:
    """One cell that raised during execution."""

    index: int
    role: str  # cell_role of the cell
    ename: str  # exception class name, e.g. "NotImplementedError"
    evalue: str
    grade_id: str | None

    def __str__(self) -> str:
        where = f"cell {self.index} ({self.role}{', ' + self.grade_id if self.grade_id else ''})"
        return f"{where}: {self.ename}: {self.evalue[:300]}"


def _kernel_env(fast: bool | None) -> dict[str, str]:
    env = dict(os.environ)
    if fast is not None:
        env["TACO_FAST"] = "1" if fast else "0"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def execute_notebook(
    path_or_nb: str | os.PathLike | Any,
    timeout: int = 600,
    allow_errors: bool = False,
    fast: bool | None = None,
    cwd: str | os.PathLike | None = None,
) -> Any:
    """Run a notebook top to bottom with nbclient, one cell after the other; returns it executed.

    timeout: seconds per cell. allow_errors=True records a cell's error in its outputs and goes
    on with the next cell (use `error_cells` to read them); False stops at the first error
    (`nbclient.exceptions.CellExecutionError`). fast: sets TACO_FAST for the kernel (None keeps
    the environment's). cwd: the kernel's working directory (default: the notebook's folder).
    """
    from nbclient import NotebookClient

    if isinstance(path_or_nb, str | os.PathLike):
        path = Path(path_or_nb)
        nb = _read(path)
        cwd = cwd if cwd is not None else path.parent
    else:
        nb = copy.deepcopy(path_or_nb)
        cwd = cwd if cwd is not None else notebooks_dir()
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=allow_errors,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    with _environment(_kernel_env(fast)):
        client.execute()
    return nb


class _environment:
    """Temporarily replace os.environ (the kernel inherits the parent's environment)."""

    def __init__(self, env: Mapping[str, str]):
        self.env, self.saved = dict(env), None

    def __enter__(self) -> None:
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self.saved or {})


def error_cells(nb: Any) -> list[CellError]:
    """Every code cell whose outputs hold an error, with its role and exception name."""
    found = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                found.append(CellError(k, cell_role(cell), out["ename"], out["evalue"], grade_id))
    return found


def execute(
    out: str | os.PathLike,
    notebooks: Iterable[Path] | None = None,
    fast: bool | None = None,
    timeout: int = 900,
) -> dict[str, float]:
    """Executed copies of the lesson notebooks in `out` (for browsing); returns seconds per file."""
    out = Path(out)
    seconds = {}
    for path in notebooks if notebooks is not None else lesson_notebooks():
        t0 = time.perf_counter()
        nb = execute_notebook(path, timeout=timeout, allow_errors=True, fast=fast)
        seconds[Path(path).name] = time.perf_counter() - t0
        _write(nb, out / Path(path).name)
        errors = error_cells(nb)
        status = "ok" if not errors else f"{len(errors)} error(s): {errors[0]}"
        print(f"{Path(path).name}: {seconds[Path(path).name]:.0f} s, {status}", flush=True)
    return seconds


# ------------------------------------------------------------------------------ autograde


@dataclass
class GradeResult:
    """Autograde scores of one student's notebook (from nbgrader's gradebook)."""

    student: str
    assignment: str
    auto_score: float  # points from autograded (test) cells
    auto_max: float
    manual_max: float  # points waiting for a human (inline questions)
    failed_cells: list[str] = field(default_factory=list)  # grade ids scoring below max

    def __str__(self) -> str:
        return (
            f"{self.student:>10} {self.assignment:<28} {self.auto_score:4.1f} / {self.auto_max:4.1f}"
            f"  (+{self.manual_max:g} manual)"
        )


_CONFIG = """c = get_config()
c.CourseDirectory.course_id = "taco_lite"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {timeout}
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
"""


def _nbgrader(args: Sequence[str], root: Path, env: Mapping[str, str]) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args, "--force"]
    proc = subprocess.run(cmd, cwd=root, env=dict(env), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )


def autograde(
    submissions: Mapping[str, Mapping[str, Any] | None],
    notebooks: Iterable[Path] | None = None,
    workdir: str | os.PathLike | None = None,
    fast: bool | None = None,
    timeout: int = 900,
) -> list[GradeResult]:
    """Real nbgrader autograde in a temporary course directory.

    submissions: {student id: {notebook file name: notebook} or None}. None means "the untouched
    release" (what `nbgrader generate_assignment` wrote). Each notebook is its own assignment.
    Steps: nbgrader_config.py; source/<assignment>/<notebook>; `nbgrader generate_assignment`;
    copy into submitted/<student>/<assignment>/; `nbgrader autograde`; read the gradebook.
    """
    from nbgrader.api import Gradebook

    paths = list(notebooks if notebooks is not None else lesson_notebooks())
    own_tmp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="taco_course_") if own_tmp else workdir).resolve()
    env = _kernel_env(fast)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root()), env.get("PYTHONPATH")]))
    # nbgrader shells out to `alembic` (its database migrations): find the one of this Python
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "nbgrader_config.py").write_text(
            _CONFIG.format(root=str(root), timeout=timeout, stub=CODE_STUB)
        )
        assignments = {p.stem: p for p in paths}
        for name, path in assignments.items():
            shutil.copy(path, _mkdir(root / "source" / name) / path.name)
            _nbgrader(["generate_assignment", name], root, env)
        for student, notebooks_by_name in submissions.items():
            for name, path in assignments.items():
                dest = _mkdir(root / "submitted" / student / name) / path.name
                if notebooks_by_name is None:
                    shutil.copy(root / "release" / name / path.name, dest)
                else:
                    _write(notebooks_by_name[path.name], dest)
        results = []
        for name in assignments:
            _nbgrader(["autograde", name], root, env)
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for student in submissions:
                for name, path in assignments.items():
                    results.append(_scores(gb, student, name, path.stem))
        return results
    finally:
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _scores(gb: Any, student: str, assignment: str, notebook: str) -> GradeResult:
    sub = gb.find_submission_notebook(notebook, assignment, student)
    auto, auto_max, manual_max, failed = 0.0, 0.0, 0.0, []
    for grade in sub.grades:
        if grade.cell.cell_type == "code" and not _is_solution_cell(
            gb, grade, assignment, notebook
        ):
            auto_max += grade.max_score
            auto += grade.auto_score or 0.0
            if (grade.auto_score or 0.0) < grade.max_score:
                failed.append(grade.name)
        else:
            manual_max += grade.max_score
    return GradeResult(student, assignment, auto, auto_max, manual_max, failed)


def _is_solution_cell(gb: Any, grade: Any, assignment: str, notebook: str) -> bool:
    try:
        gb.find_solution_cell(grade.name, notebook, assignment)
    except Exception:  # nbgrader raises MissingEntry for cells that are tests only
        return False
    return True


# ------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.course", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="write student versions (nbgrader preprocessors)")
    r.add_argument("--out", default="build/student")
    e = sub.add_parser("execute", help="write executed copies for browsing")
    e.add_argument("--out", default="notebooks/executed")
    e.add_argument("--fast", action="store_true", help="TACO_FAST=1 for the kernels")
    a = sub.add_parser("autograde", help="nbgrader autograde: solutions and untouched releases")
    a.add_argument("--fast", action="store_true", help="TACO_FAST=1 for the kernels")
    a.add_argument("--keep", help="keep the course directory here instead of a temporary one")
    for q in (r, e, a):
        q.add_argument(
            "notebooks", nargs="*", help="notebooks (default: every notebooks/NN_*.ipynb)"
        )
    return p


def main(argv: Sequence[str] | None = None) -> Any:
    args = build_parser().parse_args(argv)
    chosen = [Path(n) for n in args.notebooks] or None
    if args.command == "release":
        written = release(args.out, chosen)
        for w in written:
            print(w)
        return written
    if args.command == "execute":
        return execute(args.out, chosen, fast=True if args.fast else None)
    nbs = chosen or lesson_notebooks()
    solutions = {p.name: _read(p) for p in nbs}
    results = autograde(
        {"solution": solutions, "untouched": None},
        nbs,
        workdir=args.keep,
        fast=True if args.fast else None,
    )
    for res in results:
        print(res)
    return results
