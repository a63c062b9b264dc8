"""The explorers' callbacks as plain functions: (state, control values) -> RenderResult.

This module holds the alignment explorer's callback and what all callbacks share;
`widgets_cascade` and `widgets_retrieval` hold the other two.

No ipywidgets here, so pytest can call every callback directly and a notebook can too.
`widgets.py` only wires controls to these functions. A bad input (an empty query, a caption
of unknown words, a POS filter that keeps nothing) gives a RenderResult with a message and
no figure, never a traceback.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from taco_lite import viz
from taco_lite.evaluate import alignment
from taco_lite.text.pos import CaptionError
from taco_lite.widgets.state import EncodedCaption, ExplorerState, encode_caption

__all__ = ["POS_FILTERS", "RenderResult", "one_thread", "model_and_embeddings", "render_alignment"]

# POS filter of the alignment explorer -> UPOS tags kept (None = every word)
POS_FILTERS: dict[str, frozenset[str] | None] = {
    "all words": None,
    "NOUN + VERB": frozenset({"NOUN", "VERB"}),
    "NOUN": frozenset({"NOUN"}),
    "VERB": frozenset({"VERB"}),
    "ADJ": frozenset({"ADJ"}),
    "DET + ADP": frozenset({"DET", "ADP"}),
}


@dataclass
class RenderResult:
    """What one callback produced: a figure (PNG bytes) and/or a message, plus the numbers."""

    png: bytes | None  # None when there is only a message
    message: str  # HTML shown above the figure ('' when there is nothing to say)
    data: dict[str, Any] = field(default_factory=dict)  # numbers behind the figure
    ok: bool = True  # False: the input could not be shown, `message` says why

    @classmethod
    def problem(cls, message: str, **data: Any) -> RenderResult:
        return cls(None, f"<b>{html.escape(message)}</b>", dict(data), ok=False)


def one_thread(fn: Callable[..., RenderResult]) -> Callable[..., RenderResult]:
    """Run a callback on one torch thread (restored afterwards), without gradients.

    Why: one query's tensors are tiny (one caption, a few hundred clips), so extra threads
    only add synchronisation, and on a shared 2-core CPU their spin-waits made a query 5x
    slower (about 180 ms instead of 30 ms, measured with the fast preset's model).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


def model_and_embeddings(state: ExplorerState, name: str):
    if name not in state.models:
        raise ValueError(f"model {name!r} is not loaded; the models are {list(state.models)}")
    return state.models[name], state.embedded[name]


def _softmax(state: ExplorerState, scores: torch.Tensor, tau: float) -> tuple[torch.Tensor, str]:
    """The softmax view, with the student's function if set (reference if not implemented)."""
    fn = state.softmax_fn
    if fn is not None:
        try:
            out = torch.as_tensor(fn(scores, tau))
            if out.shape == scores.shape and bool(torch.isfinite(out).all()):
                return out.float(), ""
            return alignment.softmax_over_frames(scores, tau), (
                "your softmax_over_frames returned a wrong shape or NaN/inf: showing the "
                "reference instead"
            )
        except NotImplementedError:
            return alignment.softmax_over_frames(scores, tau), (
                "softmax_over_frames is not implemented yet: showing the reference"
            )
    return alignment.softmax_over_frames(scores, tau), ""


def _row_label(enc: EncodedCaption, p: int) -> str:
    word = enc.words[p]
    if word == "[UNK]":
        word = f"{enc.typed[p]} [UNK]"
    return f"{word}  {enc.tags[p]}"


@one_thread
def render_alignment(
    state: ExplorerState,
    row: int,
    model: str,
    view: str = "dot",
    pos_filter: str = "all words",
    caption: str | None = None,
) -> RenderResult:
    """Alignment explorer: one caption's tokens against the frames of test segment `row`.

    caption None/blank: the segment's own caption, with the world's gold frames and the
    grounding accuracy (is each word's best frame a gold frame?). A typed caption is scored
    against the same frames, without gold (the world has none for it).
    """
    if not 0 <= row < len(state.seg_ids):
        return RenderResult.problem(
            f"segment {row} does not exist: pick 0..{len(state.seg_ids) - 1}"
        )
    if view not in alignment.VIEWS:
        return RenderResult.problem(f"view {view!r} unknown: use one of {alignment.VIEWS}")
    if pos_filter not in POS_FILTERS:
        return RenderResult.problem(
            f"POS filter {pos_filter!r} unknown: use one of {list(POS_FILTERS)}"
        )
    em, emb = model_and_embeddings(state, model)
    seg_id = state.seg_ids[row]
    seg = state.world.segments[seg_id]
    own = caption is None or not caption.strip() or caption.strip() == seg.caption
    text = seg.caption if own else caption.strip()
    try:
        enc = encode_caption(em, text, state.idf)
    except CaptionError as e:
        return RenderResult.problem(str(e))
    notes = list(enc.notes)

    vmask = emb.video_mask[row]  # (m_pad,)
    video_tokens = emb.video_tokens[row][vmask]  # (m, d)
    frames = state.world.segment_frames(seg_id)  # (m, H, W, 3) uint8
    scores = alignment.token_frame_scores(enc.text_tokens, video_tokens)  # (n, m)
    best = alignment.best_frame_per_token(scores)  # (n,)
    tau = float(em.model_cfg.tau2) if em.model_cfg.normalize else 1.0
    if view == "softmax":
        shown, note = _softmax(state, scores, tau)
        notes += [note] if note else []
        value_label = f"softmax over frames (tau2 = {tau:g})"
    else:
        shown, value_label = scores, "token . frame (dot product)"

    n, m = scores.shape
    keep_tags = POS_FILTERS[pos_filter]
    rows = [
        p for p in range(1, n - 1)  # words only, not [CLS]/[SEP]
        if keep_tags is None or enc.tags[p] in keep_tags
    ]  # fmt: skip
    if not rows:
        return RenderResult.problem(
            f"no {pos_filter} word in {text!r}: choose another POS filter", seg_id=seg_id
        )
    gold = None
    grounding = None
    if own:
        gold_full = emb.gold_frames[row][:n, :m]  # (n, m) bool, word w at token w + 1
        shown_mask = torch.zeros(n, dtype=torch.bool)
        shown_mask[rows] = True
        grounding = alignment.clip_grounding(scores, gold_full, shown_mask)
        gold = gold_full[rows].numpy()
        status = str(grounding)
    else:
        status = "typed caption: no gold frames in the world for it, so no grounding accuracy"
    title = f"{model} | test segment {row} (world segment {seg_id}) | {text!r}\n{status}"
    idx = torch.tensor(rows)
    fig = viz.plot_token_frame_alignment(
        frames,
        shown[idx].numpy(),
        [_row_label(enc, p) for p in rows],
        [bool(enc.interest[p]) for p in rows],
        best[idx].tolist(),
        gold=gold,
        title=title,
        value_label=value_label,
    )
    message = html.escape(status)
    if notes:
        message += "<br>" + "<br>".join(html.escape(s) for s in notes)
    return RenderResult(
        viz.figure_png(fig),
        message,
        {
            "seg_id": seg_id, "caption": text, "own_caption": own, "view": view,
            "tokens": [enc.words[p] for p in rows], "tags": [enc.tags[p] for p in rows],
            "best_frames": best[idx].tolist(), "matrix": shown[idx].numpy(),
            "accuracy": grounding.accuracy if grounding else None,
            "correct": grounding.correct if grounding else None,
            "scored": grounding.scored if grounding else None,
        },
    )  # fmt: skip
