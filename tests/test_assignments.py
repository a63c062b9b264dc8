"""nbgrader release and autograde: stubs match solutions outside the markers, and the real
`nbgrader autograde` gives full points to the solutions and 0 to untouched student copies."""

from __future__ import annotations

import ast
import re
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


# ---------------------------------------------------------------- integrity (issue 19)


def _exercise_names(nb) -> set[str]:
    """The functions the exercise cells ask for, as the kit names them (my_token_nce -> token_nce)."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and course.cell_role(cell) == "exercise":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    names.add(node.name.removeprefix("my_"))
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_notebooks_do_not_import_what_they_ask_for(path: Path):
    nb = course.read_notebook(path)
    asked = _exercise_names(nb)
    imported = {
        alias.asname or alias.name
        for cell in nb.cells
        if cell.cell_type == "code"
        for node in ast.walk(ast.parse(re.sub(r"^\s*[%!].*$", "", cell.source, flags=re.M)))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if course.cell_role(cell) != "exercise"
    }
    assert not asked & imported, (
        f"{path.name} imports the kit's answer to its own exercise(s) {sorted(asked & imported)}: "
        "a learner could just call it. Use checks.reference(name) where the notebook needs it"
    )
    kit = {name for name in asked if course.KIT_ANSWERS.get(name)}
    assert kit <= set(course.KIT_ANSWERS), kit


def test_every_exercise_the_package_answers_is_registered():
    """An exercise named like a package function must be in KIT_ANSWERS, so checks hide it."""
    import importlib
    import pkgutil

    import taco_lite

    defined = set()
    for info in pkgutil.walk_packages(taco_lite.__path__, "taco_lite."):
        if ".course" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        defined |= {k for k, v in vars(module).items() if callable(v) and not k.startswith("_")}
    for path in NOTEBOOKS:
        for name in _exercise_names(course.read_notebook(path)) & defined:
            assert course.KIT_ANSWERS.get(name), f"{path.name}: {name} is the package's; register it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_grade_cells_never_assert_without_a_message(path: Path):
    for k, cell in enumerate(course.read_notebook(path).cells):
        if course.cell_role(cell) != "grade":
            continue
        bare = [n.lineno for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Assert) and n.msg is None]
        assert not bare, f"{path.name} cell {k}: bare assert at line(s) {bare}: say what is wrong"


def test_checks_never_assert_without_a_message():
    for path in sorted((course.repo_root() / "taco_lite" / "course").glob("*.py")):
        bare = [n.lineno for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Assert) and n.msg is None]
        assert not bare, f"{path.name}: bare assert at line(s) {bare}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_submission_that_calls_the_kit_scores_zero(autograded):
    """Real nbgrader autograde: each exercise solved by calling the package earns nothing, and
    each of its grade cells says why (course/integrity.py)."""
    kit = {a: r for (s, a), r in autograded.items() if s == "calls_kit"}
    assert {"02_sentence_nce", "03_token_nce", "04_fusion_cascade", "06_downstream"} <= set(kit)
    for name, res in sorted(kit.items()):
        sol = autograded[("solution", name)]
        assert res.auto_max == sol.auto_max > 0
        assert res.auto_score == 0, f"{name}: calling the kit earned {res.cells}"
        for k, cell in enumerate(res.notebook.cells):
            if course.cell_role(cell) != "grade":
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert errors and "kit's own" in errors[0]["evalue"], (
                f"{name} cell {k}: {errors[0]['ename'] + ': ' + errors[0]['evalue'][:200] if errors else 'passed'}"
            )


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_autograde_breaks_points_down_per_cell_and_feedback_is_generated(autograded, course_dir):
    sol = autograded[("solution", "03_token_nce")]
    assert [g for g, _, _ in sol.cells][:3] == [
        "grade03_token_video_scores", "grade03_token_video_scores_edge", "grade03_token_video_scores_grad"
    ]  # fmt: skip
    assert sum(m for _, _, m in sol.cells) == sol.auto_max and "grade03_token_nce" in sol.breakdown()
    written = course.feedback(course_dir, ["02_sentence_nce"], student="calls_kit")
    assert written and all(p.suffix == ".html" for p in written)
    html = written[0].read_text()
    assert "kit&#39;s own" in html or "kit's own" in html
