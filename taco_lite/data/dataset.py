"""From world segments (or real features) to padded `Batch`es.

One item is one (caption, video segment) pair, the retrieval unit of TACo (YouCook2 segments;
docs/method.md §3). Everything a batch needs is computed once, at construction: token ids, the
tokens of interest and their idf weights (Eq. 4), UPOS ids, gold grounding, and the frames
themselves as uint8 tensors, so that a training epoch only pads and stacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from taco_lite.batch import Batch
from taco_lite.text import CLS_ID, PAD_ID, Vocab, tokenize
from taco_lite.text.pos import (
    DEFAULT_POS_TAGS,
    idf_table,
    interest_mask,
    parse_pos_tags,
    tag_captions,
    token_weights,
    upos_id,
)


def encode_text_item(
    tokens: Sequence[str],
    tags: Sequence[str],
    vocab: Vocab,
    idf: dict[str, float],
    pos_tags: frozenset[str],
    max_tokens: int,
) -> dict[str, torch.Tensor]:
    """Per-token tensors for `[CLS] w1 .. wk [SEP]` (length n_i = k + 2).

    Words beyond `max_tokens - 2` are cut *before* the weights are computed, so the weights of
    the words the model sees sum to 1. Specials get weight 0, no interest and POS id 0.
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags: tags must align with tokens")
    ids = vocab.encode(tokens, max_tokens)  # [CLS] w1..wk [SEP]
    k = len(ids) - 2
    words, wtags = list(tokens)[:k], list(tags)[:k]
    interest = interest_mask(wtags, pos_tags)
    weights = token_weights(words, wtags, idf, pos_tags)
    zero_b, zero_f = [False], [0.0]
    return {
        "text_ids": torch.tensor(ids, dtype=torch.long),  # (n_i,)
        "token_interest": torch.tensor(zero_b + interest + zero_b, dtype=torch.bool),  # (n_i,)
        "token_weights": torch.tensor(zero_f + weights + zero_f, dtype=torch.float32),  # (n_i,)
        "pos_ids": torch.tensor([0] + [upos_id(t) for t in wtags] + [0], dtype=torch.long),
    }


def caption_key(tokens: Sequence[str]) -> tuple[str, ...]:
    """Captions the model cannot tell apart (same lowercased tokens) share one key."""
    return tuple(t.lower() for t in tokens)


def assign_caption_ids(token_lists: Iterable[Sequence[str]]) -> list[int]:
    """0, 1, 2, ... by first appearance; identical captions (case-insensitive) share an id.

    Used by the optional false-negative dropping of the cascade (docs/method.md §4).
    """
    ids: dict[tuple[str, ...], int] = {}
    return [ids.setdefault(caption_key(t), len(ids)) for t in token_lists]


class WorldDataset(Dataset):
    """Segments of one split of the toy world, ready for `collate`.

    Tags come from spaCy (`pos.tag_captions`), as in the paper, unless `tags` (aligned with
    `world.split(split)`) is given; the world's gold tags are kept for evaluation only.
    `vocab` and `idf` must come from the train split (see `build_datasets`).
    Items carry `seg_id`, the index into `world.segments`.
    """

    def __init__(
        self,
        world: Any,
        split: str,
        vocab: Vocab,
        idf: dict[str, float],
        pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
        tags: Sequence[Sequence[str]] | None = None,
        max_tokens: int = 32,
        nlp=None,
    ):
        self.split = split
        self.pos_tags = parse_pos_tags(pos_tags)
        self.max_tokens = max_tokens
        self.seg_ids: list[int] = [int(s) for s in world.split(split)]
        segments = [world.segments[s] for s in self.seg_ids]
        captions = [seg.caption for seg in segments]
        token_lists = [tokenize(c) for c in captions]
        if tags is None:
            tags = tag_captions(captions, nlp=nlp) if captions else []
        if len(tags) != len(segments):
            raise ValueError(
                f"tags has {len(tags)} entries but split {split!r} has {len(segments)} segments: "
                "give one tag list per segment, in world.split(split) order"
            )
        caption_ids = assign_caption_ids(token_lists)
        self.items: list[dict[str, Any]] = []
        for seg, tokens, seg_tags, cap_id in zip(
            segments, token_lists, tags, caption_ids, strict=True
        ):
            item = encode_text_item(tokens, seg_tags, vocab, idf, self.pos_tags, max_tokens)
            frames = np.ascontiguousarray(world.segment_frames(seg.seg_id).transpose(0, 3, 1, 2))
            item["frames"] = torch.from_numpy(frames)  # (m_i, 3, H, W) uint8: 4x smaller than float
            item["gold_frames"] = _gold_to_tokens(
                seg, tokens, item["text_ids"].numel(), len(frames)
            )
            item["seg_id"] = int(seg.seg_id)
            item["caption_id"] = cap_id
            self.items.append(item)
        self._pos = {s: i for i, s in enumerate(self.seg_ids)}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.items[idx]

    def index_of(self, seg_id: int) -> int:
        """Position in this dataset of world segment `seg_id`."""
        return self._pos[seg_id]

    def __repr__(self) -> str:
        return f"WorldDataset(split={self.split!r}, {len(self)} segments, pos_tags={sorted(self.pos_tags)})"


