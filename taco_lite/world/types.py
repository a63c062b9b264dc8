"""The world's types: its config (every knob), clips, segments, and `World` itself.

A `World` is the scene script (plain JSON, see `io.py`) plus frames that `render.py` draws
lazily. `generate.py` writes the script; the constants here (format version, splits, tasks)
are shared by generation, io and the command line.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .render import FRAME_SIZE, render_clip

FORMAT_VERSION = 1
REGENERATE = "python -m taco_lite.world --seed 0 --out data/world"
SPLITS = ("train", "val", "test", "comp")

# task name -> ordered step verbs (canonical). The object slots are free.
TASKS: dict[str, tuple[str, ...]] = {
    "bounce": ("jump", "spin", "fall"),
    "inflate": ("grow", "blink", "shrink"),
    "vanish": ("shake", "fade"),
    "launch": ("rise", "slide"),
    "dance": ("spin", "shake", "jump", "blink"),
    "sink": ("slide", "fall"),
}


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the world, with the defaults of the shipped data/world.

    The difficulty knobs are `num_distractors`, `distractor_action_prob`, `noise` and
    `twin_frac`; the lead calibrates them on val.
    """

    seed: int = 0
    num_clips: int = 1200
    num_distractors: int = 1  # unmentioned objects per step
    distractor_action_prob: float = 0.1  # chance that a distractor performs a (silent) verb
    noise: int = 4  # per-pixel integer noise amplitude, uint8 units, uniform in [-noise, noise]
    twin_frac: float = 0.1  # fraction of steps copied from another step with one noun/verb changed
    two_event_prob: float = 0.3  # chance that a step shows two events
    static_mention_prob: float = 0.25  # chance that a one-event step names a static object
    heldout_frac: float = 0.12  # of the (noun, verb) pairs, held out for the comp split
    comp_frac: float = 0.1  # of the clips, built around a held-out pair
    val_frac: float = 0.1
    test_frac: float = 0.13
    seg_len: tuple[int, int] = (6, 10)  # inclusive range of step lengths (frames)
    max_gap: int = 3  # background frames before, between and after steps: 0..max_gap
    frame_size: int = FRAME_SIZE

    def __post_init__(self) -> None:
        for name in ("seed", "num_clips", "num_distractors", "noise", "max_gap", "frame_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"WorldConfig.{name} must be an int, got {value!r} ({type(value).__name__}); "
                    f"try WorldConfig({name}={_int_hint(value)})"
                )
            if value < 0:
                raise ValueError(f"WorldConfig.{name} must be >= 0, got {value}")
            object.__setattr__(self, name, int(value))
        for name in (
            "distractor_action_prob",
            "twin_frac",
            "two_event_prob",
            "static_mention_prob",
            "heldout_frac",
            "comp_frac",
            "val_frac",
            "test_frac",
        ):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be a number in [0, 1], got {value!r}")
        if self.comp_frac + self.val_frac + self.test_frac > 1.0:
            raise ValueError("comp_frac + val_frac + test_frac must be <= 1 (the rest is train)")
        lo, hi = self.seg_len
        if not 6 <= lo <= hi:
            raise ValueError(f"seg_len must be (lo, hi) with 6 <= lo <= hi, got {self.seg_len}")
        object.__setattr__(self, "seg_len", (int(lo), int(hi)))
        if self.frame_size != FRAME_SIZE:
            raise ValueError(f"only frame_size={FRAME_SIZE} is supported, got {self.frame_size}")
        if self.num_distractors > 4:
            raise ValueError(
                f"num_distractors must be <= 4 (the 3x3 grid fills up), got {self.num_distractors}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seg_len"] = list(self.seg_len)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        d = dict(d)
        if "seg_len" in d:
            d["seg_len"] = tuple(d["seg_len"])
        return cls(**d)


def _int_hint(value: Any) -> str:
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return "0"


