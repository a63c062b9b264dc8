"""The one object that flows from `data` into `model`, `losses` and `train`.

A `Batch` holds B (caption, video) pairs, padded to the longest caption (n tokens) and the
longest video (m frames) in the batch. Text i and video i are the positive pair (docs/method.md §3).
See docs/design.md for the table of fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    frames: torch.Tensor  # (B, m, 3, H, W) float in [0, 1], or (B, m, D) real features
    video_mask: torch.Tensor  # (B, m) bool, True = real frame
    text_ids: torch.Tensor  # (B, n) long: [CLS] words [SEP] [PAD]...
    text_mask: torch.Tensor  # (B, n) bool, True = real token (incl. [CLS]/[SEP])
    token_interest: torch.Tensor  # (B, n) bool: POS in pos_tags; never specials or padding
    token_weights: torch.Tensor  # (B, n) float: idf over tokens of interest, rows sum to 1 or 0
    pos_ids: torch.Tensor  # (B, n) long: index into pos.UPOS, 0 for specials/padding
    gold_frames: torch.Tensor  # (B, n, m) bool: gold grounding (all False without ground truth)
    seg_ids: torch.Tensor  # (B,) long: dataset indices
    caption_ids: torch.Tensor  # (B,) long: equal ids = identical captions

    @classmethod
    def from_fields(cls, tensors: Mapping[str, torch.Tensor]) -> Batch:
        """A Batch from {field name: tensor}, naming every field exactly once.

        The one loop over the fields that `data.collate`, `to` and `pin_memory` share.
        """
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in tensors]
        extra = sorted(set(tensors) - set(names))
        if missing or extra:
            raise ValueError(
                f"a Batch needs exactly the fields {names}: missing {missing}, unknown {extra}"
            )
        return Batch(**{k: tensors[k] for k in names})

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """A new Batch holding fn(tensor) for every field; this one is unchanged."""
        return Batch.from_fields({f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor to `device` (a new Batch; this one is unchanged)."""
        return self.map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Lets DataLoader(pin_memory=True) pin a Batch for faster host-to-GPU copies."""
        return self.map(torch.Tensor.pin_memory)

    def __len__(self) -> int:
        return self.text_ids.shape[0]

    @property
    def shape_summary(self) -> str:
        B, n = self.text_ids.shape
        m = self.video_mask.shape[1]
        return f"Batch(B={B}, n={n}, m={m}, frames={tuple(self.frames.shape)})"


def synthetic_batch(
    B: int = 4,
    n: int = 7,
    m: int = 5,
    vocab_size: int = 20,
    frame_size: int = 32,
    feature_dim: int | None = None,
    seed: int = 0,
) -> Batch:
    """A random but well-formed Batch for tests and notebooks (no world, no spaCy needed).

    Texts have random lengths in [3, n] (incl. [CLS]/[SEP]) and videos in [2, m] frames, so that
    padding is always exercised. Token 1 of every text is a token of interest.
    """
    g = torch.Generator().manual_seed(seed)
    text_len = torch.randint(3, n + 1, (B,), generator=g)
    text_len[0] = n
    vid_len = torch.randint(2, m + 1, (B,), generator=g)
    vid_len[0] = m
    text_mask = torch.arange(n)[None, :] < text_len[:, None]  # (B, n)
    video_mask = torch.arange(m)[None, :] < vid_len[:, None]  # (B, m)
    text_ids = torch.randint(4, vocab_size, (B, n), generator=g)
    text_ids[:, 0] = 2  # [CLS]
    text_ids[torch.arange(B), text_len - 1] = 3  # [SEP]
    text_ids[~text_mask] = 0  # [PAD]
    inner = text_mask.clone()
    inner[:, 0] = False
    inner[torch.arange(B), text_len - 1] = False
    interest = inner & (torch.rand(B, n, generator=g) < 0.5)
    interest[:, 1] = True
    weights = interest.float()
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    if feature_dim is None:
        frames = torch.rand(B, m, 3, frame_size, frame_size, generator=g)
    else:
        frames = torch.randn(B, m, feature_dim, generator=g)
    frames = frames * video_mask.view(B, m, *([1] * (frames.dim() - 2)))
    return Batch(
        frames=frames,
        video_mask=video_mask,
        text_ids=text_ids,
        text_mask=text_mask,
        token_interest=interest,
        token_weights=weights,
        pos_ids=torch.where(interest, 8, 0),
        gold_frames=interest[:, :, None] & video_mask[:, None, :],
        seg_ids=torch.arange(B),
        caption_ids=torch.arange(B),
    )
