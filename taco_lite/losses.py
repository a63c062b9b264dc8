"""The three TACo losses (paper Eqs. 3-6) as pure functions of tensors.

No model lives here (the pattern of open_clip's `loss.py`): each function takes encoder
outputs or scores and returns a scalar, so it can be tested against a naive loop
(`tests/naive.py`) and swapped by a learner's own version (`train.LossFns`).

Conventions (docs/method.md §2, §8): text i is the row, video j the column, (text i, video i) is the
positive pair. Masks are bool, True = valid. Softmaxes are taken in at least float32 (`_wide`
before `log_softmax`), so the losses stay accurate under `torch.autocast(dtype=bfloat16)`.

Temperatures: the paper uses tau = 1 on unnormalised features. Training from scratch on small
data usually works better with L2-normalised embeddings and a small tau (e.g. 0.05-0.1); that
choice belongs to the caller (`model`/`train`), these functions just divide by `tau`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taco_lite.shapes import (
    require_bool,
    require_dims,
    require_finite,
    require_finite_result,
    require_float,
    require_int,
    require_positive,
    require_same_dtype,
    shape_str,
)

__all__ = [
    "sentence_nce",
    "token_video_scores",
    "token_video_scores_chunked",
    "token_video_scores_lowmem",
    "token_nce",
    "fusion_nce",
]


def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32: bf16/fp16 scores are upcast before any log-softmax, float64 is kept.

    Why: bf16 has 8 bits of mantissa; a logsumexp over a batch in bf16 can be off by more
    than the loss differences we care about. float64 stays float64 for gradcheck.
    """
    return x if x.dtype == torch.float64 else x.float()


# --------------------------------------------------------------------------------------------
# L1: sentence level (Eq. 3)
# --------------------------------------------------------------------------------------------


def sentence_nce(
    text_global: torch.Tensor,
    video_global: torch.Tensor,
    tau: float = 1.0,
    symmetric: bool = False,
) -> torch.Tensor:
    """L1, the sentence-level contrastive loss (paper Eq. 3).

    text_global: (B, d), the [CLS] output y_bar_i of each text.
    video_global: (B, d), the masked frame mean x_bar_j of each video.
    Returns a float32 scalar (float64 for float64 inputs): mean over i of -log softmax_j(s1(i, :) / tau)[i],
    with s1(i, j) = y_bar_i . x_bar_j.

    Why a softmax over the batch: every other video in the batch is a free negative, so one
    (B, B) matrix product gives B^2 comparisons. Eq. 3 is text-to-video only;
    `symmetric=True` averages in the video-to-text direction (the CLIP habit), which the kit
    offers as an option.
    """
    require_dims("text_global", text_global, "(B, d)")
    require_dims("video_global", video_global, "(B, d)")
    require_float("text_global", text_global)
    require_float("video_global", video_global)
    if text_global.shape != video_global.shape:
        raise ValueError(
            f"text_global has shape {shape_str(text_global)} but video_global is "
            f"{shape_str(video_global)}: L1 needs one video per text (same B) and the same width d"
        )
    if text_global.shape[0] == 0:
        raise ValueError("text_global is empty (B = 0): a contrastive loss needs at least one pair")
    require_positive("tau", tau)
    require_same_dtype("text_global", text_global, "video_global", video_global)
    require_finite("text_global", text_global)
    require_finite("video_global", video_global)

    sim = text_global @ video_global.T  # (B, B), s1(i, j); bf16 under autocast
    logits = _wide(sim) / tau  # (B, B), float32 (or float64) for the log-softmax
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,), positive is j = i
    loss = F.cross_entropy(logits, target)  # text -> video
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))  # + video -> text
    return require_finite_result("sentence_nce (L1)", loss, tau)


# --------------------------------------------------------------------------------------------
# Token-to-video scores s(i, p, j) (Sec. 3.2)
# --------------------------------------------------------------------------------------------


