"""Test-time scores of TACo over a whole split (docs/method.md §5): s1, s2, s3 and cascade inference.

The encoders run once per split (`embed_dataset`); every score below is computed from the
cached tokens, so s1, s2, the fusion score s3 and the cascade all share one encoder pass.
Text i is the row and video j the column of every (N, N) matrix; (text i, video i) is the
ground-truth pair.

- s1(i, j) = text_global_i . video_global_j                      (sentence level, Eq. 3's score)
- s2(i, j) = sum_p w[i, p] * max_k text_tokens_i^p . video_tokens_j^k   (token level, Eq. 4's)
- s3(i, j) = fusion head on (text i, video j)                     (fusion level, Eq. 5's)

The paper ranks by s1 + lambda_t * s2 + s3 (`full_fusion_scores` for s3 costs N^2 fusion
passes). Cascade inference ranks all N candidates by the cheap s1 + lambda_t * s2 and re-scores
only each query's top-k with fusion (`cascade_scores`): N * k fusion passes per direction.

Logit scale: each loss trains its score *divided by its temperature* (s1 / tau1 in L1,
s2's token scores / tau2 in L2, s3 as is in L3). `coarse_scores` therefore adds
s1 / tau1 + lambda_t * s2 / tau2, so that s3 is added to numbers of the scale it was trained
next to. With the paper's tau1 = tau2 = 1 this is exactly s1 + lambda_t * s2 (+ s3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from taco_lite.cascade import cascade_rerank, weighted_token_scores
from taco_lite.losses import token_video_scores

__all__ = [
    "Embedded",
    "embed_dataset",
    "global_scores",
    "token_scores_s2",
    "coarse_scores",
    "fusion_pair_scores",
    "full_fusion_scores",
    "cascade_scores",
]


@dataclass
class Embedded:
    """A whole split after one encoder pass, on CPU, padded to a common n and m.

    Row r is dataset item r; text r and video r are a ground-truth pair.
    """

    text_tokens: torch.Tensor  # (N, n, d), padded rows 0 (normalised if the model normalises)
    text_mask: torch.Tensor  # (N, n) bool
    video_tokens: torch.Tensor  # (N, m, d), padded rows 0
    video_mask: torch.Tensor  # (N, m) bool
    text_global: torch.Tensor  # (N, d)
    video_global: torch.Tensor  # (N, d)
    token_weights: torch.Tensor  # (N, n) idf over tokens of interest, rows sum to 1 or 0
    token_interest: torch.Tensor  # (N, n) bool
    pos_ids: torch.Tensor  # (N, n) long, spaCy UPOS ids (pos.UPOS), 0 for specials/padding
    gold_frames: torch.Tensor  # (N, n, m) bool
    seg_ids: torch.Tensor  # (N,) long, dataset / world segment ids

    def __len__(self) -> int:
        return self.text_tokens.shape[0]

    def to(self, device: torch.device | str) -> Embedded:
        return Embedded(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def subset(self, idx: torch.Tensor) -> Embedded:
        """Rows `idx` (LongTensor (N_s,)) of every field; text r still pairs with video r."""
        idx = idx.to(self.text_tokens.device)
        return Embedded(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _pad_cat(parts: Sequence[torch.Tensor], dims: Sequence[int]) -> torch.Tensor:
    """Concatenate along dim 0 after zero-padding each dim in `dims` to its maximum."""
    sizes = {d: max(p.shape[d] for p in parts) for d in dims}
    padded = []
    for p in parts:
        pad: list[int] = []
        for d in reversed(range(1, p.dim())):  # F.pad lists the last dim first
            pad += [0, sizes[d] - p.shape[d] if d in sizes else 0]
        padded.append(torch.nn.functional.pad(p, pad) if any(pad) else p)
    return torch.cat(padded, dim=0)


@torch.no_grad()
def embed_dataset(
    model: Any,
    dataset: Sequence,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    collate_fn: Callable | None = None,
) -> Embedded:
    """Run the encoders once over a split, in eval mode without gradients.

    dataset: items for `collate_fn` (default `data.collate`), e.g. a `WorldDataset`.
    device: where the encoders run (default: the model's device); results come back on CPU.
    The model's train/eval mode is restored afterwards. Why once: s1, s2, s3, the cascade and
    grounding all read the same tokens, and the encoders are the expensive part for large N.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: there is nothing to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 but is {batch_size}: try 128")
    if collate_fn is None:
        from taco_lite.data import collate as collate_fn
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    cols: dict[str, list[torch.Tensor]] = {f.name: [] for f in fields(Embedded)}
    try:
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            batch = collate_fn(items).to(device)
            emb = model.embed(batch)
            got = {
                "text_tokens": emb.text_tokens, "text_mask": batch.text_mask,
                "video_tokens": emb.video_tokens, "video_mask": batch.video_mask,
                "text_global": emb.text_global, "video_global": emb.video_global,
                "token_weights": batch.token_weights, "token_interest": batch.token_interest,
                "pos_ids": batch.pos_ids, "gold_frames": batch.gold_frames,
                "seg_ids": batch.seg_ids,
            }  # fmt: skip
            for name, t in got.items():
                cols[name].append(t.float().cpu() if t.is_floating_point() else t.cpu())
    finally:
        model.train(was_training)
    pad = {  # which dims are n (tokens) or m (frames) and must be padded to a common size
        "text_tokens": (1,), "text_mask": (1,), "video_tokens": (1,), "video_mask": (1,),
        "token_weights": (1,), "token_interest": (1,), "pos_ids": (1,), "gold_frames": (1, 2),
    }  # fmt: skip
    return Embedded(**{k: _pad_cat(v, pad.get(k, ())) for k, v in cols.items()})


def global_scores(emb: Embedded) -> torch.Tensor:
    """s1 (N, N): text_global_i . video_global_j (docs/method.md §2), no temperature."""
    return emb.text_global.float() @ emb.video_global.float().T  # (N, N)


def token_scores_s2(emb: Embedded, video_chunk: int = 64) -> torch.Tensor:
    """s2 (N, N): sum_p w[i, p] * s(i, p, j) (docs/method.md §5), `video_chunk` videos at a time.

    Why chunks: the token scores s(i, p, j) come from a (N, n, chunk, m) intermediate; all N
    videos at once would be (N, n, N, m), which grows with N^2 (about 1 GB for N = 500).
    """
    if video_chunk < 1:
        raise ValueError(f"video_chunk must be >= 1 but is {video_chunk}: try 64")
    N = len(emb)
    parts = []
    for j0 in range(0, N, video_chunk):
        tok = token_video_scores(
            emb.text_tokens.float(),
            emb.video_tokens[j0 : j0 + video_chunk].float(),
            emb.video_mask[j0 : j0 + video_chunk],
        )  # (N, n, c)
        parts.append(weighted_token_scores(tok, emb.token_weights))  # (N, c)
    return torch.cat(parts, dim=1)  # (N, N)


def coarse_scores(
    s1: torch.Tensor, s2: torch.Tensor, lambda_t: float, tau1: float = 1.0, tau2: float = 1.0
) -> torch.Tensor:
    """The cascade's first stage, s1 / tau1 + lambda_t * s2 / tau2 (N, N), on the logit scale.

    See the module docstring: with tau1 = tau2 = 1 (the paper) this is s1 + lambda_t * s2.
    """
    if s1.shape != s2.shape:
        raise ValueError(f"s1 has shape {tuple(s1.shape)} but s2 is {tuple(s2.shape)}")
    return s1 / tau1 + lambda_t * (s2 / tau2)  # (N, N)


def _trim(mask: torch.Tensor) -> int:
    """Length up to the last column that holds any True: padding beyond it can be cut."""
    cols = mask.any(dim=0).nonzero()
    return int(cols.max()) + 1 if cols.numel() else 1


@torch.no_grad()
def fusion_pair_scores(
    model: Any,
    emb: Embedded,
    text_idx: torch.Tensor,
    video_idx: torch.Tensor,
    chunk: int = 512,
) -> torch.Tensor:
    """s3 for the pairs (text_idx[a], video_idx[a]), `chunk` pairs per fusion call. -> (A,).

    Each chunk is cut to its own longest text and video (the key-padding masks make the cut
    padding irrelevant), which saves a lot on CPU when one long caption sets n for the split.
    """
    if text_idx.shape != video_idx.shape or text_idx.dim() != 1:
        raise ValueError(
            f"text_idx {tuple(text_idx.shape)} and video_idx {tuple(video_idx.shape)} must be "
            "1-D and of the same length: one (text, video) pair per entry"
        )
    out = []
    for a0 in range(0, text_idx.numel(), chunk):
        ti, vi = text_idx[a0 : a0 + chunk], video_idx[a0 : a0 + chunk]
        tmask, vmask = emb.text_mask[ti], emb.video_mask[vi]  # (A, n), (A, m)
        n, m = _trim(tmask), _trim(vmask)
        logits = model.fuse(
            emb.text_tokens[ti, :n], tmask[:, :n], emb.video_tokens[vi, :m], vmask[:, :m]
        )  # (A,)
        out.append(logits.float())
    if not out:
        return emb.text_tokens.new_zeros(0)
    return torch.cat(out)  # (A,)


def full_fusion_scores(model: Any, emb: Embedded, chunk: int = 512) -> torch.Tensor:
    """s3 (N, N) over all N^2 pairs: the paper's inference cost, feasible on a subset only."""
    N = len(emb)
    device = emb.text_tokens.device
    text_idx = torch.arange(N, device=device).repeat_interleave(N)  # (N^2,) row-major i
    video_idx = torch.arange(N, device=device).repeat(N)  # (N^2,) j
    return fusion_pair_scores(model, emb, text_idx, video_idx, chunk).view(N, N)  # (N, N)


def cascade_scores(
    model: Any,
    emb: Embedded,
    coarse: torch.Tensor,
    top_k: int,
    direction: str = "t2v",
    chunk: int = 512,
) -> torch.Tensor:
    """Cascade inference (docs/method.md §5): query rows (N, N) after re-scoring the top-k by fusion.

    coarse: (N, N) text x video, `coarse_scores`. direction "t2v": queries are texts (rows of
    coarse); "v2t": queries are videos (rows of coarse.T), and the result is video x text.
    Per query, the top_k candidates by coarse get coarse + s3 and are ordered by it; all other
    candidates keep their coarse order strictly below them (`cascade.cascade_rerank`).
    Fusion runs on exactly N * top_k pairs. With top_k = N this is the full sum ranking.
    """
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction is {direction!r} but must be 't2v' or 'v2t'")
    queries = coarse if direction == "t2v" else coarse.T  # (N, N), rows = queries

    def fine(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        ti, vi = (rows, cols) if direction == "t2v" else (cols, rows)  # (R, k) each
        return fusion_pair_scores(model, emb, ti.reshape(-1), vi.reshape(-1), chunk)

    rows_per_call = max(1, chunk // max(1, top_k))
    return cascade_rerank(queries, top_k, fine, add_coarse=True, rows_per_call=rows_per_call)
