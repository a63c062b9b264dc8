"""Real nbgrader autograde in a throw-away course directory.

Why: `nbgrader generate_assignment` + `nbgrader autograde` are what a course runs, so the kit
runs them too: the solutions must earn every autograded point and untouched releases none.
Each notebook is its own nbgrader assignment, named after the file's stem.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taco_lite.course.notebooks import (
    CODE_STUB,
    lesson_notebooks,
    read_notebook,
    repo_root,
    write_notebook,
)
from taco_lite.course.runner import kernel_env

__all__ = ["GradeResult", "autograde", "feedback"]


@dataclass
class GradeResult:
    """Autograde scores of one student's notebook (from nbgrader's gradebook)."""

    student: str
    assignment: str
    auto_score: float  # points from autograded (test) cells
    auto_max: float
    manual_max: float  # points waiting for a human (inline questions)
    failed_cells: list[str] = field(default_factory=list)  # grade ids scoring below max
    # every autograded cell, in notebook order: (grade_id, points earned, points possible)
    cells: list[tuple[str, float, float]] = field(default_factory=list)
    # with autograde(keep_notebooks=True): the executed (autograded) notebook, the release that
    # `nbgrader generate_assignment` wrote, and the seconds of this assignment's autograde call
    notebook: Any = field(default=None, repr=False)
    release: Any = field(default=None, repr=False)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.student:>10} {self.assignment:<28} {self.auto_score:4.1f} / {self.auto_max:4.1f}"
            f"  (+{self.manual_max:g} manual)"
        )

    def breakdown(self) -> str:
        """One line per autograded cell: grade_id, points earned / possible."""
        return "\n".join(
            f"{'':>12}{gid:<36} {got:4.1f} / {most:4.1f}{'' if got >= most else '  <- failed'}"
            for gid, got, most in self.cells
        )


_CONFIG = """c = get_config()
c.CourseDirectory.course_id = "taco_lite"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {timeout}
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
"""


class _Course:
    """nbgrader's own Python API (`NbGraderAPI`), in this process: the same converters as the
    `nbgrader` command line without starting an interpreter per call (3-4 s each, 16+ calls).
    Kernels still start as subprocesses; they inherit `env`, set only while a call runs."""

    def __init__(self, root: Path, env: Mapping[str, str], timeout: int) -> None:
        from nbgrader.apps import NbGraderAPI
        from traitlets.config import Config

        c = Config()
        c.CourseDirectory.course_id = "taco_lite"
        c.CourseDirectory.root = str(root)
        c.Execute.timeout = timeout
        c.ClearSolutions.code_stub = {"python": CODE_STUB}
        self.api = NbGraderAPI(config=c)
        self.root, self.env = root, dict(env)

    def __call__(self, action: str, *args: str) -> None:
        saved, cwd = dict(os.environ), os.getcwd()
        try:
            os.environ.clear()
            os.environ.update(self.env)
            os.chdir(self.root)
            res = getattr(self.api, action)(*args, force=True)
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)
        if not res.get("success"):
            raise RuntimeError(
                f"nbgrader {action} {' '.join(args)} failed:\n{str(res.get('error'))[-3000:]}"
                f"\n{str(res.get('log'))[-3000:]}"
            )


def autograde(
    submissions: Mapping[str, Mapping[str, Any] | None],
    notebooks: Iterable[Path] | None = None,
    workdir: str | os.PathLike | None = None,
    fast: bool | None = None,
    timeout: int = 900,
    keep_notebooks: bool = False,
) -> list[GradeResult]:
    """Real nbgrader autograde in a temporary course directory.

    submissions: {student id: {notebook file name: notebook} or None}. None means "the untouched
    release" (what `nbgrader generate_assignment` wrote). A student whose mapping lacks a
    notebook did not submit that assignment (no result). Each notebook is its own assignment.
    Steps: nbgrader_config.py; source/<assignment>/<notebook>; `nbgrader generate_assignment`;
    copy into submitted/<student>/<assignment>/; `nbgrader autograde`; read the gradebook.
    timeout: seconds per cell. keep_notebooks: also return each executed notebook and its
    release (`GradeResult.notebook`, `.release`), so that one execution serves every check.
    """
    from nbgrader.api import Gradebook

    paths = list(notebooks if notebooks is not None else lesson_notebooks())
    own_tmp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="taco_course_") if own_tmp else workdir).resolve()
    env = _env()
    if fast is not None:
        env["TACO_FAST"] = "1" if fast else "0"
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "nbgrader_config.py").write_text(  # for a person who opens the folder
            _CONFIG.format(root=str(root), timeout=timeout, stub=CODE_STUB)
        )
        nbgrader = _Course(root, env, timeout)
        assignments = {p.stem: p for p in paths}
        for name, path in assignments.items():
            shutil.copy(path, _mkdir(root / "source" / name) / path.name)
            nbgrader("generate_assignment", name)
        def submitted(student: str, path: Path) -> bool:
            chosen = submissions[student]
            return chosen is None or path.name in chosen

        for student, notebooks_by_name in submissions.items():
            for name, path in assignments.items():
                if not submitted(student, path):
                    continue
                dest = _mkdir(root / "submitted" / student / name) / path.name
                if notebooks_by_name is None:
                    shutil.copy(root / "release" / name / path.name, dest)
                else:
                    write_notebook(notebooks_by_name[path.name], dest)
        results, seconds = [], {}
        for name, path in assignments.items():
            for student in submissions:
                if submitted(student, path):
                    t0 = time.perf_counter()
                    nbgrader("autograde", name, student)
                    seconds[student, name] = time.perf_counter() - t0
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for student in submissions:
                for name, path in assignments.items():
                    if not submitted(student, path):
                        continue
                    res = _scores(gb, student, name, path.stem, read_notebook(path))
                    res.seconds = seconds[student, name]
                    if keep_notebooks:
                        res.notebook = read_notebook(
                            root / "autograded" / student / name / path.name
                        )
                        res.release = read_notebook(root / "release" / name / path.name)
                    results.append(res)
        return results
    finally:
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)


def _env() -> dict[str, str]:
    env = kernel_env(None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root()), env.get("PYTHONPATH")]))
    # nbgrader shells out to `alembic` (its database migrations): find the one of this Python
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    return env


def feedback(
    course_dir: str | os.PathLike,
    assignments: Iterable[str] | None = None,
    student: str | None = None,
) -> list[Path]:
    """nbgrader's `generate_feedback` in a course directory that `autograde` filled.

    course_dir: e.g. the folder of `python -m taco_lite.course autograde --keep DIR`, or a
    real course laid out the same way. assignments: names (default: every autograded one);
    student: one student id (default: all). Returns the HTML files under feedback/, one per
    student and notebook: each grade cell with its output (the check's hints) and its points.
    """
    root = Path(course_dir).resolve()
    if not (root / "gradebook.db").is_file():
        raise FileNotFoundError(
            f"{root} holds no gradebook.db: run `python -m taco_lite.course autograde --keep "
            f"{root}` first (or point at your nbgrader course directory)"
        )
    names = list(assignments or sorted({p.name for p in root.glob("autograded/*/*") if p.is_dir()}))
    if not names:
        raise FileNotFoundError(f"{root}/autograded/ is empty: nothing was autograded yet")
    nbgrader = _Course(root, _env(), 60)
    for name in names:
        nbgrader("generate_feedback", name, *([student] if student else []))
    return sorted(
        p for name in names for p in root.glob(f"feedback/{student or '*'}/{name}/*.html")
    )


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _scores(gb: Any, student: str, assignment: str, notebook: str, source: Any) -> GradeResult:
    sub = gb.find_submission_notebook(notebook, assignment, student)
    order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells]
    auto, auto_max, manual_max, failed, cells = 0.0, 0.0, 0.0, [], []
    grades = sorted(sub.grades, key=lambda g: order.index(g.name) if g.name in order else 1e9)
    for grade in grades:
        if grade.cell.cell_type == "code" and not _is_solution_cell(
            gb, grade, assignment, notebook
        ):
            earned = grade.auto_score or 0.0
            auto_max += grade.max_score
            auto += earned
            cells.append((grade.name, earned, grade.max_score))
            if earned < grade.max_score:
                failed.append(grade.name)
        else:
            manual_max += grade.max_score
    return GradeResult(student, assignment, auto, auto_max, manual_max, failed, cells)


def _is_solution_cell(gb: Any, grade: Any, assignment: str, notebook: str) -> bool:
    try:
        gb.find_solution_cell(grade.name, notebook, assignment)
    except Exception:  # nbgrader raises MissingEntry for cells that are tests only
        return False
    return True
