"""Three ipywidgets explorers of word-frame alignment (notebook 07).

- `alignment_explorer`: a test clip's frames and the token x frame heatmap of its caption (or
  a typed one), each word's best frame, the world's gold frames, per model and view.
- `cascade_explorer`: for one text of a batch, the K' hard negatives the cascade sampler
  picks (paper Sec. 3.3) beside K' random ones, with their fusion scores s3.
- `retrieval_browser`: type a query, see the top-5 test clips.

Every control change calls a plain function (`widgets_render`, `widgets_cascade`,
`widgets_retrieval`): (state, values) ->
RenderResult; tests drive the explorers by setting `.controls[name].value`, no browser needed.
Each explorer is an `ipywidgets.VBox` that keeps its last result in `.last`.

    from taco_lite.widgets import load_explorers
    state = load_explorers()           # models + test-split embeddings, once
    alignment_explorer(state)          # display it in a notebook cell
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from taco_lite.widgets.cascade import cascade_rows, render_cascade
from taco_lite.widgets.render import ALIGNMENT_VIEWS, POS_FILTERS, RenderResult, render_alignment
from taco_lite.widgets.retrieval import EXAMPLE_QUERY, on_query_change
from taco_lite.widgets.state import ExplorerState, load_explorer_models

__all__ = [
    "Explorer",
    "alignment_explorer",
    "cascade_explorer",
    "retrieval_browser",
    "load_explorers",
    "RenderResult",
    "on_query_change",
    "render_alignment",
    "render_cascade",
]


def load_explorers(
    paths: dict[str, str] | None = None,
    fast: bool = False,
    train_if_missing: bool = True,
) -> ExplorerState:
    """Load the models (`load_explorer_models`) and embed the test split once.

    fast (TACO_FAST=1): only sizes shrink, the first 120 test segments and a batch of 12 for
    the cascade sampler; the models are the same.
    """
    models = load_explorer_models(paths, train_if_missing=train_if_missing)
    return ExplorerState.build(
        models, max_segments=120 if fast else None, cascade_batch=12 if fast else 16
    )


class Explorer(widgets.VBox):
    """Controls, a message line and the figure; `refresh()` re-renders from the controls."""

    def __init__(
        self,
        name: str,
        controls: dict[str, widgets.Widget],
        render: Callable[..., RenderResult],
        layout_rows: list[list[str]],
    ) -> None:
        self.name = name
        self.controls = controls
        self._render = render
        self.message = widgets.HTML(value="")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.image.add_class("taco-figure")
        self.message.add_class("taco-message")
        self.last: RenderResult | None = None
        rows = [widgets.HBox([controls[c] for c in row]) for row in layout_rows]
        super().__init__([*rows, self.message, self.image])
        self.add_class(f"taco-{name}")
        for w in controls.values():
            w.observe(self._on_change, names="value")
        self.refresh()

    def values(self) -> dict[str, Any]:
        return {k: w.value for k, w in self.controls.items()}

    def _on_change(self, _change: dict) -> None:
        self.refresh()

    def refresh(self) -> RenderResult:
        try:
            result = self._render(**self.values())
        except Exception as err:  # a learner should see a sentence, never a traceback
            result = RenderResult.problem(f"{type(err).__name__}: {err}")
        self.last = result
        self.message.value = result.message
        if result.png is not None:
            self.image.value = result.png
            self.image.layout.display = None
        else:
            self.image.layout.display = "none"
        return result


def _model_dropdown(state: ExplorerState, default: str | None = None) -> widgets.Dropdown:
    names = list(state.models)
    value = default if default in names else ("TACo" if "TACo" in names else names[0])
    return widgets.Dropdown(options=names, value=value, description="model")


def alignment_explorer(
    state: ExplorerState, row: int = 0, model: str | None = None, view: str = "dot"
) -> Explorer:
    """Pick a test segment (or type a caption) and see which frames each word grabs.

    Views (`render.ALIGNMENT_VIEWS`): token . frame similarity, its softmax over frames, the
    two column-bias-free views, and f_m's word -> frame attention (layer and head menus, -1 =
    mean) or its rollout across layers.
    """
    layers = [int(em.model_cfg.fusion_layers) for em in state.models.values()] or [0]
    heads = [int(em.model_cfg.heads) for em in state.models.values()] or [1]
    segs = [
        (f"{r}: {state.caption_of(r)}", r) for r in range(len(state.seg_ids))
    ]  # fmt: skip
    controls: dict[str, widgets.Widget] = {
        "row": widgets.Dropdown(
            options=segs, value=row, description="clip", layout=widgets.Layout(width="420px")
        ),  # fmt: skip
        "model": _model_dropdown(state, model),
        "view": widgets.ToggleButtons(
            options=[(_VIEW_BUTTONS[v], v) for v in ALIGNMENT_VIEWS],
            value=view,
            description="view",
            tooltips=[ALIGNMENT_VIEWS[v] for v in ALIGNMENT_VIEWS],
            style={"button_width": "175px"},
        ),
        "layer": _indexed_dropdown("layer", max(layers), "taco-layer"),
        "head": _indexed_dropdown("head", max(heads), "taco-head"),
        "pos_filter": widgets.Dropdown(
            options=list(POS_FILTERS), value="all words", description="POS"
        ),  # fmt: skip
        "caption": widgets.Text(
            value="",
            placeholder="type a caption to score against this clip (empty = its own)",
            description="caption",
            continuous_update=False,
            layout=widgets.Layout(width="520px"),
        ),
    }

    def render(
        row: int, model: str, view: str, pos_filter: str, caption: str, layer: int, head: int
    ) -> RenderResult:
        return render_alignment(state, row, model, view, pos_filter, caption, layer, head)

    return Explorer(
        "alignment-explorer", controls, render,
        [["row", "model"], ["view"], ["layer", "head", "pos_filter"], ["caption"]],
    )  # fmt: skip


_VIEW_BUTTONS = {  # short button texts; the tooltips and axis labels say the full name
    "dot": "token . frame",
    "softmax": "softmax over frames",
    "centred": "centred over words",
    "word_softmax": "softmax over words",
    "attention": "fusion attention",
    "rollout": "attention rollout",
}


def _indexed_dropdown(name: str, count: int, css: str) -> widgets.Dropdown:
    """'mean' (value -1) and 1..count (values 0..count-1): which fusion layer or head to show."""
    options = [("mean", -1)] + [(str(i + 1), i) for i in range(count)]
    dd = widgets.Dropdown(options=options, value=-1, description=f"fusion {name}",
                          layout=widgets.Layout(width="200px"))  # fmt: skip
    dd.add_class(css)
    return dd


def cascade_explorer(state: ExplorerState, anchor: int = 0, k_neg: int = 4) -> Explorer:
    """For one text of a seeded test batch: its K' hard negatives beside K' random ones."""
    rows = cascade_rows(state)
    B = len(rows)
    texts = [(f"{i}: {state.caption_of(r)}", i) for i, r in enumerate(rows)]
    controls: dict[str, widgets.Widget] = {
        "anchor": widgets.Dropdown(
            options=texts, value=anchor, description="text", layout=widgets.Layout(width="420px")
        ),  # fmt: skip
        "model": _model_dropdown(state),
        "k_neg": widgets.IntSlider(
            value=min(k_neg, B - 1),
            min=1,
            max=min(8, B - 1),
            description="K'",
            continuous_update=False,
        ),  # fmt: skip
    }

    def render(anchor: int, model: str, k_neg: int) -> RenderResult:
        return render_cascade(state, anchor, k_neg, model)

    return Explorer("cascade-explorer", controls, render, [["anchor", "model"], ["k_neg"]])


def retrieval_browser(state: ExplorerState, query: str = EXAMPLE_QUERY) -> Explorer:
    """Type a query, see the top-5 test clips with their scores (s1, s2, s3)."""
    controls: dict[str, widgets.Widget] = {
        "text": widgets.Text(
            value=query,
            placeholder=f"e.g. {EXAMPLE_QUERY}",
            description="query",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
        ),  # fmt: skip
        "model": _model_dropdown(state),
    }

    def render(text: str, model: str) -> RenderResult:
        return on_query_change(state, text, model)

    return Explorer("retrieval-browser", controls, render, [["text", "model"]])
