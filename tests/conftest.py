"""Shared, expensive fixtures.

`autograded`: one real nbgrader run over every lesson notebook, for three students: "solution"
(the instructor notebooks, solutions in place), "untouched" (the release as students get
it) and "calls_kit" (every exercise the package answers solved by calling the package, only in
the notebooks that have one: tests/kit_calls.py; the integrity test of issue 19). It executes each notebook version exactly once, in fast mode; test_notebooks.py and
test_assignments.py read the executed notebooks and the scores from it (issue 12: before,
CI executed every notebook twice per version).
"""

from __future__ import annotations

import pytest

CELL_TIMEOUT = 420  # seconds per cell: training cells on a busy 2-core machine
NOTEBOOK_TIMEOUT = 900  # seconds per notebook version (checked on nbgrader's own timing)
AUTOGRADE_TIMEOUT = 3600  # pytest-timeout of the tests that request `autograded` first


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory):
    """The nbgrader course directory of the `autograded` run (for generate_feedback)."""
    return tmp_path_factory.mktemp("course")


@pytest.fixture(scope="session")
def autograded(course_dir):
    """{(student, assignment): GradeResult with .notebook and .release}."""
    from taco_lite import course

    try:
        from kit_calls import calls_kit_notebooks
    except ImportError:  # tests/ is a package
        from tests.kit_calls import calls_kit_notebooks

    notebooks = course.lesson_notebooks()
    solutions = {p.name: course.read_notebook(p) for p in notebooks}
    students = {"solution": solutions, "untouched": None, "calls_kit": calls_kit_notebooks()}
    results = course.autograde(
        students, notebooks, workdir=course_dir, fast=True,
        timeout=CELL_TIMEOUT, keep_notebooks=True,
    )  # fmt: skip
    return {(r.student, r.assignment): r for r in results}
