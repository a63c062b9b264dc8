"""Pure computations behind the alignment explorers: one caption against one clip's frames.

TACo's token-level loss L2 (paper Sec. 3.2, Eq. 4) scores a word against a video by the *max*
over frames of y^p . x^k. Before that max there is a whole token x frame matrix, and looking
at it shows what L2 teaches: each noun and verb should light up the frames that show it.
The functions here build that matrix and read it (best frame per token, grounding accuracy,
top-k retrieval); `widgets` draws them. Tensors only: no model, no world, no plotting.

Shapes: n text tokens (incl. [CLS]/[SEP]), m frames, d width, N candidate videos.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from taco_lite.cascade import hard_negatives, pair_scores, random_negatives
from taco_lite.metrics import grounding_counts
from taco_lite.shapes import require_bool, require_dims, require_float, shape_str

__all__ = [
    "VIEWS",
    "token_frame_scores",
    "VIEW_LABELS",
    "softmax_over_frames",
    "centre_over_words",
    "softmax_over_words",
    "best_frame_per_token",
    "apply_view",
    "ClipGrounding",
    "clip_grounding",
    "top_k",
    "CascadeCandidates",
    "cascade_candidates",
]

VIEWS = ("dot", "softmax", "centred", "word_softmax")
VIEW_LABELS = {  # what each view computes, as the explorer names it
    "dot": "token . frame (dot product)",
    "softmax": "softmax over frames",
    "centred": "token . frame centred over words",
    "word_softmax": "softmax over words, per frame",
}


def token_frame_scores(text_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
    """y^p . x^k for every token p of one caption and frame k of one clip. -> (n, m).

    text_tokens: (n, d); video_tokens: (m, d). The max over k of row p is exactly
    `losses.token_video_scores`' s(i, p, j) for this (caption, clip) pair (Eq. 4's score), so
    this matrix is what L2 looks at before it takes that max.
    """
    require_dims("text_tokens", text_tokens, "(n, d)")
    require_dims("video_tokens", video_tokens, "(m, d)")
    require_float("text_tokens", text_tokens)
    require_float("video_tokens", video_tokens)
    if text_tokens.shape[1] != video_tokens.shape[1]:
        raise ValueError(
            f"text_tokens has shape {shape_str(text_tokens)} but video_tokens is "
            f"{shape_str(video_tokens)}: both need the same width d (same model?)"
        )
    return text_tokens.float() @ video_tokens.float().T  # (n, m)


def _axis_mask(
    scores: torch.Tensor, mask: torch.Tensor | None, dim: int, name: str, unit: str, need: str
) -> torch.Tensor:
    """`mask` checked against scores' `dim` (all True when None): one bool per `unit`."""
    size = scores.shape[dim]
    if mask is None:
        return torch.ones(size, dtype=torch.bool, device=scores.device)
    require_bool(name, mask)
    if mask.shape != (size,):
        raise ValueError(
            f"{name} has shape {shape_str(mask)} but scores is {shape_str(scores)}: "
            f"the mask needs one entry per {unit}, shape ({size},)"
        )
    if not bool(mask.any()):
        raise ValueError(f"{name} has no True entry: {need}")
    return mask


def _frame_mask(scores: torch.Tensor, video_mask: torch.Tensor | None) -> torch.Tensor:
    return _axis_mask(
        scores, video_mask, 1, "video_mask", "frame", "a clip needs at least one real frame"
    )