def _check_token_video_inputs(
    text_tokens: torch.Tensor, video_tokens: torch.Tensor, video_mask: torch.Tensor
) -> None:
    require_dims("text_tokens", text_tokens, "(B, n, d)")
    require_dims("video_tokens", video_tokens, "(B, m, d)")
    require_dims("video_mask", video_mask, "(B, m)")
    require_float("text_tokens", text_tokens)
    require_float("video_tokens", video_tokens)
    require_bool("video_mask", video_mask)
    if text_tokens.shape[2] != video_tokens.shape[2]:
        raise ValueError(
            f"text_tokens has shape {shape_str(text_tokens)} but video_tokens is "
            f"{shape_str(video_tokens)}: both need the same width d (last dim)"
        )
    if video_mask.shape != video_tokens.shape[:2]:
        raise ValueError(
            f"video_mask has shape {shape_str(video_mask)} but video_tokens is "
            f"{shape_str(video_tokens)}: the mask needs one entry per frame, shape (B, m)"
        )
    empty = ~video_mask.any(dim=1)  # (B,)
    if empty.any():
        idx = empty.nonzero().flatten().tolist()
        raise ValueError(
            f"video(s) {idx} have no valid frame in video_mask {shape_str(video_mask)}: "
            f"the max over frames would be -inf; drop these videos or fix the mask"
        )
    require_same_dtype("text_tokens", text_tokens, "video_tokens", video_tokens)
    require_finite("text_tokens", text_tokens)
    require_finite("video_tokens (valid frames)", video_tokens[video_mask])  # padding: any


