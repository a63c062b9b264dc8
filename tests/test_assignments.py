"""nbgrader release and autograde: stubs match solutions outside the markers, and the real
`nbgrader autograde` gives full points to the solutions and 0 to untouched student copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from taco_lite import course

NOTEBOOKS = course.lesson_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def test_release_cli_writes_student_versions(tmp_path: Path):
    written = course.main(["release", "--out", str(tmp_path)])
    assert sorted(p.name for p in written) == sorted(p.name for p in NOTEBOOKS)
    for path in written:
        nb = course.read_notebook(path)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path.name
        exercises = [c for c in nb.cells if course.cell_role(c) == "exercise"]
        assert exercises and all(
            "raise NotImplementedError()" in c.source or "YOUR ANSWER HERE" in c.source
            for c in exercises
        )
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stub_and_solution_identical_outside_markers(path: Path):
    instructor = course.read_notebook(path)
    student = course.release_notebook(instructor)
    assert course.stub_mismatches(instructor, student) == []


def test_stub_check_can_fail():
    instructor = course.read_notebook(NOTEBOOKS[0])
    student = course.release_notebook(instructor)
    k = next(i for i, c in enumerate(student.cells) if course.cell_role(c) == "exercise")
    student.cells[k].source = student.cells[k].source.replace("def ", "def renamed_", 1)
    problems = course.stub_mismatches(instructor, student)
    assert problems and f"cell {k}" in problems[0]
    student.cells.pop()
    assert "cells" in course.stub_mismatches(instructor, student)[0]


def test_release_leaves_the_instructor_notebook_alone():
    nb = course.read_notebook(NOTEBOOKS[0])
    before = [c.source for c in nb.cells]
    course.release_notebook(nb)
    assert [c.source for c in nb.cells] == before


def test_execute_cli_writes_an_executed_copy(tmp_path: Path):
    first = NOTEBOOKS[0]
    seconds = course.main(["execute", "--fast", "--out", str(tmp_path), str(first)])
    nb = course.read_notebook(tmp_path / first.name)
    assert seconds[first.name] > 0
    assert not course.error_cells(nb)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_nbgrader_autograde_full_points_for_solutions_zero_for_untouched(autograded):
    by = autograded  # one real nbgrader run, shared with test_notebooks.py (conftest.py)
    for path in NOTEBOOKS:
        sol, raw = by[("solution", path.stem)], by[("untouched", path.stem)]
        assert sol.auto_max > 0, f"{path.name} has no autograded points"
        assert sol.auto_score == sol.auto_max, (
            f"{path.name}: solution lost points in {sol.failed_cells}"
        )
        assert raw.auto_score == 0, f"{path.name}: an untouched copy earned {raw.auto_score} points"
        assert raw.auto_max == sol.auto_max
