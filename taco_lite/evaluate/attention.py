"""Word -> frame attention of the fusion encoder f_m, read as an alignment (paper Sec. 3.1).

f_m (Eq. 2's fusion score s3) runs self-attention over the concatenation [text (n) ; video
(m)], so inside it each word *attends* to frames: attention[q, k] is how much token q reads
token k. `TacoModel.fuse(..., return_attention=True)` returns these weights per layer and
head, (layers, A, heads, n + m, n + m); the functions here turn one pair's weights into an
(n, m) word x frame matrix that the explorer draws like the token . frame similarity:

- `select_heads`: one layer and head, or the mean over layers and/or heads;
- `attention_rollout`: Abnar & Zuidema (2020), attention flowing through all layers;
- `word_frame_block`: the text-query x video-key block, padding removed, rows renormalised
  over the real frames (a word's attention *among frames*);
- `attention_grounding`, `clip_accuracies`: grounding read from any such matrix, by the rule
  of `metrics.grounding_counts` (is a word's argmax frame a gold frame?).

`split_clip_accuracies` runs a model over a whole embedded split and gives each clip's grounding
accuracy under one view (the notebook-07 histogram); everything else is tensors only: no
model, no world, no plotting. Shapes: L = n + m tokens of the concatenation.
"""

from __future__ import annotations

import torch

from taco_lite.evaluate.alignment import VIEWS, ClipGrounding, apply_view, clip_grounding
from taco_lite.shapes import require_bool, require_dims, require_float, shape_str

__all__ = [
    "ATTENTION_VIEWS",
    "ATTENTION_LABELS",
    "word_frame_block",
    "select_heads",
    "attention_rollout",
    "attention_grounding",
    "clip_accuracies",
    "caption_words",
    "split_clip_accuracies",
]

ATTENTION_VIEWS = ("attention", "rollout")
ATTENTION_LABELS = {
    "attention": "fusion attention word -> frame",
    "rollout": "fusion attention rollout word -> frame",
}


def _check_square(name: str, attention: torch.Tensor, min_dims: int) -> None:
    require_float(name, attention)
    if attention.dim() < min_dims or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(
            f"{name} has shape {shape_str(attention)} but must end in a square (L, L) "
            f"attention matrix (L = n + m tokens), with {min_dims - 2} or more dims before it"
        )


