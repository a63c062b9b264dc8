"""What the notebooks say the kit measured agrees with the files its commands wrote (issue 19).

- Every number in a model answer or a Summary of notebooks 00-07 is either small structural
  (an equation, a count up to 12, a notebook number) or appears in a result file:
  docs/results.md, docs/downstream.md, data/checkpoints/README.md, docs/method.md (the paper's
  numbers). A number typed from memory, or from a table that has since changed, fails here.
- The claims the summaries make in words are checked against docs/results.md's frozen-regime
  table (`<!-- sweep-test-endless -->`): no row's R@1 interval lies above L1, L3 alone is
  below it, and every L2 row grounds nouns and verbs better than L1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taco_lite import course

REPO = Path(__file__).resolve().parents[1]
RESULT_FILES = ("docs/results.md", "docs/downstream.md", "data/checkpoints/README.md", "docs/method.md")
NOTEBOOKS = course.lesson_notebooks()
NUMBER = re.compile(r"(?<![\w.§/-])(\d+(?:[.,]\d+)*)(?![\w/])")


def result_numbers() -> set[str]:
    found: set[str] = set()
    for f in RESULT_FILES:
        found |= set(NUMBER.findall((REPO / f).read_text(encoding="utf-8")))
    return found


def story_cells(nb) -> list[tuple[int, str]]:
    """(index, text) of the model answers and the Summary sections (Further reading dropped)."""
    out = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        if course.cell_role(cell) == "answer" or "## Summary" in cell.source:
            text = cell.source.split("## Further reading")[0]
            text = re.sub(r"`[^`]*`", "", text)  # code: names, commands, flags
            text = re.sub(r"\$[^$]*\$", "", text)  # maths
            out.append((k, text))
    return out


def untraced_numbers(nb, known: set[str]) -> list[str]:
    problems = []
    for k, text in story_cells(nb):
        for num in NUMBER.findall(text):
            if re.fullmatch(r"\d+", num) and (int(num) <= 12 or re.fullmatch(r"0\d", num)):
                continue  # Eq. 4, 2 points, notebook 05
            if num not in known:
                problems.append(f"cell {k}: {num}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_number_in_answers_and_summaries_is_in_a_result_file(path: Path):
    problems = untraced_numbers(course.read_notebook(path), result_numbers())
    assert not problems, (
        f"{path.name}: numbers in model answers / summaries that no result file holds "
        f"({', '.join(RESULT_FILES)}); print them from the file in a cell instead: {problems}"
    )


def test_the_number_check_fails_on_a_typed_number():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "## Summary\n\nTACo lands on gold far more often (0.878 vs 0.123), see Eq. 4.")])  # fmt: skip
    assert untraced_numbers(nb, result_numbers()) == ["cell 0: 0.878", "cell 0: 0.123"]


def frozen_table() -> dict[str, dict[str, str]]:
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    body = re.search(r"<!-- sweep-test-endless:start -->(.*?)<!-- sweep-test-endless:end -->",
                     text, re.S).group(1)  # fmt: skip
    lines = [ln for ln in body.split("\n\n")[2].splitlines() if ln.startswith("| ") and "---" not in ln]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    head = rows[0]
    return {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}


def _mean(cell: str) -> float:
    return float(cell.split(" ")[0])


def _interval(cell: str) -> tuple[float, float]:
    lo, hi = cell.split("[")[1].rstrip("]").split(",")
    return float(lo), float(hi)


def test_the_summaries_claims_hold_in_the_frozen_regime_table():
    summary = next(c.source for c in course.read_notebook(REPO / "notebooks" / "05_training.ipynb").cells
                   if "## Summary" in c.source)  # fmt: skip
    assert "no row's interval lies above L1" in summary and "L3 alone is below it" in summary
    table = frozen_table()
    L1 = table["L1"]
    for name, row in table.items():
        if name == "L1":
            continue
        lo, _ = _interval(row["R@1 - L1, t2v"])
        assert lo <= 0, f"{name} beats L1 (t2v interval above 0): notebook 05's summary is wrong"
        if "L2" in name:
            for col in ("grounding NOUN", "grounding VERB"):
                assert _mean(row[col]) > _mean(L1[col]), f"{name}: {col} not above L1"
    assert _interval(table["L3"]["R@1 - L1, t2v"])[1] < 0, "L3 alone is no longer below L1"
