"""Videos for the two downstream tasks from the toy world (CrossTask and COIN: `real.py`).

Both tasks read whole videos, not segments:

- `LocalizationVideo` (CrossTask-style step localization): frames [T, ...], the task's ordered
  step descriptions (S captions) and the gold frames of each step, bool [T, S].
- `SegmentationVideo` (COIN-style action segmentation): frames [T, ...] and one label per
  frame, int [T] (0 = background).

`frames` is uint8 [T, H, W, 3] for the toy world and float [T, D] (one row per feature step,
memory-mapped) for real features. Layouts of the real releases are in docs/downstream.md.

In the toy world a clip's "task" is its task template (`World.tasks`, e.g. "bounce" = jump,
spin, fall): clips of one template share their canonical step order, as CrossTask videos of one
task do. Its step descriptions are the clip's own step captions, in that order.

The world's clips tile their steps almost evenly (6-10 frames a step, 0-3 background frames
between), so step order alone would find 99% of the steps. `world_localization_videos` therefore
re-lays each clip's steps out on a longer timeline (`StepLayout`): variable step durations, long
background gaps, two adjacent steps swapped in some videos, and distractor actions (steps of
other tasks, never described) between the steps. The frames are rendered from the same scene
scripts, so the world (and every checkpoint trained on it) is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_DOCS = "see docs/downstream.md for the expected layout"


@dataclass
class LocalizationVideo:
    video_id: str
    task: str
    frames: Any  # uint8 (T, H, W, 3) pixels or float (T, D) features
    step_captions: list[str]  # S step descriptions, in task order
    gold: np.ndarray  # bool (T, S): frame t belongs to step s

    @property
    def num_frames(self) -> int:
        return int(self.gold.shape[0])


@dataclass
class SegmentationVideo:
    video_id: str
    task: str
    frames: Any  # uint8 (T, H, W, 3) pixels or float (T, D) features
    labels: np.ndarray  # int64 (T,): 0 = background, else 1 + action class


# ------------------------------------------------------------------------------ the world


def world_clip_ids(world: Any, split: str) -> list[int]:
    """Clips whose segments are in `split` (splits are by clip, so a clip is all in one)."""
    segs = set(world.split(split))
    return [c.clip_id for c in world.clips if c.seg_ids and c.seg_ids[0] in segs]


@dataclass(frozen=True)
class StepLayout:
    """How `world_localization_videos` lays a clip's steps out on a new, longer timeline.

    Each of the clip's S steps keeps its scene (objects, motions, caption) but is re-timed:

    - `stretch`: its duration is multiplied by a factor drawn uniformly in [lo, hi] (the motion
      is rendered slower, not with repeated frames), so steps last 6-25 frames, not 6-10;
    - `gap`: background frames, uniform in [lo, hi], before the first step, between steps and
      after the last one;
    - `distractor_prob`: the chance that each gap also holds a distractor action: a step of
      another clip of the same split whose verbs are none of this task's verbs. It is never
      described, so a model must tell it from the steps;
    - `swap_prob`: the chance that two adjacent steps (a random pair) swap places, so a task's
      steps occur in more than one order. The step descriptions keep the task's canonical
      order, as CrossTask's do; gold follows where each step really is.

    Everything is drawn from `default_rng([seed, clip_id])`: the same world and layout always
    give the same videos. `StepLayout.identity()` keeps every step at its length, with no
    gaps, swaps or distractors.
    """

    stretch: tuple[float, float] = (1.0, 2.5)
    gap: tuple[int, int] = (0, 24)
    distractor_prob: float = 0.6
    swap_prob: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.stretch
        if not 0.5 <= lo <= hi:
            raise ValueError(f"stretch must be (lo, hi) with 0.5 <= lo <= hi, got {self.stretch}")
        glo, ghi = self.gap
        if not 0 <= glo <= ghi or int(glo) != glo or int(ghi) != ghi:
            raise ValueError(f"gap must be integers (lo, hi) with 0 <= lo <= hi, got {self.gap}")
        for name in ("distractor_prob", "swap_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"StepLayout.{name} must be in [0, 1], got {value}")

    @classmethod
    def identity(cls, seed: int = 0) -> StepLayout:
        return cls(stretch=(1.0, 1.0), gap=(0, 0), distractor_prob=0.0, swap_prob=0.0, seed=seed)


def _stretched(objects: list[dict], m: int, factor: float) -> tuple[list[dict], int]:
    """A step's objects re-timed by `factor` (times relative to the step), and its new length.

    Event windows keep >= 3 frames, the motion is a function of progress through the window
    (`world.render.object_state`), so a longer window renders the same motion, slower.
    """
    new_m = max(1, round(m * factor))
    out = []
    for obj in objects:
        o = dict(obj)
        o["t0"], o["t1"] = round(obj["t0"] * factor), min(new_m, round(obj["t1"] * factor))
        if obj.get("verb") is not None:
            ws = round(obj["ws"] * factor)
            we = min(new_m, max(ws + 3, round(obj["we"] * factor)))
            o["ws"], o["we"] = ws, we
        out.append(o)
    return out, new_m


def _distractor_pool(world: Any, clip_ids: Sequence[int]) -> dict[str, list[int]]:
    """{task: segment ids of the split whose verbs are none of that task's step verbs}."""
    segs = [s for c in clip_ids for s in world.clips[c].seg_ids]
    pool = {}
    for task, verbs in world.tasks.items():
        pool[task] = [
            s
            for s in segs
            if not set(world.segment_script(s)["verbs"]) & set(verbs)
            and all(e["verb"] not in verbs for e in world.segment_script(s)["events"])
        ]
    return pool


def layout_clip(
    world: Any, clip_id: int, layout: StepLayout, pool: dict[str, list[int]] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One clip's steps re-laid out by `layout`: frames uint8 (T, 32, 32, 3), gold bool (T, S).

    Also returns a record of the layout: {"order": step index at each slot, "steps": [(start,
    end)] per step in task order, "distractors": [(seg_id, start, end)]}.
    """
    from taco_lite.world.render import render_clip

    clip = world.clips[clip_id]
    rng = np.random.default_rng([layout.seed, clip_id])
    S = len(clip.seg_ids)
    order = list(range(S))
    if S >= 2 and rng.random() < layout.swap_prob:
        k = int(rng.integers(S - 1))
        order[k], order[k + 1] = order[k + 1], order[k]
    if pool is None:
        pool = _distractor_pool(world, world_clip_ids(world, clip.split))
    candidates = pool.get(clip.task, [])
    lo, hi = layout.stretch
    glo, ghi = layout.gap

    def gap_and_distractor(t: int, pieces: list, distractors: list) -> int:
        t += int(rng.integers(glo, ghi + 1))
        if candidates and rng.random() < layout.distractor_prob:
            sid = candidates[int(rng.integers(len(candidates)))]
            seg = world.segments[sid]
            objs, m = _stretched(world.segment_script(sid)["objects"], seg.num_frames,
                                 float(rng.uniform(lo, hi)))  # fmt: skip
            pieces.append((t, objs))
            distractors.append((sid, t, t + m))
            t += m + int(rng.integers(glo, ghi + 1))
        return t

    pieces: list[tuple[int, list[dict]]] = []
    distractors: list[tuple[int, int, int]] = []
    spans: list[tuple[int, int]] = [(0, 0)] * S
    t = int(rng.integers(glo, ghi + 1))
    for slot, k in enumerate(order):
        if slot > 0:
            t = gap_and_distractor(t, pieces, distractors)
        sid = clip.seg_ids[k]
        seg = world.segments[sid]
        objs, m = _stretched(world.segment_script(sid)["objects"], seg.num_frames,
                             float(rng.uniform(lo, hi)))  # fmt: skip
        pieces.append((t, objs))
        spans[k] = (t, t + m)
        t += m
    T = t + int(rng.integers(glo, ghi + 1))
    noise_seed = int(rng.integers(0, 2**62))
    frames = render_clip(T, pieces, world.config.noise, noise_seed)  # (T, 32, 32, 3)
    frames.flags.writeable = False
    from taco_lite.downstream.localize import gold_from_segments

    gold = gold_from_segments(T, [a for a, _ in spans], [b for _, b in spans])  # (T, S)
    return frames, gold, {"order": order, "steps": spans, "distractors": distractors}


def world_localization_videos(
    world: Any, split: str, layout: StepLayout | None = StepLayout()
) -> list[LocalizationVideo]:
    """One `LocalizationVideo` per clip of `split`; gold = each step's frames [start, end).

    layout: how the clip's steps are laid out (`StepLayout`, the default is the harder task
    that step order alone does not solve). layout=None gives the world's own clips, as
    generated (steps tiling the clip almost evenly).
    """
    from taco_lite.downstream.localize import gold_from_segments

    out = []
    clip_ids = world_clip_ids(world, split)
    if layout is not None:
        pool = _distractor_pool(world, clip_ids)
        for c in clip_ids:
            clip = world.clips[c]
            frames, gold, _ = layout_clip(world, c, layout, pool)
            captions = [world.segments[s].caption for s in clip.seg_ids]
            out.append(LocalizationVideo(f"clip{c}", clip.task, frames, captions, gold))
        return out
    for c in clip_ids:
        clip = world.clips[c]
        segs = [world.segments[s] for s in clip.seg_ids]
        gold = gold_from_segments(clip.num_frames, [s.start for s in segs], [s.end for s in segs])
        out.append(
            LocalizationVideo(
                video_id=f"clip{c}",
                task=clip.task,
                frames=world.clip_frames(c),
                step_captions=[s.caption for s in segs],
                gold=gold,
            )  # fmt: skip
        )
    return out


def world_segmentation_videos(world: Any, split: str) -> list[SegmentationVideo]:
    """One `SegmentationVideo` per clip of `split`, labels = `Clip.frame_labels`."""
    out = []
    for c in world_clip_ids(world, split):
        clip = world.clips[c]
        labels = np.asarray(clip.frame_labels, dtype=np.int64)
        out.append(SegmentationVideo(f"clip{c}", clip.task, world.clip_frames(c), labels))
    return out


def encode_captions(
    captions: Sequence[str],
    vocab: Any,
    idf: dict[str, float],
    pos_tags: str = "noun+verb",
    max_tokens: int = 32,
    tags: Sequence[Sequence[str]] | None = None,
) -> dict[str, torch.Tensor]:
    """Step captions -> padded {"text_ids", "text_mask", "token_weights"}, each (S, n).

    Encoded exactly as the training data (`data.encode_text_item`): the checkpoint's vocab,
    spaCy tags (or `tags`, one list per caption), idf weights over the tokens of interest.
    """
    from taco_lite.data import encode_text_item
    from taco_lite.text import tokenize
    from taco_lite.text.pos import parse_pos_tags, tag_captions

    if len(captions) == 0:
        raise ValueError("no captions to encode: a video needs at least one step description")
    token_lists = [tokenize(c) for c in captions]
    if tags is None:
        tags = tag_captions(list(captions))
    wanted = parse_pos_tags(pos_tags)
    items = [
        encode_text_item(tok, tg, vocab, idf, wanted, max_tokens)
        for tok, tg in zip(token_lists, tags, strict=True)
    ]
    S, n = len(items), max(it["text_ids"].numel() for it in items)
    text_ids = torch.zeros(S, n, dtype=torch.long)  # (S, n), [PAD] = 0
    text_mask = torch.zeros(S, n, dtype=torch.bool)  # (S, n)
    weights = torch.zeros(S, n)  # (S, n)
    for i, it in enumerate(items):
        k = it["text_ids"].numel()
        text_ids[i, :k], text_mask[i, :k], weights[i, :k] = (
            it["text_ids"], True, it["token_weights"],
        )  # fmt: skip
    return {"text_ids": text_ids, "text_mask": text_mask, "token_weights": weights}
