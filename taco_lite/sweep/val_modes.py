"""The val study's controlled changes (`sweep/val_study.py`), each a small piece that acts on
the loss or on the model while a run trains:

- `false_negative_mask` / `loss_fns("fn-mask")`: L2 ignores negatives that share the word;
- `loss_fns("detach-text" | "detach-video")`: L2's gradient stops at one encoder;
- `_fuse_detached`: L3 sees detached encoder outputs, so it trains only the fusion head f_m;
- `_frozen_frames` + `pretrained_frame_encoder`: the frame CNN is pretrained once and frozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.config import PRESETS
from taco_lite.losses import token_nce, token_video_scores
from taco_lite.train.step import LossFns

PRETRAIN_SEED = 1000  # the frame encoder's pretraining clips: fresh, no experiment's seed

MASKED_SCORE = -1e4  # a false negative's token score: exp(-1e4 / tau) is exactly 0


def false_negative_mask(text_ids: torch.Tensor) -> torch.Tensor:
    """(B, n, B) bool: True where caption j (j != i) contains the word of token p of text i.

    text_ids: (B, n) token ids, padded. Specials and padding of text i may match anything;
    `token_nce` ignores those tokens (weight 0), so only content words matter. Why: in a world
    of 12 nouns and 10 verbs, a negative video often shows the very word token p names, so
    L2's softmax over videos (Eq. 4) pushes a correct word-frame match apart.
    """
    B, n = text_ids.shape
    same = text_ids[:, :, None, None] == text_ids[None, None, :, :]  # (B, n, B, n)
    mask = same.any(dim=3)  # (B, n, B): word of (i, p) occurs in caption j
    eye = torch.eye(B, dtype=torch.bool, device=text_ids.device)  # the positive stays
    return mask & ~eye[:, None, :]


class _LastBatch:
    """Hands the batch that `collate` just built to the loss (num_workers=0 only)."""

    def __init__(self) -> None:
        self.text_ids: torch.Tensor | None = None
        self.masked = 0.0  # running share of masked (token of interest, negative) pairs
        self.calls = 0

    def collate(self, items: Sequence[dict]) -> Any:
        from taco_lite.data import collate

        batch = collate(items)
        self.text_ids = batch.text_ids
        return batch


def loss_fns(mode: str | None, last: _LastBatch) -> LossFns:
    """LossFns for a mode: None, "fn-mask", "detach-text", "detach-video" (the default for
    "detach-fusion" and "frozen-frames", which act on the model)."""
    if mode in (None, "detach-fusion", "frozen-frames"):
        return LossFns()
    if mode == "detach-text":
        return LossFns(token_video_scores=lambda t, v, m: token_video_scores(t.detach(), v, m))
    if mode == "detach-video":
        return LossFns(token_video_scores=lambda t, v, m: token_video_scores(t, v.detach(), m))
    if mode == "fn-mask":

        def masked_token_nce(scores: torch.Tensor, weights: torch.Tensor, tau: float = 1.0):
            mask = false_negative_mask(last.text_ids.to(scores.device))  # (B, n, B)
            active = weights > 0  # (B, n)
            B = scores.shape[0]
            share = (mask & active[:, :, None]).sum() / (active.sum() * (B - 1)).clamp_min(1)
            last.masked += float(share)
            last.calls += 1
            return token_nce(scores.masked_fill(mask, MASKED_SCORE), weights, tau)

        return LossFns(token_nce=masked_token_nce)
    raise ValueError(f"unknown mode {mode!r}: use fn-mask, detach-text or detach-video")


@contextlib.contextmanager
def _fuse_detached(active: bool):
    """While active, `TacoModel.fuse` sees detached encoder outputs: L3 trains f_m alone."""
    from taco_lite.model import TacoModel

    if not active:
        yield
        return
    original = TacoModel.fuse

    def fuse(self, text_tokens, text_mask, video_tokens, video_mask, **kw):
        return original(
            self, text_tokens.detach(), text_mask, video_tokens.detach(), video_mask, **kw
        )

    TacoModel.fuse = fuse
    try:
        yield
    finally:
        TacoModel.fuse = original


@contextlib.contextmanager
def _frozen_frames(state: dict[str, torch.Tensor] | None):
    """While given, every new model's frame encoder (the per-frame CNN of f_v) starts from
    `state` and never trains: the paper's frozen, pre-extracted frame features."""
    from taco_lite.model import VideoEncoder

    if state is None:
        yield
        return
    original = VideoEncoder.__init__

    def __init__(self, cfg):
        original(self, cfg)
        self.frame_encoder.load_state_dict(state)
        self.frame_encoder.requires_grad_(False)

    VideoEncoder.__init__ = __init__
    try:
        yield
    finally:
        VideoEncoder.__init__ = original


def pretrained_frame_encoder(
    data: dict[str, Any], out: Path, preset: str, steps: int
) -> dict[str, torch.Tensor]:
    """The frame encoder of an L1 run on fresh clips (`EndlessTrainSet`, seed PRETRAIN_SEED:
    no experiment sees them), trained once per preset and cached: the kit's stand-in for a
    feature extractor pretrained on another, larger corpus (TACo's HowTo100M features)."""
    from taco_lite.data.endless import EndlessTrainSet
    from taco_lite.train import train

    path = out / "pretrain" / f"frame_encoder_{preset}_{steps}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    model_cfg, train_cfg = PRESETS[preset].configs()
    train_cfg = dataclasses.replace(
        train_cfg, losses="L1", steps=steps, seed=PRETRAIN_SEED, progress=False, device="cpu",
        endless_data=True, ckpt_dir=str(path.parent / f"run_{preset}_{steps}"),
    )  # fmt: skip
    fresh = EndlessTrainSet(
        data["base"], data["vocab"], data["idf"], seed=PRETRAIN_SEED,
        pairs_per_epoch=len(data["train"]),
    )  # fmt: skip
    try:
        result = train(model_cfg, train_cfg, datasets={"train": fresh}, vocab=data["vocab"])
    finally:
        fresh.close()
    state = {
        k: v.detach().clone() for k, v in result.model.video.frame_encoder.state_dict().items()
    }
    torch.save(state, path)
    return state
