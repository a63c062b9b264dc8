"""The retrieval browser's callback: a typed query against every cached test clip."""

from __future__ import annotations

import html
import time

import torch

from taco_lite import viz
from taco_lite.evaluate import alignment
from taco_lite.text.pos import CaptionError
from taco_lite.widgets.render import RenderResult, model_and_embeddings, one_thread
from taco_lite.widgets.state import ExplorerState, encode_caption

__all__ = ["EXAMPLE_QUERY", "RERANK_K", "on_query_change"]

RERANK_K = 16  # candidates re-scored by fusion (cascade inference, docs/method.md §5)
EXAMPLE_QUERY = "the pink ball spun"


@one_thread
def on_query_change(state: ExplorerState, text: str, model: str, k: int = 5) -> RenderResult:
    """Retrieval browser: the top-k test clips for a typed query, with their scores.

    Ranking as at test time (docs/method.md §5): s1 / tau1 + lambda_t * s2 / tau2 over every test
    clip (from the cached embeddings), then the top RERANK_K re-scored with + s3 for models
    trained with L3 (cascade inference). Empty and all-[UNK] queries give a message.
    """
    from taco_lite.cascade import weighted_token_scores
    from taco_lite.evaluate.inference import coarse_scores
    from taco_lite.losses import token_video_scores

    t0 = time.perf_counter()
    text = text if isinstance(text, str) else ""
    if not text.strip():
        return RenderResult.problem(f"type a query, e.g. {EXAMPLE_QUERY!r}")
    em, emb = model_and_embeddings(state, model)
    try:
        enc = encode_caption(em, text, state.idf)
    except CaptionError as e:
        return RenderResult.problem(str(e))
    read_as = " ".join(enc.words[1:-1])
    if enc.all_unknown:
        return RenderResult.problem(
            f"the model reads {text[:80]!r} as {read_as[:80]!r}: it knows none of these words. "
            f"Try words from the training captions, e.g. {EXAMPLE_QUERY!r}",
            words=enc.words,
        )
    s1 = emb.video_global @ enc.text_global  # (N,)
    tok = token_video_scores(enc.text_tokens[None], emb.video_tokens, emb.video_mask)  # (1, n, N)
    s2 = weighted_token_scores(tok, enc.token_weights[None])[0]  # (N,)
    cfg = em.model_cfg
    coarse = coarse_scores(s1[None], s2[None], state.lambda_t, cfg.tau1, cfg.tau2)[0]  # (N,)
    total = coarse.clone()
    s3 = torch.zeros_like(coarse)  # (N,) filled for the re-scored candidates only
    if em.has_fusion:
        cand, _ = alignment.top_k(coarse, RERANK_K)  # (K,)
        K = cand.numel()
        n = enc.text_tokens.shape[0]
        logits = em.model.fuse(
            enc.text_tokens[None].expand(K, n, -1),
            torch.ones(K, n, dtype=torch.bool),
            emb.video_tokens[cand],
            emb.video_mask[cand],
        ).float()  # (K,)
        s3[cand] = logits
        # re-scored candidates rank above all others (as cascade.cascade_rerank does)
        total = torch.full_like(coarse, float("-inf"))
        total[cand] = coarse[cand] + logits
    order, best = alignment.top_k(total, k)
    results = []
    for r, (j, score) in enumerate(zip(order.tolist(), best.tolist(), strict=True)):
        seg_id = state.seg_ids[j]
        detail = f"s1 {float(s1[j]):.2f}  s2 {float(s2[j]):.2f}"
        if em.has_fusion:
            detail += f"  s3 {float(s3[j]):.2f}"
        results.append({
            "rank": r + 1, "frames": state.world.segment_frames(seg_id), "score": score,
            "caption": state.world.segments[seg_id].caption, "detail": detail, "seg_id": seg_id,
        })  # fmt: skip
    png = viz.retrieval_results_png(text[:120], results)
    seconds = time.perf_counter() - t0
    parts = [f"{model} reads the query as: <code>{html.escape(read_as[:300])}</code>"]
    parts += [html.escape(note) for note in enc.notes]
    parts.append(f"ranked {len(state.seg_ids)} test clips in {1000 * seconds:.0f} ms")
    return RenderResult(
        png,
        "<br>".join(parts),
        {
            "seg_ids": [r["seg_id"] for r in results], "scores": [r["score"] for r in results],
            "words": enc.words, "unknown": enc.unknown, "seconds": seconds,
        },
    )  # fmt: skip
