"""The graded notebooks as files: where they are, how to read and write them, each cell's role.

Every `notebooks/[0-9][0-9]_*.ipynb` is a lesson (06 and 07 included once they exist). A cell's
role comes from its nbgrader metadata; the markers below are nbgrader's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import taco_lite

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"

__all__ = ["NOTEBOOK_GLOB", "lesson_notebooks", "read_notebook", "write_notebook", "cell_role"]


def repo_root() -> Path:
    """The repository root (see `taco_lite.repo_root`)."""
    return taco_lite.repo_root()


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def lesson_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """Every `NN_name.ipynb` of `folder` (default: the repo's notebooks/), in order."""
    root = Path(folder) if folder is not None else notebooks_dir()
    return sorted(p for p in root.glob(NOTEBOOK_GLOB) if p.is_file())


def read_notebook(path: str | os.PathLike) -> Any:
    """The notebook at `path` (nbformat, version 4)."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def write_notebook(nb: Any, path: Path) -> Path:
    """Write `nb` to `path` (parent folders created); returns `path`."""
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
