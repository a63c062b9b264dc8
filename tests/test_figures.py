"""Every figure a notebook promises appears in its executed copy, exactly once (issue 19).

A code cell that draws carries the cell tag "figure" and ends its figure with `viz.show(fig)`,
the one path by which a kit figure reaches a cell's output (`taco_lite.viz.figures.show`).
The kit's figure functions return bare figures that pyplot does not manage, so a figure that
is assigned and never shown shows nothing, and none is drawn twice by the inline backend.
The executed notebooks come from the session fixture `autograded` (no extra execution pass).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taco_lite import course

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from conftest import AUTOGRADE_TIMEOUT
except ImportError:  # tests/ is a package
    from tests.conftest import AUTOGRADE_TIMEOUT

NOTEBOOKS = course.lesson_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
@pytest.fixture(scope="module")
def world():
    from taco_lite.world import WorldConfig, generate_world

    return generate_world(WorldConfig(seed=3, num_clips=12))


DRAWS = re.compile(r"\b(plot_\w+|plt\.subplots|plt\.figure)\(")


def figure_cells(nb) -> list[int]:
    return [k for k, c in enumerate(nb.cells) if "figure" in c.metadata.get("tags", [])]


def images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def missing_figures(nb) -> list[str]:
    """Each tagged cell of an executed notebook that shows no figure, or more than one."""
    problems = []
    for k in figure_cells(nb):
        n = images(nb.cells[k])
        if n != 1:
            problems.append(f"cell {k} shows {n} figures (expected 1)")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_drawing_cell_is_tagged_and_shows(path: Path):
    """Statically: a cell that calls a plot function is tagged "figure" and calls show()."""
    nb = course.read_notebook(path)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tagged = "figure" in cell.metadata.get("tags", [])
        draws = bool(DRAWS.search(cell.source))
        assert tagged == draws, (
            f"{path.name} cell {k}: " + ("draws a figure but is not tagged 'figure'" if draws
                                         else "is tagged 'figure' but draws none")
        )  # fmt: skip
        if draws:
            assert "show(" in cell.source, (
                f"{path.name} cell {k} draws a figure but never shows it: end with viz.show(fig)"
            )


def test_figure_check_fails_on_a_figure_that_shows_nothing():
    """The check itself: a tagged cell with no image, or with two, is reported."""
    import nbformat

    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}, "metadata": {}}
    cells = [nbformat.v4.new_code_cell("fig = viz.plot_clip(world, 0)") for _ in range(3)]
    for c in cells:
        c.metadata["tags"] = ["figure"]
    cells[1].outputs = [nbformat.from_dict(png)]
    cells[2].outputs = [nbformat.from_dict(png), nbformat.from_dict(png)]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert missing_figures(nb) == [
        "cell 0 shows 0 figures (expected 1)",
        "cell 2 shows 2 figures (expected 1)",
    ]


def test_kit_figures_are_not_managed_by_pyplot(world):
    """A bare figure never reaches a cell by itself: only viz.show draws it, and only once."""
    import matplotlib.pyplot as plt

    from taco_lite import viz
    from taco_lite.viz import lessons

    before = set(plt.get_fignums())
    figs = [viz.plot_clip(world, 0), lessons.plot_split_sizes({"train": 3, "test": 1}),
            lessons.plot_temperature([0.1, 1.0], {"L1": [1.0, 2.0]})]  # fmt: skip
    assert set(plt.get_fignums()) == before, "a kit figure is managed by pyplot"
    for fig in figs:
        assert viz.show(fig) is None  # outside IPython: closes, returns None


@pytest.mark.slow
@pytest.mark.timeout(AUTOGRADE_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_figure_cells_show_one_figure(path: Path, autograded):
    """In the executed instructor version, every tagged cell shows exactly one image/png."""
    nb = autograded[("solution", path.stem)].notebook
    assert len(figure_cells(nb)) == len(figure_cells(course.read_notebook(path))), (
        f"{path.name}: the executed copy lost the 'figure' cell tags"
    )
    problems = missing_figures(nb)
    assert not problems, f"{path.name}: " + "; ".join(problems)