def _token_video_scores_core(
    text_tokens: torch.Tensor, video_tokens: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """The unchecked computation; shared by the plain and the chunked entry points."""
    raw = torch.einsum("ipd,jkd->ipjk", text_tokens, video_tokens)  # (B_t, n, B_v, m)
    raw = raw.masked_fill(~video_mask[None, None, :, :], float("-inf"))  # padded frames lose
    return raw.amax(dim=-1)  # (B_t, n, B_v)


def token_video_scores(
    text_tokens: torch.Tensor, video_tokens: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """s(i, p, j) = max over valid frames k of y_i^p . x_j^k (paper Sec. 3.2, used by Eq. 4).

    text_tokens: (B, n, d); video_tokens: (B, m, d); video_mask: (B, m) bool, True = real frame.
    Returns token_scores (B, n, B): token p of text i against every video j of the batch.
    (The text and video counts may differ, giving (B_t, n, B_v), e.g. at inference.)

    Why a max over frames: a word such as "cut" or "onion" refers to *some* frames of the clip,
    not to its average; the max lets a token find its best-matching frame. Padded frames are
    set to -inf before the max, so they can never win; a video without any valid frame raises
    ValueError instead of returning -inf. Padded *text* tokens still get a (finite) score: the
    caller silences them with weight 0 in `token_nce`.

    Memory: the intermediate is (B, n, B, m); see `token_video_scores_chunked` for large B.
    """
    _check_token_video_inputs(text_tokens, video_tokens, video_mask)
    scores = _token_video_scores_core(text_tokens, video_tokens, video_mask)  # (B, n, B)
    return require_finite_result("token_video_scores", scores)


def token_video_scores_chunked(
    text_tokens: torch.Tensor,
    video_tokens: torch.Tensor,
    video_mask: torch.Tensor,
    chunk_size: int = 32,
) -> torch.Tensor:
    """`token_video_scores`, computed `chunk_size` videos at a time.

    Same inputs and output (B, n, B). Why: the plain version builds a (B, n, B, m) tensor,
    which grows with B^2; chunking over videos j bounds the peak at (B, n, chunk_size, m).
    Each output entry is the same dot product and the same max as in the plain version, so
    the results agree to float rounding: BLAS may pick a different kernel for a different
    matrix width and round the last bit differently (about 1e-6 relative in float32, 1e-15
    in float64). Bit-for-bit equality across GEMM shapes is not something BLAS promises.
    """
    _check_token_video_inputs(text_tokens, video_tokens, video_mask)
    chunk_size = require_int("chunk_size", chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 but is {chunk_size}: try 32")
    parts = [
        _token_video_scores_core(
            text_tokens, video_tokens[j0 : j0 + chunk_size], video_mask[j0 : j0 + chunk_size]
        )  # (B_t, n, <=chunk_size)
        for j0 in range(0, video_tokens.shape[0], chunk_size)
    ]
    return torch.cat(parts, dim=2)  # (B_t, n, B_v)


class _TokenVideoMax(torch.autograd.Function):
    """s(i, p, j) = max_k y_i^p . x_j^k (Sec. 3.2) with O(B * n * B) saved state, not O(B^2 m).

    Autograd on the plain (or chunked) version keeps the (B_t, n, B_v, m) dot products for the
    backward of the max (537 MB at B = 512, n = 16, m = 32). The max only routes its gradient to
    the winning frame, so this function keeps just that frame's index k*(i, p, j), shape
    (B_t, n, B_v) in int16/int32, and rebuilds every chunk's one-hot routing in the backward:

        dL/dy_i^p = sum_j g(i, p, j) x_j^{k*(i, p, j)}
        dL/dx_j^k = sum_{i, p: k*(i, p, j) = k} g(i, p, j) y_i^p

    Each chunk's routing is a (B_t, n, c, m) tensor, the same size as the forward tile, so the
    peak is bounded by the chunk size. Ties (two frames with the exact same score) send the
    whole gradient to the first of them; `amax` would split it. With continuous features ties
    have probability zero.
    """

    @staticmethod
    def forward(ctx, text_tokens, video_tokens, video_mask, chunk_size):  # noqa: D102
        (B_t, n, _), (B_v, m, _) = text_tokens.shape, video_tokens.shape
        # written chunk by chunk: no list of chunks and no torch.cat copy at the end
        values = None  # (B_t, n, B_v), in the dtype of the dot products (bf16 under autocast)
        winners = torch.empty(B_t, n, B_v, dtype=_index_dtype(m), device=text_tokens.device)
        for j0 in range(0, B_v, chunk_size):
            vt = video_tokens[j0 : j0 + chunk_size]  # (c, m, d)
            raw = torch.einsum("ipd,jkd->ipjk", text_tokens, vt)  # (B_t, n, c, m)
            # in place: this tile is ours (no autograd inside forward), a copy would double it
            raw.masked_fill_(~video_mask[None, None, j0 : j0 + chunk_size], float("-inf"))
            best, arg = raw.max(dim=-1)  # (B_t, n, c) each
            del raw  # free the tile before the next one is made
            if values is None:
                values = best.new_empty(B_t, n, B_v)
            values[:, :, j0 : j0 + chunk_size] = best
            winners[:, :, j0 : j0 + chunk_size] = arg
        if values is None:  # no video (B_v = 0)
            values = text_tokens.new_empty(B_t, n, 0)
        ctx.save_for_backward(text_tokens, video_tokens, winners)
        ctx.chunk_size = chunk_size
        return values  # (B_t, n, B_v)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        text_tokens, video_tokens, winners = ctx.saved_tensors  # winners: (B_t, n, B_v)
        c = ctx.chunk_size
        B_t, n, d = text_tokens.shape
        B_v, m, _ = video_tokens.shape
        # one common dtype (under autocast grad_out is bf16 while the inputs stay float32)
        dtype = torch.promote_types(grad_out.dtype, text_tokens.dtype)
        dtype = torch.promote_types(dtype, video_tokens.dtype)
        tt = text_tokens.to(dtype).reshape(B_t * n, d)  # (B_t n, d)
        grad_text = torch.zeros_like(tt) if ctx.needs_input_grad[0] else None  # (B_t n, d)
        grad_video = torch.zeros(B_v, m, d, dtype=dtype, device=video_tokens.device)
        for j0 in range(0, B_v, c):
            vt = video_tokens[j0 : j0 + c].to(dtype)  # (c', m, d)
            cc = vt.shape[0]
            route = torch.zeros(B_t, n, cc, m, dtype=dtype, device=grad_out.device)
            route.scatter_(  # route[i, p, j, k*(i, p, j)] = g(i, p, j), 0 elsewhere
                3,
                winners[:, :, j0 : j0 + cc, None].long(),
                grad_out[:, :, j0 : j0 + cc, None].to(dtype),
            )  # (B_t, n, c', m)
            route = route.reshape(B_t * n, cc * m)  # (B_t n, c' m)
            if grad_text is not None:
                grad_text += route @ vt.reshape(cc * m, d)  # (B_t n, d)
            if ctx.needs_input_grad[1]:
                grad_video[j0 : j0 + cc] = (route.T @ tt).view(cc, m, d)  # (c', m, d)
            del route  # one routing tile alive at a time
        if grad_text is not None:
            grad_text = grad_text.view(B_t, n, d).to(text_tokens.dtype)
        grad_video = grad_video.to(video_tokens.dtype) if ctx.needs_input_grad[1] else None
        return grad_text, grad_video, None, None


def _index_dtype(m: int) -> torch.dtype:
    """The narrowest integer dtype that holds frame indices 0..m-1 (the saved state)."""
    return torch.int16 if m <= torch.iinfo(torch.int16).max else torch.int32


def token_video_scores_lowmem(
    text_tokens: torch.Tensor,
    video_tokens: torch.Tensor,
    video_mask: torch.Tensor,
    chunk_size: int = 32,
) -> torch.Tensor:
    """`token_video_scores` with training memory bounded by the chunk, not by B^2 (Eq. 4's s).

    Same inputs and output (B, n, B) as `token_video_scores`; the forward values are exactly
    those of `token_video_scores_chunked` with the same `chunk_size` (the same dot products and
    max, chunk by chunk). The difference is the backward: a custom autograd function saves only
    the index of each (token, video) pair's best frame, (B, n, B), and recomputes the gradient
    chunk by chunk (see `_TokenVideoMax`). Use it for training at large B: at B = 512, n = 16,
    m = 32 autograd on the plain version keeps a 537 MB tensor for the backward of the max.

    Gradients equal those of the plain version to float rounding, except at exact ties between
    frames, where the first frame gets the whole gradient (`amax` splits it evenly).
    """
    _check_token_video_inputs(text_tokens, video_tokens, video_mask)
    chunk_size = require_int("chunk_size", chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 but is {chunk_size}: try 32")
    return _TokenVideoMax.apply(text_tokens, video_tokens, video_mask, chunk_size)


# --------------------------------------------------------------------------------------------
# L2: token level (Eq. 4)
# --------------------------------------------------------------------------------------------


def token_nce(
    token_scores: torch.Tensor, token_weights: torch.Tensor, tau: float = 1.0
) -> torch.Tensor:
    """L2, the token-level contrastive loss (paper Eq. 4).

    token_scores: (B, n, B), s(i, p, j) from `token_video_scores`.
    token_weights: (B, n), w[i, p] >= 0: idf over tokens of interest, 0 elsewhere
        (padding, [CLS], [SEP], words whose POS is not in `pos_tags`).
    Returns a float32 scalar (float64 for float64 inputs):
        sum over i, p of w[i, p] * (-log softmax_j(s(i, p, :) / tau)[i])
        / (number of texts with at least one nonzero weight).

    Why: L1 compares whole sentences, so a caption can match its video through one generic
    word. L2 asks every content word (noun, verb) to pick out its own video among the batch,
    weighted by idf so that rare, informative words count more.

    Safety: tokens with weight 0 never reach the log-softmax (their scores are replaced by 0
    first), so padded tokens may hold any value, even inf, without creating 0 * inf = NaN.
    Texts with all-zero weights add nothing. If no text has a token of interest the result is
    an exact 0 that is still connected to both inputs (so `backward()` works and gives zeros).
    """
    require_dims("token_scores", token_scores, "(B, n, B)")
    require_dims("token_weights", token_weights, "(B, n)")
    require_float("token_scores", token_scores)
    require_float("token_weights", token_weights)
    B, n, B_v = token_scores.shape
    if B != B_v:
        raise ValueError(
            f"token_scores has shape {shape_str(token_scores)}: L2 needs the square layout "
            f"(B, n, B) with text i's positive video at j = i"
        )
    if token_weights.shape != (B, n):
        raise ValueError(
            f"token_weights has shape {shape_str(token_weights)} but token_scores is "
            f"{shape_str(token_scores)}: weights need one entry per token, shape ({B}, {n})"
        )
    if B == 0:
        raise ValueError(
            "token_scores is empty (B = 0): a contrastive loss needs at least one pair"
        )
    require_positive("tau", tau)
    if not torch.isfinite(token_weights).all() or (token_weights < 0).any():
        raise ValueError(
            "token_weights must be finite and >= 0 (idf weights, 0 = ignore this token): "
            f"got min {float(token_weights.detach().min())}; check the idf table for negative values"
        )

    active = token_weights > 0  # (B, n), tokens that take part
    require_finite(
        "token_scores (tokens with nonzero weight)",
        token_scores[active],
        "only tokens with weight 0 (padding, specials) may hold inf / NaN. If the model made "
        "them, training probably diverged: lower the learning rate (an inf learning rate "
        "does this at once), keep grad_clip > 0",
    )
    scores = torch.where(active[:, :, None], _wide(token_scores), 0.0)  # (B, n, B), no inf
    logp = F.log_softmax(scores / tau, dim=2)  # (B, n, B), over videos j
    idx = torch.arange(B, device=logp.device)
    nll = -logp[idx, :, idx]  # (B, n), -log p(video i | token p of text i)
    w = torch.where(active, _wide(token_weights), 0.0)  # (B, n)
    total = (w * nll).sum()  # () finite: nll is finite wherever it is used
    num_texts = active.any(dim=1).sum().clamp_min(1)  # texts with >= 1 token of interest
    return require_finite_result("token_nce (L2)", total / num_texts, tau)


# --------------------------------------------------------------------------------------------
# L3: fusion level over cascade samples (Eq. 5)
# --------------------------------------------------------------------------------------------


def fusion_nce(logits: torch.Tensor) -> torch.Tensor:
    """L3, the fusion-level loss over cascade-sampled pairs (paper Eq. 5).

    logits: (A, 1 + k), one row per anchor, s3 of the positive in column 0 and of the anchor's
    k negatives after it. In training A = 2B: rows 0..B-1 are text anchors, rows B..2B-1 video
    anchors (see `cascade.fusion_pairs`). Returns the float32 scalar (float64 for float64 logits)
    mean over anchors of -log softmax(logits[a])[0].

    Why only 1 + k columns: the fusion layers are expensive, so instead of all B^2 pairs they
    see each anchor's positive and its k hardest negatives (Sec. 3.3).
    """
    require_dims("logits", logits, "(A, 1 + k)")
    require_float("logits", logits)
    A, cols = logits.shape
    if A == 0:
        raise ValueError("logits is empty (A = 0): L3 needs at least one anchor row")
    if cols < 2:
        raise ValueError(
            f"logits has shape {shape_str(logits)} but L3 needs (A, 1 + k) with k >= 1 "
            f"negatives per anchor: the positive in column 0, negatives after it. If your "
            f"logits are flat (A * (1 + k),), reshape them with logits.view(-1, 1 + k)"
        )
    require_finite("logits", logits)
    target = torch.zeros(A, dtype=torch.long, device=logits.device)  # (A,), positive at 0
    return require_finite_result("fusion_nce (L3)", F.cross_entropy(_wide(logits), target))
