"""Scene scripts: clips made of steps, steps made of events, plus tasks, twins and splits.

A *clip* follows one task template (an ordered list of step verbs, as CrossTask tasks are
ordered lists of steps). Each *step* is a segment of 6-10 frames with one caption, like a
YouCook2 annotated segment; background frames may sit between steps. A step shows 1 or 2
*events* (an object performing a verb in a time window), maybe a static object that the
caption mentions, and distractor objects that it does not mention (which may move too).

Everything is drawn from one `numpy.random.default_rng(seed)`, in a fixed order, so the
same `WorldConfig` always gives the same script. The script is plain JSON (see `io.py`);
`render.py` turns it into frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import grammar
from .types import FORMAT_VERSION, SPLITS, TASKS, World, WorldConfig

GRID = (6, 16, 26)  # cell centres (pixels) of the 3x3 placement grid
NEEDS: dict[str, tuple[int, int] | None] = {  # (drow, dcol) of the cell a motion passes into
    "fall": (1, 0),
    "rise": (-1, 0),
    "jump": (-1, 0),
    "slide": (0, 1),
}


def _choose(rng: np.random.Generator, options: list | tuple) -> Any:
    return options[int(rng.integers(len(options)))]


def heldout_pairs(rng: np.random.Generator, frac: float) -> list[tuple[str, str]]:
    """About `frac` of all (noun, verb) pairs (at most two per noun): the first pairs give
    each verb one held-out noun, so that a comp clip can be built for every task."""
    nouns, verbs = list(grammar.NOUNS), list(grammar.VERBS)
    target = min(round(frac * len(nouns) * len(verbs)), 2 * len(nouns))
    if target == 0:
        return []
    pairs: list[tuple[str, str]] = []
    per_noun = dict.fromkeys(nouns, 0)
    order = [nouns[i] for i in rng.permutation(len(nouns))]
    for k, v in enumerate(verbs):  # one noun per verb, all different
        if len(pairs) >= target:
            break
        n = order[k % len(order)]
        pairs.append((n, v))
        per_noun[n] += 1
    while len(pairs) < target:
        n, v = _choose(rng, nouns), _choose(rng, verbs)
        if (n, v) not in pairs and per_noun[n] < 2:
            pairs.append((n, v))
            per_noun[n] += 1
    return sorted(pairs, key=lambda p: (verbs.index(p[1]), nouns.index(p[0])))


class _Retry(Exception):
    """This draw of a step did not fit (grid full, forbidden pair): draw again."""


def _place(rng: np.random.Generator, objects: list[dict]) -> None:
    """Give every object a free grid cell (and the cell its motion moves into), jittered."""
    free = {(r, c) for r in range(3) for c in range(3)}
    for obj in objects:
        need = NEEDS.get(obj["verb"] or "")
        cells = []
        for r, c in sorted(free):
            if need is None:
                cells.append(((r, c),))
            elif (r + need[0], c + need[1]) in free:
                cells.append(((r, c), (r + need[0], c + need[1])))
        if not cells:
            raise _Retry
        chosen = _choose(rng, cells)
        free -= set(chosen)
        r, c = chosen[0]
        obj["x"] = GRID[c] + int(rng.integers(-1, 2))
        obj["y"] = GRID[r] + int(rng.integers(-1, 2))


def _window(
    rng: np.random.Generator, lo: int, hi: int, min_len: int, max_len: int
) -> tuple[int, int]:
    """A random [s, e) inside [lo, hi) with min_len <= e - s <= max_len."""
    length = int(rng.integers(min_len, min(max_len, hi - lo) + 1))
    s = int(rng.integers(lo, hi - length + 1))
    return s, s + length


def _new_object(rng: np.random.Generator, shape: str, role: str) -> dict:
    return {
        "role": role,
        "shape": shape,
        "colour": _choose(rng, grammar.COLOURS),
        "size": _choose(rng, grammar.SIZES),
        "verb": None,
        "t0": 0,
        "t1": 0,
        "ws": 0,
        "we": 0,
        "x": 0,
        "y": 0,
    }


def _mention(rng: np.random.Generator, i: int, obj: dict) -> grammar.Mention:
    colour = obj["colour"] if rng.random() < 0.6 else None
    size = obj["size"] if rng.random() < 0.35 else None
    return grammar.Mention(i, _choose(rng, grammar.NOUNS[obj["shape"]]), colour, size)


def _draw_step(
    rng: np.random.Generator,
    cfg: WorldConfig,
    verb: str,
    m: int,
    forbidden: set[tuple[str, str]],
    forced_noun: str | None,
) -> dict:
    """One step's scene and caption; raises _Retry when the draw does not fit."""
    shapes = list(grammar.NOUNS)
    verbs = list(grammar.VERBS)
    two = rng.random() < cfg.two_event_prob
    ev_verbs = [verb, _choose(rng, verbs)] if two else [verb]
    n_static = 1 if (not two and rng.random() < cfg.static_mention_prob) else 0
    n_obj = len(ev_verbs) + n_static + cfg.num_distractors
    order = [shapes[i] for i in rng.permutation(len(shapes))[:n_obj]]
    if forced_noun is not None:
        order = [forced_noun] + [s for s in order if s != forced_noun][: n_obj - 1]
    objects = [_new_object(rng, s, "actor") for s in order[: len(ev_verbs)]]
    objects += [
        _new_object(rng, s, "static") for s in order[len(ev_verbs) : len(ev_verbs) + n_static]
    ]
    objects += [_new_object(rng, s, "distractor") for s in order[len(ev_verbs) + n_static :]]

    # timing: event windows in order, actors visible around their window
    if two:
        w1 = int(rng.integers(3, min(5, m - 3) + 1))
        s1, e1 = _window(rng, 0, m - 3, w1, w1)
        s2, e2 = _window(rng, e1, m, 3, 5)
        windows = [(s1, e1), (s2, e2)]
    else:
        windows = [_window(rng, 0, m, 4, m - 2)]
    for obj, v, (s, e) in zip(objects, ev_verbs, windows, strict=False):
        obj.update(verb=v, ws=s, we=e)
        obj["t0"] = max(0, s - int(rng.integers(0, 3)))
        obj["t1"] = min(m, e + int(rng.integers(0, 3)))
    for obj in objects[len(ev_verbs) :]:
        if obj["role"] == "static":
            obj["t0"], obj["t1"] = _window(rng, 0, m, max(3, m // 2), m)
        else:
            obj["t0"], obj["t1"] = _window(rng, 0, m, 3, m)
            if rng.random() < cfg.distractor_action_prob:
                obj["verb"] = _choose(rng, verbs)
                obj["ws"], obj["we"] = _window(rng, obj["t0"], obj["t1"], 3, 6)
    for obj in objects:
        if obj["verb"] is not None and (obj["shape"], obj["verb"]) in forbidden:
            raise _Retry
    _place(rng, objects)

    actors = [
        (_mention(rng, i, objects[i]), _choose(rng, grammar.VERBS[v]))
        for i, v in enumerate(ev_verbs)
    ]
    static = _mention(rng, len(ev_verbs), objects[len(ev_verbs)]) if n_static else None
    tokens = grammar.build_caption(rng, actors, static)
    return {"objects": objects, "tokens": tokens, "n_events": len(ev_verbs), "m": m}


def _step_from_twin(
    rng: np.random.Generator,
    source: dict,
    verb: str,
    forbidden: set[tuple[str, str]],
) -> dict | None:
    """A copy of `source` (scene + caption) with exactly one noun or one verb changed.

    If the source's first event already has this step's verb, a noun changes (the shape on
    screen and the word); otherwise the first event's verb becomes `verb`. None if no change
    fits (grid cell, forbidden pair, "a"/"an" agreement).
    """
    objects = [dict(o) for o in source["objects"]]
    tokens = [grammar.Token(w, p, tuple(r) if r else None) for w, p, r in source["tokens"]]
    if objects[0]["verb"] != verb:
        if NEEDS.get(verb) is not None and NEEDS.get(verb) != NEEDS.get(objects[0]["verb"] or ""):
            return None  # the new motion may need a grid cell that is taken
        objects[0]["verb"] = verb
        k = next(i for i, t in enumerate(tokens) if t.ref == ("event", 0))
        tokens[k] = grammar.Token(_choose(rng, grammar.VERBS[verb]), "VERB", ("event", 0))
    else:
        named = [i for i, t in enumerate(tokens) if t.ref is not None and t.ref[0] == "obj"]
        k = _choose(rng, named)
        oi = tokens[k].ref[1]
        used = {o["shape"] for o in objects}
        options = [s for s in grammar.NOUNS if s not in used]
        rng.shuffle(options)
        for shape in options:
            word = _choose(rng, grammar.NOUNS[shape])
            prev = tokens[k - 1].word.lower()
            if prev in ("a", "an") and (prev == "an") != (word[0] in "aeiou"):
                continue
            objects[oi]["shape"] = shape
            tokens[k] = grammar.Token(word, "NOUN", ("obj", oi))
            break
        else:
            return None
    for obj in objects:
        if obj["verb"] is not None and (obj["shape"], obj["verb"]) in forbidden:
            return None
    return {"objects": objects, "tokens": tokens, "n_events": source["n_events"], "m": source["m"]}


def _segment_record(
    step: dict, seg_id: int, clip_id: int, k: int, start: int, split: str, twin_of: int | None
) -> dict:
    objects, tokens, m = step["objects"], step["tokens"], step["m"]
    gold_frames: list[list[int]] = []
    for t in tokens:
        if t.ref is None:
            gold_frames.append([])
        elif t.ref[0] == "obj":
            o = objects[t.ref[1]]
            gold_frames.append(list(range(o["t0"], o["t1"])))
        else:
            o = objects[t.ref[1]]  # event j is performed by object j
            gold_frames.append(list(range(o["ws"], o["we"])))
    nouns = [objects[t.ref[1]]["shape"] for t in tokens if t.ref and t.ref[0] == "obj"]
    verbs = [objects[t.ref[1]]["verb"] for t in tokens if t.ref and t.ref[0] == "event"]
    return {
        "seg_id": seg_id,
        "clip_id": clip_id,
        "step": k,
        "start": start,
        "end": start + m,
        "caption": grammar.detokenize(tokens),
        "words": [t.word for t in tokens],
        "gold_pos": [t.upos for t in tokens],
        "gold_frames": gold_frames,
        "nouns": nouns,
        "verbs": verbs,
        "twin_of": twin_of,
        "split": split,
        "n_events": step["n_events"],
        "events": [
            {"obj": j, "noun": objects[j]["shape"], "verb": objects[j]["verb"]}
            for j in range(step["n_events"])
        ],
        "refs": [list(t.ref) if t.ref else None for t in tokens],
        "objects": objects,
    }


def _clip_splits(rng: np.random.Generator, cfg: WorldConfig, has_heldout: bool) -> list[str]:
    """Exact numbers of clips per split (rounded fractions), in a random order."""
    n = cfg.num_clips
    counts = {
        "comp": round(cfg.comp_frac * n) if has_heldout else 0,
        "val": round(cfg.val_frac * n),
        "test": round(cfg.test_frac * n),
    }
    names = [s for s in ("comp", "val", "test") for _ in range(counts[s])][:n]
    names += ["train"] * (n - len(names))
    return [names[i] for i in rng.permutation(n)]


def generate_script(
    cfg: WorldConfig, heldout: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The whole world as a JSON-serialisable dict (config, vocabulary, clips, segments...).

    heldout: the (noun, verb) pairs kept out of train/val/test, instead of the ones drawn from
    `cfg.seed`; extra worlds pass their base world's pairs so that no pair leaks out of comp
    (see `world.extra`). They are drawn and discarded all the same, so the random stream, and
    with it every shipped world, is unchanged.
    """
    if not isinstance(cfg, WorldConfig):
        raise TypeError(
            f"expected a WorldConfig, got {type(cfg).__name__}; try WorldConfig(seed=0)"
        )
    rng = np.random.default_rng(cfg.seed)
    verbs = list(grammar.VERBS)
    held = heldout_pairs(rng, cfg.heldout_frac)
    if heldout is not None:
        held = [(str(n), str(v)) for n, v in heldout]
    held_set = set(held)
    held_nouns = {v: [n for n, hv in held if hv == v] for v in verbs}
    task_names = list(TASKS)
    clips: list[dict] = []
    segments: list[dict] = []
    pools: dict[str, list[int]] = {s: [] for s in SPLITS}  # twin sources per split
    lo, hi = cfg.seg_len
    for clip_id, split in enumerate(_clip_splits(rng, cfg, bool(held))):
        task = _choose(rng, task_names)
        steps = TASKS[task]
        forced_step = -1
        if split == "comp":
            eligible = [k for k, v in enumerate(steps) if held_nouns[v]]
            if eligible:
                forced_step = _choose(rng, eligible)
            else:  # no held-out pair uses this task's verbs: an ordinary train clip
                split = "train"
        forbidden = set() if split == "comp" else held_set
        t = int(rng.integers(0, cfg.max_gap + 1))
        seg_ids, frame_labels = [], [0] * t
        for k, verb in enumerate(steps):
            m = int(rng.integers(lo, hi + 1))
            step, twin_of = None, None
            if k != forced_step and pools[split] and rng.random() < cfg.twin_frac:
                src = _choose(rng, pools[split])
                step = _step_from_twin(rng, segments[src]["_step"], verb, forbidden)
                twin_of = src if step is not None else None
            while step is None:
                forced = _choose(rng, held_nouns[verb]) if k == forced_step else None
                try:
                    step = _draw_step(rng, cfg, verb, m, forbidden, forced)
                except _Retry:
                    step = None
            seg_id = len(segments)
            rec = _segment_record(step, seg_id, clip_id, k, t, split, twin_of)
            rec["_step"] = dict(step, objects=[dict(o) for o in step["objects"]])
            segments.append(rec)
            pools[split].append(seg_id)
            seg_ids.append(seg_id)
            labels = [0] * (rec["end"] - rec["start"])
            for ev in reversed(rec["events"]):  # the first event wins where windows meet
                o = step["objects"][ev["obj"]]
                for f in range(o["ws"], o["we"]):
                    labels[f] = 1 + verbs.index(ev["verb"])
            frame_labels += labels
            t = rec["end"]
            gap = int(rng.integers(0, cfg.max_gap + 1))
            frame_labels += [0] * gap
            t += gap
        clips.append(
            {
                "clip_id": clip_id,
                "task": task,
                "split": split,
                "num_frames": t,
                "seg_ids": seg_ids,
                "frame_labels": frame_labels,
                "noise_seed": int(rng.integers(0, 2**62)),
            }
        )
    for rec in segments:
        del rec["_step"]
    return {
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "vocabulary": grammar.vocabulary(),
        "tasks": {k: list(v) for k, v in TASKS.items()},
        "heldout_pairs": [list(p) for p in held],
        "splits": {s: [r["seg_id"] for r in segments if r["split"] == s] for s in SPLITS},
        "clips": clips,
        "segments": segments,
    }


def generate_world(
    cfg: WorldConfig | None = None, heldout: list[tuple[str, str]] | None = None
) -> World:
    """Generate a world from its config (deterministic in cfg.seed). Frames render lazily.

    heldout: optional (noun, verb) pairs to hold out instead of the seed's own (see
    `generate_script`)."""
    return World(generate_script(cfg if cfg is not None else WorldConfig(), heldout=heldout))
