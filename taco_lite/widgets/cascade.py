"""The cascade sampler explorer's callback (paper Sec. 3.3): hard vs random negatives."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import torch

from taco_lite import viz
from taco_lite.evaluate import alignment
from taco_lite.widgets.render import RenderResult, model_and_embeddings, one_thread
from taco_lite.widgets.state import ExplorerState

__all__ = ["cascade_rows", "render_cascade"]


def cascade_rows(state: ExplorerState, seed: int | None = None) -> list[int]:
    """The B test segments (rows of the embeddings) in the cascade sampler's batch, seeded."""
    seed = state.cascade_seed if seed is None else seed
    N = len(state.seg_ids)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    return perm[: state.cascade_batch].tolist()


@one_thread
def render_cascade(
    state: ExplorerState, anchor: int, k_neg: int, model: str, seed: int | None = None
) -> RenderResult:
    """Cascade sampler explorer: text `anchor` of the batch, its k_neg hard vs random negatives.

    Hard negatives are the videos with the highest a(i, j) = s1 + sum over tokens of interest
    of s(i, p, j) (paper Sec. 3.3); the fusion layers only ever see these. s3 is the fusion
    score of each (text, candidate) pair, shown only for models trained with L3.
    """
    from taco_lite.losses import token_video_scores

    em, emb = model_and_embeddings(state, model)
    seed = state.cascade_seed if seed is None else seed
    rows = cascade_rows(state, seed)
    B = len(rows)
    if isinstance(anchor, bool) or not isinstance(anchor, int) or not 0 <= anchor < B:
        return RenderResult.problem(f"text {anchor} is not in the batch: pick 0..{B - 1}")
    if not 1 <= k_neg <= B - 1:
        return RenderResult.problem(
            f"K' = {k_neg} but a batch of {B} pairs has {B - 1} negatives per text: "
            f"choose 1 <= K' <= {B - 1}"
        )
    sub = emb.subset(torch.tensor(rows))
    sim_global = sub.text_global @ sub.video_global.T  # (B, B) s1
    tok = token_video_scores(sub.text_tokens, sub.video_tokens, sub.video_mask)  # (B, n, B)
    cands = alignment.cascade_candidates(sim_global, tok, sub.token_interest, anchor, k_neg, seed)
    cols = [anchor, *cands.hard, *cands.random]
    s3 = [None] * len(cols)
    if em.has_fusion:
        ti = torch.full((len(cols),), anchor)
        vi = torch.tensor(cols)
        logits = em.model.fuse(
            sub.text_tokens[ti], sub.text_mask[ti], sub.video_tokens[vi], sub.video_mask[vi]
        )  # (1 + 2k,)
        s3 = logits.float().tolist()

    def cand(pos: int, j: int) -> dict[str, Any]:
        seg_id = state.seg_ids[rows[j]]
        return {
            "frames": state.world.segment_frames(seg_id),
            "caption": state.world.segments[seg_id].caption,
            "a": float(cands.pair_scores[j]), "s3": s3[pos], "positive": j == anchor,
            "seg_id": seg_id,
        }  # fmt: skip

    positive = cand(0, anchor)
    hard = [cand(1 + c, j) for c, j in enumerate(cands.hard)]
    rand = [cand(1 + k_neg + c, j) for c, j in enumerate(cands.random)]
    caption = positive["caption"]
    fig = viz.plot_cascade_candidates(
        caption,
        [(f"hard (top-{k_neg} by a)", [positive, *hard]), ("random", [positive, *rand])],
        title=f"{model} | batch of B={B} test segments (seed {seed}) | text {anchor}: {caption!r}",
    )

    def mean(xs: list[float]) -> float:
        return float(np.mean(xs)) if xs else 0.0

    message = (
        f"mean a(i, j): hard {mean([c['a'] for c in hard]):.2f} vs random "
        f"{mean([c['a'] for c in rand]):.2f}"
    )
    if em.has_fusion:
        message += (
            f"; mean s3: positive {positive['s3']:.2f}, hard {mean([c['s3'] for c in hard]):.2f}, "
            f"random {mean([c['s3'] for c in rand]):.2f}"
        )
    else:
        message += f"; s3 not shown: {model} was trained without L3 (its fusion head is untrained)"
    return RenderResult(
        viz.figure_png(fig),
        html.escape(message),
        {
            "rows": rows, "anchor_seg_id": positive["seg_id"],
            "hard": [c["seg_id"] for c in hard], "random": [c["seg_id"] for c in rand],
            "a_hard": [c["a"] for c in hard], "a_random": [c["a"] for c in rand],
            "s3_positive": positive["s3"], "s3_hard": [c["s3"] for c in hard],
            "s3_random": [c["s3"] for c in rand],
        },
    )  # fmt: skip
