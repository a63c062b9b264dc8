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
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from taco_lite import viz
from taco_lite.evaluate import alignment, attention
from taco_lite.text.pos import CaptionError
from taco_lite.widgets.state import EncodedCaption, ExplorerState, encode_caption

__all__ = [
    "POS_FILTERS",
    "ALIGNMENT_VIEWS",
    "RenderResult",
    "one_thread",
    "model_and_embeddings",
    "fusion_attention",
    "render_alignment",
]

# every view of the alignment explorer -> what it computes (the button and axis labels)
ALIGNMENT_VIEWS: dict[str, str] = {**alignment.VIEW_LABELS, **attention.ATTENTION_LABELS}

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


def fusion_attention(
    em: Any, text_tokens: torch.Tensor, video_tokens: torch.Tensor
) -> torch.Tensor:
    """f_m's attention for one (caption, clip) pair: (layers, heads, n + m, n + m).

    text_tokens (n, d) and video_tokens (m, d) as `TacoModel.embed` gives them (real entries
    only), so this is exactly the fusion pass that scores the pair (s3, Eq. 2).
    """
    n, m = text_tokens.shape[0], video_tokens.shape[0]
    _, att = em.model.fuse(
        text_tokens[None], torch.ones(1, n, dtype=torch.bool),
        video_tokens[None], torch.ones(1, m, dtype=torch.bool), return_attention=True,
    )  # fmt: skip  # (layers, 1, heads, n + m, n + m)
    return att[:, 0].float()  # (layers, heads, n + m, n + m)


def _attention_view(
    em: Any, enc: EncodedCaption, video_tokens: torch.Tensor, view: str, layer: int, head: int
) -> tuple[torch.Tensor, str]:
    """The word -> frame block (n, m) of f_m's attention (one layer/head, means, or rollout)."""
    att = fusion_attention(em, enc.text_tokens, video_tokens)  # (layers, heads, L, L)
    n_layers, n_heads = att.shape[:2]
    if n_layers == 0:
        raise ValueError(f"{em.name} has fusion_layers=0: there is no fusion attention to show")
    if view == "rollout":
        full = attention.attention_rollout(att)  # (L, L)
        label = f"attention rollout over {n_layers} layers (heads averaged)"
    else:
        lay = None if layer < 0 else layer
        hd = None if head < 0 else head
        full = attention.select_heads(att, lay, hd)  # (L, L)
        where = "mean of layers" if lay is None else f"layer {lay + 1}/{n_layers}"
        who = "mean of heads" if hd is None else f"head {hd + 1}/{n_heads}"
        label = f"fusion attention word -> frame ({where}, {who})"
    n, m = enc.text_tokens.shape[0], video_tokens.shape[0]
    block = attention.word_frame_block(
        full, torch.ones(n, dtype=torch.bool), torch.ones(m, dtype=torch.bool)
    )  # (n, m), rows renormalised over the frames
    return block, label + ", renormalised over frames"


@one_thread
def render_alignment(
    state: ExplorerState,
    row: int,
    model: str,
    view: str = "dot",
    pos_filter: str = "all words",
    caption: str | None = None,
    layer: int = -1,
    head: int = -1,
) -> RenderResult:
    """Alignment explorer: one caption's tokens against the frames of test segment `row`.

    caption None/blank: the segment's own caption, with the world's gold frames and the
    grounding accuracy *of the view shown* (is each word's best frame in this matrix a gold
    frame?). A typed caption is scored against the same frames, without gold (the world has
    none for it). view: a key of `ALIGNMENT_VIEWS`; layer / head (0-based, -1 = mean) choose
    the fusion attention map of view "attention" (rollout averages the heads itself).
    """
    if isinstance(row, bool) or not isinstance(row, numbers.Integral):
        return RenderResult.problem(
            f"segment {row!r} is not a segment number: pick a whole number 0..{len(state.seg_ids) - 1}"
        )
    if not 0 <= row < len(state.seg_ids):
        return RenderResult.problem(
            f"segment {row} does not exist: pick 0..{len(state.seg_ids) - 1}"
        )
    if view not in ALIGNMENT_VIEWS:
        return RenderResult.problem(f"view {view!r} unknown: use one of {list(ALIGNMENT_VIEWS)}")
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
    n, m = scores.shape
    words = torch.zeros(n, dtype=torch.bool)
    words[1 : n - 1] = True  # the caption's words, not [CLS]/[SEP]
    tau = float(em.model_cfg.tau2) if em.model_cfg.normalize else 1.0
    if view == "softmax":
        shown, note = _softmax(state, scores, tau)
        notes += [note] if note else []
        value_label = f"softmax over frames (tau2 = {tau:g})"
    elif view in attention.ATTENTION_VIEWS:
        try:
            shown, value_label = _attention_view(em, enc, video_tokens, view, layer, head)
        except ValueError as e:
            return RenderResult.problem(str(e), seg_id=seg_id)
        if not em.has_fusion:
            notes.append(
                f"{model} was trained without L3, so its fusion layers were never trained: "
                "this attention is that of a randomly initialised f_m"
            )
    else:
        shown = alignment.apply_view(scores, view, tau, word_mask=words)
        value_label = ALIGNMENT_VIEWS[view] + (
            f" (tau2 = {tau:g})" if view == "word_softmax" else ""
        )
    best = alignment.best_frame_per_token(shown)  # (n,) the argmax of the matrix shown

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
        grounding = alignment.clip_grounding(shown, gold_full, shown_mask)
        gold = gold_full[rows].numpy()
        status = f"{ALIGNMENT_VIEWS[view]}: {grounding}"
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
            "layer": layer, "head": head, "value_label": value_label,
            "tokens": [enc.words[p] for p in rows], "tags": [enc.tags[p] for p in rows],
            "best_frames": best[idx].tolist(), "matrix": shown[idx].numpy(),
            "accuracy": grounding.accuracy if grounding else None,
            "correct": grounding.correct if grounding else None,
            "scored": grounding.scored if grounding else None,
        },
    )  # fmt: skip