def word_frame_block(
    attention: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """The word -> frame block of a fusion attention matrix, renormalised over real frames.

    attention: (..., n + m, n + m) with rows = queries and columns = keys, the text first (as
    `FusionEncoder` concatenates [y ; x]); text_mask: bool (n,); video_mask: bool (m,),
    True = real. Returns (..., n, m): out[p, k] = attention[p, n + k] / sum over real frames
    k' of attention[p, n + k'] for a real token p and real frame k; 0 for padded tokens and
    padded frames. Each real row sums to 1: it says where among the clip's frames token p
    looks, whatever share of its attention went to the text. A row with no attention on any
    real frame (only possible by underflow) stays 0, never NaN.
    """
    require_bool("text_mask", text_mask)
    require_bool("video_mask", video_mask)
    require_dims("text_mask", text_mask, "(n,)")
    require_dims("video_mask", video_mask, "(m,)")
    _check_square("attention", attention, 2)
    n, m = text_mask.shape[0], video_mask.shape[0]
    if attention.shape[-1] != n + m:
        raise ValueError(
            f"attention has shape {shape_str(attention)} but text_mask has n={n} and "
            f"video_mask m={m} entries: the attention must be (n + m, n + m) = ({n + m}, {n + m})"
        )
    if not bool(video_mask.any()):
        raise ValueError("video_mask has no True entry: a clip needs at least one real frame")
    block = attention[..., :n, n:].float()  # (..., n, m) text queries x video keys
    keep = text_mask[:, None] & video_mask[None, :]  # (n, m)
    block = block * keep.to(block.dtype)  # (..., n, m) padding -> 0
    total = block.sum(dim=-1, keepdim=True)  # (..., n, 1) mass on real frames
    return torch.where(total > 0, block / total.clamp_min(1e-30), torch.zeros_like(block))


def select_heads(attention: torch.Tensor, layer: int | None, head: int | None) -> torch.Tensor:
    """One (L, L) map from per-layer, per-head weights (layers, heads, L, L).

    layer / head: an index, or None for the mean over all layers / heads. The mean of
    row-stochastic matrices is row-stochastic, so every choice is still an attention matrix.
    """
    _check_square("attention", attention, 4)
    require_dims("attention", attention, "(layers, heads, L, L)")
    n_layers, n_heads = attention.shape[:2]
    for name, value, size in (("layer", layer, n_layers), ("head", head, n_heads)):
        if value is not None and not 0 <= value < size:
            raise ValueError(
                f"{name} is {value} but the fusion encoder has {name}s 0..{size - 1} "
                f"(or None for the mean over all {size})"
            )
    a = attention.float()
    a = a.mean(dim=0) if layer is None else a[layer]  # (heads, L, L)
    return a.mean(dim=0) if head is None else a[head]  # (L, L)


def attention_rollout(attention: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, ACL 2020, Sec. 3): attention through all layers.

    attention: (layers, heads, L, L), layer 0 first. Per layer, average the heads, account
    for the residual connection by mixing in the identity, A_l = (1 - residual) W_l +
    residual I, and renormalise the rows; then multiply the layers, rollout = A_{last} ...
    A_1 A_0 (Abnar & Zuidema's recursion A~(l) = A(l) A~(l-1)). Returns (L, L), each row sums
    to 1: rollout[q, k] is how much of input token k reaches output token q along attention
    paths. With one layer it is A_0 itself. residual: the identity's weight, 0.5 in the paper.
    """
    _check_square("attention", attention, 4)
    require_dims("attention", attention, "(layers, heads, L, L)")
    if not 0.0 <= residual < 1.0:
        raise ValueError(f"residual is {residual} but must be in [0, 1) (the paper uses 0.5)")
    n_layers, _, L, _ = attention.shape
    if n_layers == 0:
        raise ValueError("attention has 0 layers: a model with fusion_layers=0 has no attention")
    eye = torch.eye(L, dtype=torch.float32, device=attention.device)  # (L, L)
    rollout = eye
    for w in attention.float().mean(dim=1):  # (L, L) per layer, heads averaged
        a = (1.0 - residual) * w + residual * eye  # (L, L)
        a = a / a.sum(dim=-1, keepdim=True)  # (L, L) rows sum to 1
        rollout = a @ rollout  # (L, L) later layers on the left
    return rollout  # (L, L)


def attention_grounding(
    word_frame: torch.Tensor,
    gold_frames: torch.Tensor,
    token_mask: torch.Tensor,
    video_mask: torch.Tensor | None = None,
) -> ClipGrounding:
    """Grounding of one caption from a word -> frame attention block (n, m).

    The same rule as the grounding from token . frame similarity (`alignment.clip_grounding`,
    `metrics.grounding_counts`): a scored token (in token_mask, with >= 1 gold frame) is
    correct when its most-attended real frame is a gold frame; ties go to the earliest frame.
    """
    return clip_grounding(word_frame, gold_frames, token_mask, video_mask)


def clip_accuracies(
    matrices: torch.Tensor,
    gold_frames: torch.Tensor,
    token_mask: torch.Tensor,
    video_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip grounding accuracy over a split: (accuracy (N,), scored (N,)).

    matrices: (N, n, m) any word x frame matrix per clip (similarity, a view of it, or
    attention); gold_frames: bool (N, n, m); token_mask: bool (N, n); video_mask: bool (N, m).
    Clip i's accuracy is `metrics.grounding_counts` on row i alone (correct / scored); NaN
    where the clip has no scored token, so that a histogram can drop it (never a fake 0).
    """
    require_dims("matrices", matrices, "(N, n, m)")
    require_float("matrices", matrices)
    for name, t in (("gold_frames", gold_frames), ("token_mask", token_mask)):
        require_bool(name, t)
    require_bool("video_mask", video_mask)
    N, n, m = matrices.shape
    if gold_frames.shape != matrices.shape or token_mask.shape != (N, n):
        raise ValueError(
            f"gold_frames {shape_str(gold_frames)} and token_mask {shape_str(token_mask)} must "
            f"be {(N, n, m)} and {(N, n)} for matrices of shape {shape_str(matrices)}"
        )
    if video_mask.shape != (N, m):
        raise ValueError(
            f"video_mask has shape {shape_str(video_mask)} but must be {(N, m)}: one entry "
            "per frame of each clip"
        )
    gold = gold_frames & video_mask[:, None, :]  # (N, n, m)
    scored = token_mask & gold.any(dim=2)  # (N, n)
    best = matrices.float().masked_fill(~video_mask[:, None, :], float("-inf")).argmax(2)  # (N, n)
    hit = gold.gather(2, best[..., None]).squeeze(2) & scored  # (N, n)
    n_scored = scored.sum(1)  # (N,)
    acc = hit.sum(1).float() / n_scored.clamp_min(1).float()  # (N,)
    return acc.masked_fill(n_scored == 0, float("nan")), n_scored


def caption_words(text_mask: torch.Tensor) -> torch.Tensor:
    """The real words of each caption: text_mask without [CLS] (first) and [SEP] (last real).

    text_mask: bool (N, n), real tokens a prefix of each row. -> bool (N, n).
    """
    require_bool("text_mask", text_mask)
    require_dims("text_mask", text_mask, "(N, n)")
    words = text_mask.clone()
    words[:, 0] = False
    last = (text_mask.sum(1) - 1).clamp_min(0)  # (N,) index of [SEP]
    words[torch.arange(words.shape[0]), last] = False
    return words  # (N, n)


@torch.no_grad()
def split_clip_accuracies(
    model, emb, view: str = "dot", tau: float = 1.0, chunk: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each clip's grounding accuracy on its own caption, under one explorer view.

    model: a TacoModel (used only by the attention views); emb: `inference.Embedded` of a
    split. view: one of `alignment.VIEWS` (on y^p . x^k; tau for the softmax views) or
    `ATTENTION_VIEWS` (f_m's word -> frame block, heads and layers averaged, or the rollout).
    The scored tokens are the caption's words with gold frames, as in the alignment explorer
    with "all words". Returns (accuracy (N,) with NaN where no word has a gold frame, scored
    (N,)), as `clip_accuracies`.
    """
    if view not in VIEWS and view not in ATTENTION_VIEWS:
        raise ValueError(f"view is {view!r} but must be one of {VIEWS + ATTENTION_VIEWS}")
    N, n, _ = emb.text_tokens.shape
    m = emb.video_tokens.shape[1]
    words = caption_words(emb.text_mask)  # (N, n)
    mats = torch.zeros(N, n, m)  # (N, n, m) the view's matrix per clip, padding 0
    if view in VIEWS:
        sim = torch.einsum("ipd,ikd->ipk", emb.text_tokens.float(), emb.video_tokens.float())
        for i in range(N):
            mats[i] = apply_view(sim[i], view, tau, emb.video_mask[i], words[i])  # (n, m)
    else:
        if model.training:
            raise ValueError("the model is in training mode (dropout on): call model.eval() first")
        for a0 in range(0, N, chunk):
            sl = slice(a0, min(N, a0 + chunk))
            tm, vm = emb.text_mask[sl], emb.video_mask[sl]  # (A, n), (A, m)
            _, att = model.fuse(
                emb.text_tokens[sl].to(next(model.parameters()).device), tm,
                emb.video_tokens[sl].to(next(model.parameters()).device), vm,
                return_attention=True,
            )  # fmt: skip  # (layers, A, heads, n + m, n + m)
            att = att.float().cpu()
            for a in range(att.shape[1]):
                one = att[:, a]  # (layers, heads, n + m, n + m)
                full = (
                    attention_rollout(one) if view == "rollout" else select_heads(one, None, None)
                )
                mats[a0 + a] = word_frame_block(full, tm[a], vm[a])  # (n, m)
    return clip_accuracies(mats, emb.gold_frames, words, emb.video_mask)