def softmax_over_frames(
    scores: torch.Tensor, tau: float = 1.0, video_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Each token's distribution over the clip's frames: softmax_k(scores[p, k] / tau). -> (n, m).

    Why this view: dot products of different tokens live on different scales, so a heatmap of
    raw scores is dominated by a few tokens. Dividing by the model's tau2 (the temperature of
    L2, Eq. 4) and normalising per row shows, for each word, *where* in the clip it looks.
    Padded frames get probability 0; every row sums to 1. No NaN for any finite input.
    """
    require_dims("scores", scores, "(n, m)")
    require_float("scores", scores)
    if not tau > 0:
        raise ValueError(f"tau must be > 0 but is {tau}: use the model's tau2 (e.g. 0.07) or 1.0")
    valid = _frame_mask(scores, video_mask)
    logits = scores.float().masked_fill(~valid[None, :], float("-inf")) / tau  # (n, m)
    return torch.softmax(logits, dim=1)  # (n, m)


def _word_mask(scores: torch.Tensor, word_mask: torch.Tensor | None) -> torch.Tensor:
    return _axis_mask(
        scores, word_mask, 0, "word_mask", "token", "the caption needs at least one word"
    )


def centre_over_words(
    scores: torch.Tensor,
    word_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """scores[p, k] - mean over the caption's words p' of scores[p', k]. -> (n, m).

    Why: with contextual token embeddings every word of a caption carries much of the same
    sentence meaning, so some frames score high for *every* word (a column bias: the whole
    column lights up). Subtracting each frame column's mean over the words removes what all
    words share and leaves what is specific to word p. The row argmax can move: word p's best
    frame here is the frame it prefers *more than the other words do*.

    word_mask: bool (n,), the rows the mean runs over (the caption's real words, not
    [CLS]/[SEP] or padding); other rows are centred with the same means. video_mask: bool
    (m,); padded frames are set to 0. With a single word every entry is 0.
    """
    require_dims("scores", scores, "(n, m)")
    require_float("scores", scores)
    words = _word_mask(scores, word_mask)
    valid = _frame_mask(scores, video_mask)
    s = scores.float()  # (n, m)
    col_mean = s[words].mean(dim=0, keepdim=True)  # (1, m) mean over the words of each frame
    return (s - col_mean).masked_fill(~valid[None, :], 0.0)  # (n, m)


def softmax_over_words(
    scores: torch.Tensor,
    tau: float = 1.0,
    word_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each frame's distribution over the caption's words: softmax_p(scores[p, k] / tau). -> (n, m).

    The transpose of `softmax_over_frames`: every column (real frame) sums to 1 over the words
    in word_mask, so a frame that is bright for every word spreads its mass evenly and no
    longer stands out; a frame that one word claims gives that word most of its mass. Rows
    outside word_mask and padded frames are 0. tau: the model's tau2, as for the other softmax.
    """
    require_dims("scores", scores, "(n, m)")
    require_float("scores", scores)
    if not tau > 0:
        raise ValueError(f"tau must be > 0 but is {tau}: use the model's tau2 (e.g. 0.07) or 1.0")
    words = _word_mask(scores, word_mask)
    valid = _frame_mask(scores, video_mask)
    logits = scores.float().masked_fill(~words[:, None], float("-inf")) / tau  # (n, m)
    probs = torch.softmax(logits, dim=0)  # (n, m), each column sums to 1 over the words
    return probs.masked_fill(~valid[None, :], 0.0)  # (n, m)


def best_frame_per_token(
    scores: torch.Tensor, video_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """argmax over valid frames k of scores[p, k], for every token p. -> LongTensor (n,).

    This is the frame that wins Eq. 4's max for token p. Ties go to the earliest frame (as
    `torch.argmax`), the same rule as `metrics.grounding_counts`.
    """
    require_dims("scores", scores, "(n, m)")
    require_float("scores", scores)
    valid = _frame_mask(scores, video_mask)
    return scores.float().masked_fill(~valid[None, :], float("-inf")).argmax(dim=1)  # (n,)


def apply_view(
    scores: torch.Tensor,
    view: str,
    tau: float = 1.0,
    video_mask: torch.Tensor | None = None,
    word_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The matrix the heatmap shows (`VIEW_LABELS`): raw dot products ("dot"),
    `softmax_over_frames`, `centre_over_words` ("centred") or `softmax_over_words`."""
    if view == "dot":
        return scores.float()
    if view == "softmax":
        return softmax_over_frames(scores, tau, video_mask)
    if view == "centred":
        return centre_over_words(scores, word_mask, video_mask)
    if view == "word_softmax":
        return softmax_over_words(scores, tau, word_mask, video_mask)
    raise ValueError(f"view is {view!r} but must be one of {VIEWS}")


@dataclass
class ClipGrounding:
    """Grounding of one caption on its own clip: how many scored tokens hit a gold frame."""

    correct: int
    scored: int

    @property
    def accuracy(self) -> float | None:
        """Fraction in [0, 1], or None when no token has a gold frame (never NaN)."""
        return self.correct / self.scored if self.scored else None

    def __str__(self) -> str:
        if not self.scored:
            return "grounding: no token with gold frames here"
        return f"grounding {self.correct}/{self.scored} = {100.0 * self.correct / self.scored:.0f}%"


def clip_grounding(
    scores: torch.Tensor,
    gold_frames: torch.Tensor,
    token_mask: torch.Tensor,
    video_mask: torch.Tensor | None = None,
) -> ClipGrounding:
    """Is each scored token's best frame one of its gold frames? (`metrics.grounding_counts`).

    scores: (n, m); gold_frames: bool (n, m); token_mask: bool (n,), which tokens to score
    (e.g. tokens of interest after a POS filter). Tokens without a gold frame are not scored.
    """
    correct, scored = grounding_counts(scores.float(), gold_frames, token_mask, video_mask)
    return ClipGrounding(correct, scored)


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best candidates of one query, best first: (indices (k,), scores (k,)).

    scores: (N,). k is capped at N. Ties keep the lower index first (a stable sort), so
    the same query always shows the same list.
    """
    require_dims("scores", scores, "(N,)")
    require_float("scores", scores)
    if k < 1:
        raise ValueError(f"k is {k} but top-k needs k >= 1 (try 5)")
    if scores.numel() == 0:
        raise ValueError("scores is empty: there are no candidates to rank")
    if torch.isnan(scores).any():
        raise ValueError("scores holds NaN: a NaN cannot be ranked; check the model's outputs")
    order = scores.sort(descending=True, stable=True).indices[: min(k, scores.numel())]  # (k,)
    return order, scores[order]


@dataclass
class CascadeCandidates:
    """What the fusion layers would see for one text anchor of a batch (paper Sec. 3.3)."""

    anchor: int  # the text i (row of the batch)
    hard: list[int]  # its k_neg hardest videos j != i by a(i, j), best first
    random: list[int]  # k_neg uniform videos j != i (the "random" ablation)
    pair_scores: torch.Tensor  # (B,) a(i, :) = s1(i, :) + sum over P_i of s(i, p, :)


def cascade_candidates(
    sim_global: torch.Tensor,
    token_scores: torch.Tensor,
    token_mask: torch.Tensor,
    anchor: int,
    k_neg: int,
    seed: int = 0,
) -> CascadeCandidates:
    """Hard and random negatives of one text, from `cascade.pair_scores` / `hard_negatives`.

    sim_global: (B, B) s1; token_scores: (B, n, B) s; token_mask: bool (B, n) tokens of
    interest. The random negatives come from `cascade.random_negatives` with a generator
    seeded by `seed`, so the same seed always shows the same random row.
    """
    a = pair_scores(sim_global, token_scores, token_mask)  # (B, B)
    B = a.shape[0]
    if not 0 <= anchor < B:
        raise ValueError(f"anchor is {anchor} but the batch has texts 0..{B - 1}")
    hard_v, _ = hard_negatives(a, k_neg)  # (B, k) each
    rand_v, _ = random_negatives(B, k_neg, generator=torch.Generator().manual_seed(seed))
    return CascadeCandidates(
        anchor=anchor,
        hard=hard_v[anchor].tolist(),
        random=rand_v[anchor].tolist(),
        pair_scores=a[anchor],
    )
