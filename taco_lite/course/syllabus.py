"""What each notebook is worth and how long it runs, read from the notebooks themselves.

Why: `notebooks/README.md` and `docs/instructors.md` state points, questions and run times; a
test compares them with `summary()` and with `notebooks/run_times.json` (written by
`python -m taco_lite.course execute --times`), so the documentation cannot drift.
`python -m taco_lite.course points` prints the table that docs/instructors.md holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taco_lite.course.notebooks import cell_role, lesson_notebooks, read_notebook, repo_root
from taco_lite.course.runner import TIMES_FILE

__all__ = ["NotebookSummary", "summary", "run_times", "points_table", "MINUTES"]

# The time plan's rule (an estimate, not a measurement with students): minutes per item
MINUTES = {"exercise": 20, "question": 15, "notebook": 20}


@dataclass
class NotebookSummary:
    """The nbgrader facts of one lesson notebook."""

    name: str  # the file's stem, e.g. "03_token_nce"
    exercises: int  # exercise (solution) code cells
    auto_points: float  # points of the autograded (grade) cells
    grade_cells: int
    questions: int  # manually graded answer cells
    manual_points: float

    @property
    def student_hours(self) -> float:
        """The time plan's estimate: MINUTES per exercise, per question and per notebook."""
        m = MINUTES
        return (m["exercise"] * self.exercises + m["question"] * self.questions + m["notebook"]) / 60


def summary(path: str | os.PathLike) -> NotebookSummary:
    nb = read_notebook(path)
    cells = [(cell_role(c), c.metadata.get("nbgrader", {})) for c in nb.cells]
    grades = [meta for role, meta in cells if role == "grade"]
    answers = [meta for role, meta in cells if role == "answer"]
    return NotebookSummary(
        name=Path(path).stem,
        exercises=sum(role == "exercise" for role, _ in cells),
        auto_points=sum(float(m.get("points", 0)) for m in grades),
        grade_cells=len(grades),
        questions=len(answers),
        manual_points=sum(float(m.get("points", 0)) for m in answers),
    )


def run_times(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """notebooks/run_times.json: {"fast": {file: s}, "full": {file: s}, "how": {mode: text}}."""
    p = Path(path) if path is not None else repo_root() / TIMES_FILE
    return json.loads(p.read_text()) if p.is_file() else {}


def _seconds(times: dict[str, Any], mode: str, file: str) -> str:
    s = times.get(mode, {}).get(file)
    return "not measured" if s is None else f"{s:.0f} s"


def points_table(folder: str | os.PathLike | None = None) -> str:
    """The markdown table of docs/instructors.md: points, questions, run times, student-hours."""
    times = run_times()
    rows = [
        "| notebook | exercises | auto points (grade cells) | questions (manual points) "
        "| fast mode | full mode | student-hours (estimate) |",
        "|---|---|---|---|---|---|---|",
    ]
    total = [0, 0.0, 0, 0, 0.0, 0.0]
    for path in lesson_notebooks(folder):
        s = summary(path)
        rows.append(
            f"| `{s.name}` | {s.exercises} | {s.auto_points:g} ({s.grade_cells}) "
            f"| {s.questions} ({s.manual_points:g}) | {_seconds(times, 'fast', path.name)} "
            f"| {_seconds(times, 'full', path.name)} | {s.student_hours:.1f} |"
        )
        for k, v in enumerate((s.exercises, s.auto_points, s.grade_cells, s.questions,
                               s.manual_points, s.student_hours)):  # fmt: skip
            total[k] += v
    rows.append(
        f"| all | {total[0]} | {total[1]:g} ({total[2]}) | {total[3]} ({total[4]:g}) | | "
        f"| {total[5]:.1f} |"
    )
    return "\n".join(rows)
