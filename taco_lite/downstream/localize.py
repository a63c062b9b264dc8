"""Step localization, CrossTask-style (paper Sec. 4.4; docs/method.md §6): one time per step.

A video follows a task, an ordered list of S steps. From a trained model we build a
frame x step similarity matrix sim[T, S] and predict one time t_s per step. A step is found
when t_s falls inside its gold segment; recall is averaged per video, then per task.

Three scores, each a variant of a TACo score with the "video" shrunk to one frame t:

- `sentence`: text_global_s . x_t                       (s1 with x_bar replaced by frame t)
- `token`:    sum_p w[s, p] * y_s^p . x_t                (s2 without the max over frames: the
  idf weights over the tokens of interest, Eq. 4. A caption with no token of interest falls
  back to uniform weights over its words, so that no step is left without a score.)
- `fusion`:   w . f_m(y_s, x_[t - width//2, t - width//2 + width))[CLS]   (s3 on a short window
  centred on t, cut at the clip's ends; the window's tokens are sliced from the clip's tokens)

Two decoders, both pure functions of sim:

- `argmax_times`: each step independently takes its best frame (ties -> the earliest frame).
- `ordered_times`: the dynamic programme of CrossTask's evaluation (Zhukov et al., CVPR 2019):
  every step takes exactly one time, times strictly increase in step order, and the sum of the
  chosen similarities is maximal. Ties -> the lexicographically smallest time vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

VARIANTS = ("token", "sentence", "fusion")
DECODERS = ("argmax", "ordered")


# ------------------------------------------------------------------------------ decoders


def _as_matrix(sim: Any) -> np.ndarray:
    """A float64 numpy copy of a [T, S] matrix (numpy or torch); NaN is refused."""
    arr = sim.detach().cpu().double().numpy() if torch.is_tensor(sim) else np.asarray(sim, float)
    if arr.ndim != 2:
        raise ValueError(
            f"sim has shape {arr.shape} but must be 2-D [T, S]: one row per frame, one column "
            "per step"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"sim has shape {arr.shape}: it needs at least one frame and one step")
    if np.isnan(arr).any():
        raise ValueError("sim holds NaN: check the model's scores before decoding")
    return arr


def argmax_times(sim: Any) -> np.ndarray:
    """Per step, the frame of highest similarity; ties go to the earliest frame.

    sim: [T, S]. Returns int64 [S]. Steps are independent: two steps may share a frame and
    the order of the task is ignored.
    """
    return _as_matrix(sim).argmax(axis=0).astype(np.int64)  # numpy: first maximum wins


def ordered_times(sim: Any) -> np.ndarray:
    """The ordered assignment: t_0 < t_1 < ... < t_{S-1} maximising sum_s sim[t_s, s].

    This is the decoder of CrossTask's official evaluation. sim: [T, S] with T >= S.
    Returns int64 [S]. O(T * S) time.

    Why backwards: V[s, t] = the best total of steps s..S-1 when step s sits at frame t. Then
    V[s, t] = sim[t, s] + max_{t' > t} V[s + 1, t'] (a suffix maximum). Reading the times
    forwards, each step takes the *earliest* frame that reaches the best total, which makes
    the answer the lexicographically smallest optimum (deterministic on ties).
    """
    a = _as_matrix(sim)
    T, S = a.shape
    if T < S:
        raise ValueError(
            f"sim has T={T} frames but S={S} steps: an ordered assignment gives every step its "
            "own frame, so it needs T >= S (use argmax_times, or fewer steps)"
        )
    V = np.full((S, T), -np.inf)  # (S, T)
    V[S - 1] = a[:, S - 1]
    for s in range(S - 2, -1, -1):
        nxt = V[s + 1]
        # best[t] = max over t' > t of V[s + 1, t']: a reversed running maximum, shifted by one
        suffix = np.maximum.accumulate(nxt[::-1])[::-1]  # (T,) max over t' >= t
        best = np.full(T, -np.inf)
        best[:-1] = suffix[1:]
        V[s] = a[:, s] + best
    times = np.empty(S, dtype=np.int64)
    lo = 0
    for s in range(S):
        # the optimum total given the earlier choices: the best V[s, t] with t >= lo
        hi = T - (S - 1 - s)  # later steps need a frame each
        row = V[s, lo:hi]
        t = lo + int(np.argmax(row))  # first maximum = earliest frame
        times[s] = t
        lo = t + 1
    return times


def evenly_spaced_times(T: int, S: int) -> np.ndarray:
    """The order-only baseline: step s at the centre of the s-th of S equal parts of [0, T).

    It uses no model at all, only the number of steps and their order. In the toy world, where
    steps have similar lengths, it is a strong baseline that any score must beat.
    """
    if T < 1 or S < 1:
        raise ValueError(f"need T >= 1 frames and S >= 1 steps, got T={T}, S={S}")
    return np.floor((np.arange(S) + 0.5) * T / S).astype(np.int64)


def decode(sim: Any, decoder: str) -> np.ndarray:
    """`argmax_times` or `ordered_times`, by name ("argmax" or "ordered")."""
    if decoder == "argmax":
        return argmax_times(sim)
    if decoder == "ordered":
        return ordered_times(sim)
    raise ValueError(f"decoder is {decoder!r} but must be one of {DECODERS}")


# ------------------------------------------------------------------------------ recall


def gold_from_segments(T: int, starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
    """bool [T, S]: gold[t, s] is True when frame t lies in step s's segment [start, end).

    A zero-length segment (start == end) gives an empty column: that step can never be hit.
    Frames outside [0, T) are cut.
    """
    if len(starts) != len(ends):
        raise ValueError(f"{len(starts)} starts but {len(ends)} ends: give one of each per step")
    gold = np.zeros((T, len(starts)), dtype=bool)
    for s, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if b < a:
            raise ValueError(
                f"step {s} ends at {b} before it starts at {a}: segments are [start, end)"
            )
        gold[max(0, a) : min(T, b), s] = True
    return gold


def step_hits(times: Sequence[int] | np.ndarray, gold: np.ndarray) -> np.ndarray:
    """bool [S]: did step s's predicted time land on one of its gold frames?

    times: [S] frame indices; gold: bool [T, S]. A step with no gold frame is always a miss.
    """
    times = np.asarray(times, dtype=np.int64)
    gold = np.asarray(gold, dtype=bool)
    if gold.ndim != 2 or times.shape != (gold.shape[1],):
        raise ValueError(
            f"times has shape {times.shape} but gold is {gold.shape}: need times [S] and "
            "gold [T, S], one predicted frame per step"
        )
    T = gold.shape[0]
    if times.size and (times.min() < 0 or times.max() >= T):
        raise ValueError(f"times {times.tolist()} fall outside the video's {T} frames")
    return gold[times, np.arange(gold.shape[1])]  # (S,)


def video_recall(
    times: Sequence[int] | np.ndarray, gold: np.ndarray, skip_absent: bool = False
) -> float | None:
    """Fraction of steps found in one video (0-1).

    skip_absent=False (the kit's world): a step with an empty gold segment stays in the
    denominator and counts as a miss. skip_absent=True (CrossTask's convention, where a
    task's step may not happen in a video): such steps leave the denominator, and a video
    with no annotated step at all returns None (it is skipped, never a NaN).
    """
    hits = step_hits(times, gold)
    present = np.asarray(gold, dtype=bool).any(axis=0)  # (S,)
    if skip_absent:
        hits, total = hits[present], int(present.sum())
    else:
        total = hits.size
    if total == 0:
        return None
    return float(hits.sum()) / total


def average_recall(videos: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Average recall in percent over (task, times [S], gold [T, S]) triples.

    "recall": mean over tasks of (mean over that task's videos of the video's recall), as
    docs/method.md §6 asks. "recall_pooled": mean over tasks of (steps found / steps annotated,
    pooled over the task's videos): the formula of CrossTask's official `get_recalls`.
    A step with no gold frame is a miss in "recall" and left out of "recall_pooled" (CrossTask
    only counts the steps that happen), see `video_recall`.
    """
    per_video: dict[str, list[float]] = {}
    pooled: dict[str, list[int]] = {}
    for task, times, gold in videos:
        r = video_recall(times, gold)
        if r is not None:
            per_video.setdefault(task, []).append(r)
        present = np.asarray(gold, dtype=bool).any(axis=0)
        hits = step_hits(times, gold)
        acc = pooled.setdefault(task, [0, 0])
        acc[0] += int(hits[present].sum())
        acc[1] += int(present.sum())
    if not per_video:
        raise ValueError("no video with at least one step: nothing to average")
    per_task = {t: 100.0 * float(np.mean(v)) for t, v in sorted(per_video.items())}
    pooled_task = {t: 100.0 * h / n for t, (h, n) in sorted(pooled.items()) if n}
    return {
        "recall": float(np.mean(list(per_task.values()))),
        "recall_pooled": float(np.mean(list(pooled_task.values()))) if pooled_task else 0.0,
        "per_task": per_task,
        "videos": sum(len(v) for v in per_video.values()),
    }


def chance_recall(gold: np.ndarray) -> float:
    """Expected recall (0-1) of one video if every step took a uniformly random frame."""
    gold = np.asarray(gold, dtype=bool)
    return float(gold.mean(axis=0).mean())


# ------------------------------------------------------------------------------ model glue


def frames_as_input(frames: Any) -> torch.Tensor:
    """World frames uint8 [T, H, W, 3] -> float [T, 3, H, W] in [0, 1]; features [T, D] as is."""
    x = frames if torch.is_tensor(frames) else torch.from_numpy(np.array(frames))  # a copy:
    # world frames and memory-mapped features are read-only arrays
    if x.dtype == torch.uint8:
        if x.dim() != 4 or x.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be [T, H, W, 3], got {tuple(x.shape)}")
        return x.permute(0, 3, 1, 2).float().div(255.0)  # (T, 3, H, W)
    if x.dim() not in (2, 4):
        raise ValueError(
            f"frames have shape {tuple(x.shape)}: expected uint8 [T, H, W, 3] pixels, float "
            "[T, 3, H, W] pixels, or float [T, D] features"
        )
    return x.float()


@torch.no_grad()
def encode_clip(
    model: Any, frames: Any, window: int | None = None, normalize: bool | None = None
) -> torch.Tensor:
    """Per-frame video_tokens [T, d] of a whole clip, encoded in consecutive windows.

    The model has learned positions for `max_frames` frames only, so a longer clip is cut into
    non-overlapping windows of `window` (default: max_frames) frames, each encoded on its own.
    normalize: L2-normalise each token (default: the model's `cfg.normalize`, as in `embed`).
    """
    x = frames_as_input(frames)
    T = x.shape[0]
    cap = model.cfg.max_frames
    window = cap if window is None else window
    if not 1 <= window <= cap:
        raise ValueError(f"window is {window} but must be in [1, max_frames={cap}]")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = []
    try:
        for t0 in range(0, T, window):
            chunk = x[t0 : t0 + window].unsqueeze(0).to(device)  # (1, w, ...)
            mask = torch.ones(1, chunk.shape[1], dtype=torch.bool, device=device)  # (1, w)
            parts.append(model.encode_video(chunk, mask)[0].float().cpu())  # (w, d)
    finally:
        model.train(was_training)
    tokens = torch.cat(parts)  # (T, d)
    if model.cfg.normalize if normalize is None else normalize:
        tokens = F.normalize(tokens, dim=-1)
    return tokens


@torch.no_grad()
def encode_steps(model: Any, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """text_tokens [S, n, d] of the step captions, normalised like `TacoModel.embed`."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        y = model.encode_text(text_ids.to(device), text_mask.to(device)).float().cpu()
    finally:
        model.train(was_training)
    return F.normalize(y, dim=-1) if model.cfg.normalize else y  # (S, n, d)


def sentence_similarity(text_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
    """sim [T, S] = text_global_s . x_t, text_global = the [CLS] output (docs/method.md §2)."""
    return video_tokens @ text_tokens[:, 0].T  # (T, d) @ (d, S) -> (T, S)


def token_similarity(
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
    token_weights: torch.Tensor,
    video_tokens: torch.Tensor,
) -> torch.Tensor:
    """sim [T, S] = sum_p w[s, p] * y_s^p . x_t (the weighted token score of Eq. 4, per frame).

    A caption whose weights are all 0 (no token of interest) gets uniform weights over its
    words ([CLS]/[SEP] excluded), so it still has a score.
    """
    S, n, _ = text_tokens.shape
    if token_weights.shape != (S, n) or text_mask.shape != (S, n):
        raise ValueError(
            f"token_weights {tuple(token_weights.shape)} and text_mask {tuple(text_mask.shape)} "
            f"must both be (S, n) = {(S, n)}: one entry per token of text_tokens"
        )
    w = token_weights.float().clone()  # (S, n)
    empty = w.sum(1) <= 0  # (S,)
    if empty.any():
        words = text_mask.clone()
        words[:, 0] = False  # [CLS]
        words[torch.arange(S), text_mask.sum(1) - 1] = False  # [SEP]
        fallback = words.float() / words.float().sum(1, keepdim=True).clamp_min(1.0)
        w[empty] = fallback[empty]
    per_token = torch.einsum("spd,td->spt", text_tokens, video_tokens)  # (S, n, T)
    return (w[:, :, None] * per_token).sum(1).T  # (T, S)


@torch.no_grad()
def fusion_similarity(
    model: Any,
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
    video_tokens: torch.Tensor,
    width: int,
    chunk: int = 1024,
) -> torch.Tensor:
    """sim [T, S] = fusion score of caption s with the window of `width` frames centred on t.

    Window of frame t: [t - width // 2, t - width // 2 + width), cut at 0 and T (masked).
    Costs T * S fusion passes, `chunk` pairs per call.
    """
    T, S = video_tokens.shape[0], text_tokens.shape[0]
    if width < 1 or width > model.cfg.max_frames:
        raise ValueError(f"width is {width} but must be in [1, max_frames={model.cfg.max_frames}]")
    offs = torch.arange(width) - width // 2  # (w,)
    idx = torch.arange(T)[:, None] + offs[None, :]  # (T, w) frame index of each window slot
    valid = (idx >= 0) & (idx < T)  # (T, w)
    # left-align each window's real frames so that masks start with True (positions 0..)
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)  # (T, w)
    idx, valid = idx.gather(1, order), valid.gather(1, order)
    windows = video_tokens[idx.clamp(0, T - 1)] * valid[..., None]  # (T, w, d)
    ti = torch.arange(S).repeat_interleave(T)  # (S*T,) step of each pair
    vi = torch.arange(T).repeat(S)  # (S*T,) frame of each pair
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for a0 in range(0, ti.numel(), chunk):
            t_i, v_i = ti[a0 : a0 + chunk], vi[a0 : a0 + chunk]
            logits = model.fuse(
                text_tokens[t_i].to(device),
                text_mask[t_i].to(device),
                windows[v_i].to(device),
                valid[v_i].to(device),
            )  # (A,)
            out.append(logits.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).view(S, T).T  # (T, S)


def step_similarities(
    model: Any,
    frames: Any,
    text: dict[str, torch.Tensor],
    variants: Sequence[str] = VARIANTS,
    fusion_width: int = 8,
    window: int | None = None,
) -> dict[str, torch.Tensor]:
    """{variant: sim [T, S]} for one clip and its S step captions.

    text: {"text_ids" (S, n), "text_mask" (S, n), "token_weights" (S, n)} (see
    `downstream_data.encode_captions`). The clip is encoded once and shared by every variant.
    """
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown variant(s) {bad}: choose from {VARIANTS}")
    x = encode_clip(model, frames, window)  # (T, d)
    y = encode_steps(model, text["text_ids"], text["text_mask"])  # (S, n, d)
    out: dict[str, torch.Tensor] = {}
    for v in variants:
        if v == "sentence":
            out[v] = sentence_similarity(y, x)
        elif v == "token":
            out[v] = token_similarity(y, text["text_mask"], text["token_weights"], x)
        else:
            width = min(fusion_width, model.cfg.max_frames)
            out[v] = fusion_similarity(model, y, text["text_mask"], x, width)
    return out