@dataclass
class Segment:
    """One step of a clip: frames [start, end) of the clip and one caption."""

    seg_id: int
    clip_id: int
    start: int
    end: int
    caption: str
    words: list[str]
    gold_pos: list[str]
    gold_frames: list[list[int]]  # per word, frame indices relative to `start`
    nouns: list[str]  # canonical nouns named in the caption
    verbs: list[str]  # canonical verbs named in the caption
    twin_of: int | None
    split: str
    step: int = 0  # index of this step inside its clip / task

    @property
    def num_frames(self) -> int:
        return self.end - self.start


@dataclass
class Clip:
    clip_id: int
    task: str
    num_frames: int
    seg_ids: list[int]
    frame_labels: list[int]  # per frame: 0 background, else 1 + index of the verb in VERBS
    split: str = "train"
    noise_seed: int = 0


SEGMENT_FIELDS = tuple(Segment.__dataclass_fields__)
CLIP_FIELDS = tuple(Clip.__dataclass_fields__)


@dataclass
class World:
    """A generated or loaded world: the script (plain JSON) plus lazily rendered frames."""

    script: dict[str, Any]
    _frames: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        s = self.script
        self.version: int = s["format_version"]
        self.config = WorldConfig.from_dict(s["config"])
        self.vocabulary: dict[str, Any] = s["vocabulary"]
        self.tasks: dict[str, list[str]] = s["tasks"]
        self.heldout_pairs: list[tuple[str, str]] = [tuple(p) for p in s["heldout_pairs"]]
        self.segments = [Segment(**{k: d[k] for k in SEGMENT_FIELDS}) for d in s["segments"]]
        self.clips = [Clip(**{k: d[k] for k in CLIP_FIELDS}) for d in s["clips"]]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(self.split(k))}" for k in SPLITS)
        return f"World(seed={self.config.seed}, clips={len(self.clips)}, segments: {sizes})"

    @property
    def verb_names(self) -> list[str]:
        """Canonical verbs in frame-label order: label 1 + i is verb_names[i]."""
        return list(self.vocabulary["verbs"])

    def split(self, name: str) -> list[int]:
        """Segment indices of one split: "train", "val", "test" or "comp"."""
        if name not in self.script["splits"]:
            raise KeyError(f"unknown split {name!r}; the splits are {list(self.script['splits'])}")
        return list(self.script["splits"][name])

    def segment_script(self, seg_id: int) -> dict[str, Any]:
        """The raw scene script of one step: objects, events, tokens' references."""
        return self.script["segments"][seg_id]

    def clip_frames(self, clip_id: int) -> np.ndarray:
        """uint8 (T, 32, 32, 3), rendered on first use and cached (read-only)."""
        if not 0 <= clip_id < len(self.clips):
            raise IndexError(
                f"clip_id {clip_id} out of range: this world has {len(self.clips)} clips"
            )
        if clip_id not in self._frames:
            clip = self.clips[clip_id]
            segs = [
                (self.segments[i].start, self.script["segments"][i]["objects"])
                for i in clip.seg_ids
            ]
            frames = render_clip(clip.num_frames, segs, self.config.noise, clip.noise_seed)
            frames.flags.writeable = False
            self._frames[clip_id] = frames
        return self._frames[clip_id]

    def segment_frames(self, seg_id: int) -> np.ndarray:
        """uint8 (m, 32, 32, 3): the clip's frames [start, end) of this step."""
        if not 0 <= seg_id < len(self.segments):
            raise IndexError(
                f"seg_id {seg_id} out of range: this world has {len(self.segments)} segments"
            )
        seg = self.segments[seg_id]
        return self.clip_frames(seg.clip_id)[seg.start : seg.end]

    def render_all(self) -> None:
        """Render every clip once (about 100 MB for the default world)."""
        for c in range(len(self.clips)):
            self.clip_frames(c)

    def frames_sha256(self) -> str:
        """sha256 over all clips' frames in clip order: the manifest's frame checksum."""
        import hashlib

        h = hashlib.sha256()
        for c in range(len(self.clips)):
            h.update(np.ascontiguousarray(self.clip_frames(c)).tobytes())
        return h.hexdigest()
