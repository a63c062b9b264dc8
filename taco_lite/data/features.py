"""Real pre-extracted video features (YouCook2, MSR-VTT, ...) as a dataset for `data.collate`.

The paper never trains on pixels: it reads features from frozen 2D/3D CNNs (R-152, S3D-HM;
Sec. 4.1) and caps a video at 48 tokens. This adapter reads that kind of release from a folder
(layout in docs/real_data.md):

    root/features/<video_id>.npy   float [T, D], one row per feature step
    root/segments.json             [{"video_id", "caption", "start", "end"}, ...] (seconds)
    root/meta.json                 {"features_per_second": 1.0}

Whole-clip captions (MSR-VTT style) omit start/end. Items go through the same `collate` as the
toy world and give `Batch.frames` of shape (B, m, D), with `gold_frames` all False.
Feature files are memory-mapped: only the rows of a segment are read, when it is asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from taco_lite.data import assign_caption_ids, encode_text_item
from taco_lite.text import Vocab, check_caption_text, tokenize
from taco_lite.text.pos import DEFAULT_POS_TAGS, idf_table, parse_pos_tags, tag_captions

_LAYOUT = "see docs/real_data.md for the expected layout"


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected the file {path} ({_LAYOUT})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); {_LAYOUT}") from None


def _open_features(path: Path) -> np.ndarray:
    """Memory-map one .npy file and check it is a finite-typed 2-D float array [T, D]."""
    if not path.is_file():
        raise FileNotFoundError(
            f"feature file {path} not found: every video_id in segments.json needs "
            f"features/<video_id>.npy ({_LAYOUT})"
        )
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # numpy raises ValueError, OSError or EOFError on broken files
        raise ValueError(
            f"cannot read {path} as a .npy array ({type(e).__name__}: {e}): is it corrupt or "
            "truncated? Re-save it with numpy.save(path, features.astype('float32'))"
        ) from None
    if arr.ndim != 2:
        raise ValueError(
            f"{path} has shape {arr.shape} but features must be 2-D [T, D] (one row per feature "
            "step): average or flatten the other axes before saving"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{path} has dtype {arr.dtype}; features must be numbers (float32)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{path} has shape {arr.shape}: it needs at least one step and one feature"
        )
    return arr


def frame_range(
    start: float | None, end: float | None, fps: float | None, num_steps: int
) -> tuple[int, int]:
    """Feature rows [lo, hi) covering the seconds [start, end); the whole video when both None.

    lo = floor(start * fps), hi = ceil(end * fps). An end at most one step past the video is
    rounding and is clipped; further out is an error (raised by the caller with context).
    """
    if start is None and end is None:
        return 0, num_steps
    if start is None or end is None:
        raise ValueError(
            "give both 'start' and 'end' (seconds), or neither for a whole-clip caption"
        )
    if fps is None:
        raise ValueError(
            "segments have start/end in seconds, so the feature rate is needed: put "
            '{"features_per_second": ...} in meta.json or pass features_per_second='
        )
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise ValueError(f"start={start}, end={end}: need 0 <= start < end")
    lo, hi = math.floor(start * fps), math.ceil(end * fps)
    hi = max(hi, lo + 1)
    if lo >= num_steps or hi > num_steps + 1:
        raise ValueError(
            f"[{start}, {end}) s is rows [{lo}, {hi}) at {fps} features per second, but the "
            f"video has {num_steps} rows ({num_steps / fps:.1f} s): the segment is outside the video"
        )
    return lo, min(hi, num_steps)


def subsample(lo: int, hi: int, max_frames: int) -> np.ndarray:
    """At most `max_frames` evenly spaced rows of [lo, hi) (the paper caps videos at 48 tokens)."""
    if hi - lo <= max_frames:
        return np.arange(lo, hi)
    return lo + np.floor(np.arange(max_frames) * (hi - lo) / max_frames).astype(np.int64)


class FeatureDataset(Dataset):
    """Caption/segment pairs over pre-extracted features, for `data.collate`.

    Pass the training set's `vocab` and `idf` to a val/test set; when they are None they are
    built from this dataset's own captions (do that for the training set only). Everything is
    checked at construction (files, shapes, feature width D, segment bounds, captions), so a
    broken release fails at once with the file's name rather than mid-epoch.
    """

    def __init__(
        self,
        root: str | Path,
        vocab: Vocab | None = None,
        idf: dict[str, float] | None = None,
        pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
        max_frames: int = 48,
        max_tokens: int = 32,
        features_per_second: float | None = None,
        tags: Sequence[Sequence[str]] | None = None,
        nlp=None,
        segments_file: str = "segments.json",
    ):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"feature folder {root} not found ({_LAYOUT})")
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.root = root
        self.max_frames = max_frames
        self.pos_tags = parse_pos_tags(pos_tags)

        segments = _read_json(root / segments_file, "segment list")
        if not isinstance(segments, list) or not segments:
            raise ValueError(
                f"{root / segments_file} must be a non-empty JSON list of "
                '{"video_id", "caption", "start", "end"} objects'
            )
        fps = features_per_second
        if fps is None and (root / "meta.json").exists():
            fps = _read_json(root / "meta.json", "meta.json").get("features_per_second")
        if fps is not None and (not isinstance(fps, (int, float)) or fps <= 0):
            raise ValueError(f"features_per_second must be a positive number, got {fps!r}")
        self.features_per_second = fps

        self._arrays: dict[str, np.ndarray] = {}
        self.feature_dim: int | None = None
        self.rows: list[np.ndarray] = []
        self.video_ids: list[str] = []
        captions: list[str] = []
        for i, seg in enumerate(segments):
            where = f"{root / segments_file} entry {i}"
            if not isinstance(seg, dict) or "video_id" not in seg or "caption" not in seg:
                raise ValueError(f"{where} is {seg!r}: each entry needs 'video_id' and 'caption'")
            try:
                check_caption_text(seg["caption"])
            except ValueError as e:
                raise ValueError(f"{where} (video {seg['video_id']!r}): {e}") from None
            vid = str(seg["video_id"])
            arr = self._array(vid)
            try:
                lo, hi = frame_range(seg.get("start"), seg.get("end"), fps, arr.shape[0])
            except ValueError as e:
                raise ValueError(f"{where} (video {vid!r}): {e}") from None
            self.rows.append(subsample(lo, hi, max_frames))
            self.video_ids.append(vid)
            captions.append(seg["caption"])

        self.captions = captions
        token_lists = [tokenize(c) for c in captions]
        if tags is None:
            tags = tag_captions(captions, nlp=nlp)
        if len(tags) != len(captions):
            raise ValueError(f"tags has {len(tags)} entries for {len(captions)} segments")
        self.vocab = vocab if vocab is not None else Vocab.build(token_lists)
        self.idf = idf if idf is not None else idf_table(token_lists)
        self.texts = [
            encode_text_item(t, g, self.vocab, self.idf, self.pos_tags, max_tokens)
            for t, g in zip(token_lists, tags, strict=True)
        ]
        self.caption_ids = assign_caption_ids(token_lists)

    def _array(self, video_id: str) -> np.ndarray:
        if video_id not in self._arrays:
            arr = _open_features(self.root / "features" / f"{video_id}.npy")
            if self.feature_dim is None:
                self.feature_dim = int(arr.shape[1])
            elif arr.shape[1] != self.feature_dim:
                first = next(iter(self._arrays))
                raise ValueError(
                    f"features/{video_id}.npy has D={arr.shape[1]} features per step but "
                    f"features/{first}.npy has D={self.feature_dim}: every video must come from "
                    "the same extractor (concatenate 2D and 3D features the same way for all)"
                )
            self._arrays[video_id] = arr
        return self._arrays[video_id]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        vid = self.video_ids[idx]
        feats = np.asarray(self._arrays[vid][self.rows[idx]], dtype=np.float32)  # (m_i, D)
        if not np.isfinite(feats).all():
            raise ValueError(
                f"features/{vid}.npy has NaN or inf in rows {self.rows[idx].tolist()}: "
                "fix the extraction (or np.nan_to_num) before training"
            )
        text = self.texts[idx]
        n_i, m_i = text["text_ids"].numel(), feats.shape[0]
        return {
            **text,
            "frames": torch.from_numpy(feats),  # (m_i, D)
            "gold_frames": torch.zeros(n_i, m_i, dtype=torch.bool),  # no grounding labels
            "seg_id": idx,
            "caption_id": self.caption_ids[idx],
        }

    def __repr__(self) -> str:
        return (
            f"FeatureDataset({self.root}, {len(self)} segments, {len(self._arrays)} videos, "
            f"D={self.feature_dim})"
        )