def _gold_to_tokens(seg: Any, tokens: Sequence[str], n_i: int, m_i: int) -> torch.Tensor:
    """Gold grounding per word -> per token: word w sits at token position w + 1 ([CLS] first)."""
    words = [w.lower() for w in seg.words]
    if words != list(tokens):
        raise ValueError(
            f"segment {seg.seg_id}: its words {seg.words} differ from tokenize(caption) = "
            f"{list(tokens)}, so gold frames cannot be placed on tokens"
        )
    gold = torch.zeros(n_i, m_i, dtype=torch.bool)  # (n_i, m_i)
    for w, frame_list in enumerate(seg.gold_frames[: n_i - 2]):
        for f in frame_list:
            if not 0 <= f < m_i:
                raise ValueError(
                    f"segment {seg.seg_id}: gold frame {f} of word {seg.words[w]!r} is outside "
                    f"its {m_i} frames"
                )
            gold[w + 1, f] = True
    return gold


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    """Pad a list of items to the longest text (n) and video (m) and build a `Batch`.

    Frames stored as uint8 images become float in [0, 1]; real features stay float. Padding is
    [PAD] for text, zeros for frames, and False / 0 in every mask, weight and id.
    """
    if len(items) == 0:
        raise ValueError("collate got an empty list of items: a batch needs at least one pair")
    B = len(items)
    n = max(it["text_ids"].numel() for it in items)
    m = max(it["frames"].shape[0] for it in items)
    first = items[0]["frames"]
    for it in items:
        f = it["frames"]
        if f.dtype != first.dtype or f.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"cannot batch frames of shape {tuple(first.shape)} ({first.dtype}) with "
                f"{tuple(f.shape)} ({f.dtype}): every item needs the same per-frame shape"
            )

    padded = {  # Batch field -> padded tensor; items fill [:n_i] of text, [:m_i] of video
        "text_ids": torch.full((B, n), PAD_ID, dtype=torch.long),  # (B, n)
        "text_mask": torch.zeros(B, n, dtype=torch.bool),  # (B, n)
        "token_interest": torch.zeros(B, n, dtype=torch.bool),  # (B, n)
        "token_weights": torch.zeros(B, n, dtype=torch.float32),  # (B, n)
        "pos_ids": torch.zeros(B, n, dtype=torch.long),  # (B, n)
        "frames": torch.zeros(B, m, *first.shape[1:], dtype=first.dtype),  # (B, m, ...)
        "video_mask": torch.zeros(B, m, dtype=torch.bool),  # (B, m)
        "gold_frames": torch.zeros(B, n, m, dtype=torch.bool),  # (B, n, m)
    }
    for i, it in enumerate(items):
        n_i, m_i = it["text_ids"].numel(), it["frames"].shape[0]
        if it["text_ids"][0] != CLS_ID:
            raise ValueError(f"item {i}: text_ids must start with [CLS] (id {CLS_ID})")
        for name in ("text_ids", "token_interest", "token_weights", "pos_ids"):
            padded[name][i, :n_i] = it[name]
        padded["text_mask"][i, :n_i] = True
        padded["frames"][i, :m_i] = it["frames"]
        padded["video_mask"][i, :m_i] = True
        g = it.get("gold_frames")
        if g is not None:
            padded["gold_frames"][i, :n_i, :m_i] = g
    if padded["frames"].dtype == torch.uint8:
        padded["frames"] = padded["frames"].float().div_(255.0)  # (B, m, 3, H, W) in [0, 1]
    for name, key in (("seg_ids", "seg_id"), ("caption_ids", "caption_id")):
        padded[name] = torch.tensor([int(it[key]) for it in items], dtype=torch.long)  # (B,)
    return Batch.from_fields(padded)


def build_datasets(
    world: Any,
    pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
    splits: Sequence[str] = ("train", "val", "test", "comp"),
    max_tokens: int = 32,
    nlp=None,
    min_count: int = 1,
    cache_path=None,
) -> tuple[dict[str, WorldDataset], Vocab, dict[str, float]]:
    """Datasets for `splits`, with vocabulary and idf from the train split only.

    Val/test words unseen in training become [UNK] and get the unseen-word idf, as they would
    for a real held-out set. All captions are tagged in one `tag_captions` call (`cache_path`
    is its optional JSON cache).
    """
    wanted = parse_pos_tags(pos_tags)
    names = list(dict.fromkeys(["train", *splits]))
    seg_lists = {s: [int(i) for i in world.split(s)] for s in names}
    if not seg_lists["train"]:
        raise ValueError("the train split is empty: vocabulary and idf are built from it")
    captions = [world.segments[i].caption for s in names for i in seg_lists[s]]
    all_tags = tag_captions(captions, nlp=nlp, cache_path=cache_path)
    tags_by_split, start = {}, 0
    for s in names:
        tags_by_split[s] = all_tags[start : start + len(seg_lists[s])]
        start += len(seg_lists[s])
    train_tokens = [tokenize(world.segments[i].caption) for i in seg_lists["train"]]
    vocab = Vocab.build(train_tokens, min_count=min_count)
    idf = idf_table(train_tokens)
    datasets = {
        s: WorldDataset(world, s, vocab, idf, wanted, tags=tags_by_split[s], max_tokens=max_tokens)
        for s in splits
    }
    return datasets, vocab, idf
