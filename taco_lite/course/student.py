"""Student versions of the instructor notebooks, generated with nbgrader's own preprocessors.

Why: student versions are *generated*, never kept by hand (nbgrader's rule), so that the
solution and the stub can never drift apart; `stub_mismatches` proves that they did not.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from taco_lite.course.notebooks import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CODE_STUB,
    END_HIDDEN,
    END_SOLUTION,
    TEXT_STUB,
    cell_role,
    lesson_notebooks,
    read_notebook,
    write_notebook,
)

__all__ = ["release_notebook", "release", "stub_mismatches"]


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


INSTRUCTOR_MARKERS = (BEGIN_SOLUTION, BEGIN_HIDDEN)


def release(
    out: str | os.PathLike, notebooks: Iterable[Path] | None = None, overwrite: bool = False
) -> list[Path]:
    """Write the student version of every lesson notebook into `out`; returns the paths.

    Nothing is written over an instructor notebook (the sources, or any file holding solution
    or hidden-test markers), ever; other existing files only with `overwrite=True`.
    """
    out = Path(out)
    sources = list(notebooks if notebooks is not None else lesson_notebooks())
    check_release_targets(out, sources, overwrite)
    written = []
    for path in sources:
        written.append(write_notebook(release_notebook(read_notebook(path)), out / Path(path).name))
    return written


def check_release_targets(out: Path, sources: list[Path], overwrite: bool) -> None:
    """ValueError before anything is written if a release into `out` would replace an
    instructor notebook, or (without overwrite) any existing file."""
    source_files = {Path(p).resolve() for p in sources}
    for src in sources:
        target = out / Path(src).name
        if target.resolve() in source_files:
            raise ValueError(
                f"--out {out} would write over the instructor notebook {src} (solutions and "
                "hidden tests would be lost): release into another folder, e.g. build/student"
            )
        if not target.exists():
            continue
        text = target.read_text(errors="replace") if target.is_file() else ""
        if any(marker in text for marker in INSTRUCTOR_MARKERS):
            raise ValueError(
                f"{target} is an instructor notebook (it holds solution or hidden-test markers) "
                "and is never overwritten: release into another folder, e.g. build/student"
            )
        if not overwrite:
            raise ValueError(
                f"{target} already exists: add --overwrite to replace the earlier release, or "
                "release into another --out folder"
            )


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
