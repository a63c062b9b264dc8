"""notebooks/README.md and docs/instructors.md say what the notebooks hold: points, questions
and run times, checked against the notebooks' own nbgrader metadata and notebooks/run_times.json
(written by `python -m taco_lite.course execute --times`)."""

from __future__ import annotations

import re

from taco_lite import course
from taco_lite.course import syllabus

REPO = course.repo_root()
NOTEBOOKS = course.lesson_notebooks()


def _readme_rows() -> dict[str, list[str]]:
    text = (REPO / "notebooks" / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(\d\d_\w+)`\s*\|", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in line.strip().strip("|").split("|")]
    return rows


def test_run_times_cover_every_notebook():
    times = syllabus.run_times()
    assert times, f"no {course.runner.TIMES_FILE}: run `python -m taco_lite.course execute --fast --times ...`"
    missing = [p.name for p in NOTEBOOKS if p.name not in times.get("fast", {})]
    assert not missing, f"no fast-mode time for {missing}: rerun `execute --fast --times`"
    assert "fast" in times.get("how", {}), "run_times.json must say how it was measured"


def test_notebooks_readme_matches_the_metadata():
    rows = _readme_rows()
    header = next(
        line for line in (REPO / "notebooks" / "README.md").read_text().splitlines()
        if line.startswith("| notebook |")
    )  # fmt: skip
    cols = [c.strip() for c in header.strip().strip("|").split("|")]
    auto, questions = cols.index("auto points"), cols.index("inline questions")
    fast, full = cols.index("fast mode"), cols.index("full mode")
    times = syllabus.run_times()
    assert set(rows) == {p.stem for p in NOTEBOOKS}, "one README row per notebook"
    for path in NOTEBOOKS:
        s, row = syllabus.summary(path), rows[path.stem]
        assert row[auto] == f"{s.auto_points:g}", f"{path.stem}: README says {row[auto]} auto points, the notebook has {s.auto_points:g}"
        want_q = f"{s.questions}" if s.manual_points == s.questions else f"{s.questions} ({s.manual_points:g} points)"
        assert row[questions] == want_q, f"{path.stem}: README says {row[questions]!r} questions, the notebook has {want_q!r}"
        for col, mode in ((fast, "fast"), (full, "full")):
            assert row[col] == syllabus._seconds(times, mode, path.name), (
                f"{path.stem}: README {mode} mode says {row[col]!r}, run_times.json "
                f"{syllabus._seconds(times, mode, path.name)!r}"
            )


def test_instructors_guide_holds_the_current_table_and_a_rubric_per_question():
    text = (REPO / "docs" / "instructors.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- points:start -->\n(.*?)\n?<!-- points:end -->", text, re.S)
    assert block, "docs/instructors.md lost its <!-- points:start/end --> markers"
    assert block.group(1).strip() == syllabus.points_table().strip(), (
        "docs/instructors.md's table is stale: paste the output of `python -m taco_lite.course points`"
    )
    for path in NOTEBOOKS:
        nb = course.read_notebook(path)
        for cell in nb.cells:
            if course.cell_role(cell) == "answer":
                meta = cell.metadata["nbgrader"]
                head = f"### `{meta['grade_id']}` ({meta['points']:g} point{'s' if meta['points'] != 1 else ''})"
                assert head in text, f"docs/instructors.md has no rubric {head!r}"


def test_every_question_has_a_model_answer():
    for path in NOTEBOOKS:
        for k, cell in enumerate(course.read_notebook(path).cells):
            if course.cell_role(cell) == "answer":
                assert "BEGIN SOLUTION" in cell.source and len(cell.source) > 200, (
                    f"{path.name} cell {k} ({cell.metadata['nbgrader']['grade_id']}): no model answer"
                )
