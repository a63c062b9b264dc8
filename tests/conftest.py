"""Shared, expensive fixtures.

`autograded`: one real nbgrader run over every lesson notebook, for two students: "solution"
(the instructor notebooks, solutions in place) and "untouched" (the release as students get
it). It executes each notebook version exactly once, in fast mode; test_notebooks.py and
test_assignments.py read the executed notebooks and the scores from it (issue 12: before,
CI executed every notebook twice per version).
"""

from __future__ import annotations

import pytest

CELL_TIMEOUT = 420  # seconds per cell: training cells on a busy 2-core machine
NOTEBOOK_TIMEOUT = 900  # seconds per notebook version (checked on nbgrader's own timing)
AUTOGRADE_TIMEOUT = 3600  # pytest-timeout of the tests that request `autograded` first


@pytest.fixture(scope="session")
def autograded():
    """{(student, assignment): GradeResult with .notebook and .release}."""
    from taco_lite import course

    notebooks = course.lesson_notebooks()
    solutions = {p.name: course.read_notebook(p) for p in notebooks}
    results = course.autograde(
        {"solution": solutions, "untouched": None}, notebooks, fast=True,
        timeout=CELL_TIMEOUT, keep_notebooks=True,
    )  # fmt: skip
    return {(r.student, r.assignment): r for r in results}
