"""The three encoders of TACo (paper Sec. 3.1, docs/method.md §1) and the model that holds them.

- `VideoEncoder` f_v: per-frame features (a small CNN on pixels, or a Linear on pre-extracted
  features) + learned positions + `video_layers` self-attention layers -> video_tokens x.
- `TextEncoder` f_t: word embeddings + positions + `text_layers` layers -> text_tokens y;
  text_global is the output at [CLS].
- `FusionEncoder` f_m: self-attention over concat(y, x) -> one score s3 = w . z[CLS] + b.

The model knows nothing about losses: `train.taco_step` combines its outputs with the pure
functions of `losses` and `cascade`. Padded frames and tokens never influence a real one
(attention key-padding masks) and their outputs are set to exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from taco_lite.batch import Batch
from taco_lite.config import ModelConfig


def _check_mask(name: str, x: torch.Tensor, mask: torch.Tensor) -> None:
    if mask.dtype != torch.bool or mask.shape != x.shape[:2]:
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)} and dtype {mask.dtype} but the input is "
            f"{tuple(x.shape)}: the mask needs one bool (True = real) per "
            f"{'frame' if 'video' in name else 'token'}, shape {tuple(x.shape[:2])}"
        )
    if not bool(mask.any(1).all()):
        raise ValueError(f"{name} has a row with no True entry: every item needs >= 1 real entry")


def transformer(cfg: ModelConfig, layers: int) -> nn.TransformerEncoder | None:
    """`layers` pre-norm self-attention blocks (batch_first), or None for zero layers."""
    if layers == 0:
        return None
    block = nn.TransformerEncoderLayer(
        d_model=cfg.d,
        nhead=cfg.heads,
        dim_feedforward=cfg.mlp_ratio * cfg.d,
        dropout=cfg.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    # nested tensors are not used with norm_first; saying so silences a warning
    return nn.TransformerEncoder(
        block, layers, norm=nn.LayerNorm(cfg.d), enable_nested_tensor=False
    )


def run_layers(
    layers: nn.TransformerEncoder | None, h: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Self-attention over the real entries only; padded outputs are zeroed."""
    if layers is not None:
        h = layers(h, src_key_padding_mask=~mask)  # (B, L, d)
    return h * mask.unsqueeze(-1).to(h.dtype)  # (B, L, d), padded rows exactly 0


class FrameCNN(nn.Module):
    """Pixels -> one d-vector per frame: 3 stride-2 convolutions and a global average pool.

    The paper uses frozen CNN features (ResNet-152, S3D); the toy world's 32x32 frames are
    small enough to learn this tiny CNN end to end. Batch norm (over the real frames of the
    batch only, see VideoEncoder) makes it learn much faster from scratch (toy world, L1 alone,
    300 steps: train L1 2.6 with it, 3.3 without); the first one standardises the raw pixels.
    """

    def __init__(self, d: int, in_channels: int = 3, pool: str = "max") -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.GELU(),
            ]

        self.net = nn.Sequential(
            nn.BatchNorm2d(in_channels, affine=False),  # pixel standardisation (running stats)
            *block(in_channels, 32),  # (F, 32, H/2, W/2)
            *block(32, 64),  # (F, 64, H/4, W/4)
            *block(64, d),  # (F, d, H/8, W/8)
            nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)  # (F, C, H, W) -> (F, d)


class VideoEncoder(nn.Module):
    """f_v: frames (B, m, 3, H, W) or features (B, m, D) -> video_tokens (B, m, d)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.video_input == "pixels":
            channels = 6 if cfg.frame_motion else 3  # RGB (+ difference to the previous frame)
            self.frame_encoder: nn.Module = FrameCNN(cfg.d, channels, cfg.frame_pool)
        else:
            self.frame_encoder = nn.Linear(int(cfg.feature_dim or 0), cfg.d)
        # the paper does not say whether f_v has positions; the kit adds learned ones
        self.pos = nn.Parameter(torch.zeros(cfg.max_frames, cfg.d))
        nn.init.normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = transformer(cfg, cfg.video_layers)

    def forward(self, frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        want = 5 if cfg.video_input == "pixels" else 3
        if frames.dim() != want:
            raise ValueError(
                f"frames has shape {tuple(frames.shape)} but video_input={cfg.video_input!r} "
                f"expects {'(B, m, 3, H, W)' if want == 5 else '(B, m, D)'}"
            )
        _check_mask("video_mask", frames, video_mask)
        B, m = video_mask.shape
        if m > cfg.max_frames:
            raise ValueError(
                f"the batch has m={m} frames but the model has positions for max_frames="
                f"{cfg.max_frames}: raise ModelConfig.max_frames or cut the clips"
            )
        if cfg.video_input == "pixels" and cfg.frame_motion:
            # a tiny two-stream input: each frame with its difference to the previous frame, so
            # that a single frame's CNN already sees motion (verbs), not only appearance (nouns)
            diff = torch.zeros_like(frames)  # (B, m, 3, H, W); the first frame has no motion
            diff[:, 1:] = frames[:, 1:] - frames[:, :-1]
            frames = torch.cat([frames, diff], dim=2)  # (B, m, 6, H, W)
        # encode real frames only: cheaper, and padding cannot leak into anything
        real = frames[video_mask]  # (F, 3, H, W) or (F, D), F = real frames in the batch
        feats = self.frame_encoder(real)  # (F, d)
        h = feats.new_zeros(B, m, cfg.d)  # (B, m, d)
        h[video_mask] = feats
        h = self.drop(h + self.pos[:m])  # (B, m, d)
        return run_layers(self.layers, h, video_mask)  # (B, m, d)


class TextEncoder(nn.Module):
    """f_t: text_ids (B, n) with [CLS] first -> text_tokens (B, n, d)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.pos = nn.Parameter(torch.zeros(cfg.max_tokens, cfg.d))
        nn.init.normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = transformer(cfg, cfg.text_layers)

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        if text_ids.dim() != 2:
            raise ValueError(f"text_ids has shape {tuple(text_ids.shape)} but must be (B, n)")
        _check_mask("text_mask", text_ids, text_mask)
        n = text_ids.shape[1]
        if n > self.cfg.max_tokens:
            raise ValueError(
                f"the batch has n={n} tokens but the model has positions for max_tokens="
                f"{self.cfg.max_tokens}: raise ModelConfig.max_tokens or truncate captions"
            )
        top = int(text_ids.max())
        if top >= self.cfg.vocab_size:
            raise ValueError(
                f"text_ids holds id {top} but vocab_size is {self.cfg.vocab_size}: build the "
                "model with ModelConfig(vocab_size=len(vocab)) for this vocabulary"
            )
        h = self.drop(self.embed(text_ids) + self.pos[:n])  # (B, n, d)
        return run_layers(self.layers, h, text_mask)  # (B, n, d)


class FusionEncoder(nn.Module):
    """f_m: self-attention over concat(text_tokens, video_tokens) -> score s3 (paper Eq. 2).

    Each half gets a token-type embedding and its own absolute positions (text position p,
    frame position k). Numbering the video after the text instead would make a frame's position
    depend on how much padding the batch's longest caption adds.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.type_embed = nn.Parameter(torch.zeros(2, cfg.d))  # 0 = text, 1 = video
        self.text_pos = nn.Parameter(torch.zeros(cfg.max_tokens, cfg.d))
        self.video_pos = nn.Parameter(torch.zeros(cfg.max_frames, cfg.d))
        for p in (self.type_embed, self.text_pos, self.video_pos):
            nn.init.normal_(p, std=0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = transformer(cfg, cfg.fusion_layers)
        self.head = nn.Linear(cfg.d, 1)  # s3 = w . z[CLS] + b
        self.heads = cfg.heads

    def forward(
        self,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        video_tokens: torch.Tensor,
        video_mask: torch.Tensor,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if text_tokens.shape[0] != video_tokens.shape[0]:
            raise ValueError(
                f"fuse got {text_tokens.shape[0]} texts but {video_tokens.shape[0]} videos: "
                "it scores pairs, so gather one text and one video per row (see fusion_pairs)"
            )
        _check_mask("text_mask", text_tokens, text_mask)
        _check_mask("video_mask", video_tokens, video_mask)
        n, m = text_tokens.shape[1], video_tokens.shape[1]
        y = text_tokens + self.type_embed[0] + self.text_pos[:n]  # (A, n, d)
        x = video_tokens + self.type_embed[1] + self.video_pos[:m]  # (A, m, d)
        h = self.drop(torch.cat([y, x], dim=1))  # (A, n + m, d)
        mask = torch.cat([text_mask, video_mask], dim=1)  # (A, n + m)
        if not return_attention:
            z = run_layers(self.layers, h, mask)  # (A, n + m, d)
            return self.head(z[:, 0]).squeeze(-1)  # (A,) score read at the text's [CLS]
        z, attention = self._layers_with_attention(h, mask)
        return self.head(z[:, 0]).squeeze(-1), attention  # (A,), (L, A, heads, n+m, n+m)

    def _layers_with_attention(
        self, h: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same pre-norm blocks as `run_layers`, step by step, keeping each softmax.

        Per block (norm_first): h = h + SA(LN1(h)); h = h + FF(LN2(h)); then the final LN. SA's
        weights are softmax_k(q_p . k_k / sqrt(d / heads)) over the real keys (padding gets 0),
        Vaswani et al. 2017 Eq. 1, one matrix per head. Rows of padded queries are kept as
        computed (they attend to real keys); their outputs are zeroed as in `run_layers`.
        """
        A, L = mask.shape
        if self.layers is None:  # fusion_layers = 0: no attention at all
            return h * mask.unsqueeze(-1).to(h.dtype), h.new_zeros(0, A, self.heads, L, L)
        maps = []
        for block in self.layers.layers:
            assert isinstance(block, nn.TransformerEncoderLayer) and block.norm_first
            q = block.norm1(h)  # (A, L, d)
            out, w = block.self_attn(
                q, q, q, key_padding_mask=~mask, need_weights=True, average_attn_weights=False
            )  # (A, L, d), (A, heads, L, L)
            h = h + block.dropout1(out)  # (A, L, d)
            h = h + block._ff_block(block.norm2(h))  # (A, L, d)
            maps.append(w)
        if self.layers.norm is not None:
            h = self.layers.norm(h)  # (A, L, d)
        return h * mask.unsqueeze(-1).to(h.dtype), torch.stack(maps)  # (A, L, d), (layers, ...)


@dataclass
class Embeddings:
    """What the encoders produce for one batch; normalised when `ModelConfig.normalize`."""

    text_tokens: torch.Tensor  # (B, n, d), padded rows 0
    video_tokens: torch.Tensor  # (B, m, d), padded rows 0
    text_global: torch.Tensor  # (B, d)  y_bar = y[CLS]
    video_global: torch.Tensor  # (B, d)  x_bar = mean of x over real frames
    text_mask: torch.Tensor  # (B, n) bool
    video_mask: torch.Tensor  # (B, m) bool


class TacoModel(nn.Module):
    """f_v, f_t and f_m together, with the scoring helpers of docs/method.md §2."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.video = VideoEncoder(cfg)
        self.text = TextEncoder(cfg)
        self.fusion = FusionEncoder(cfg)

    def encode_video(self, frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """Frames (B, m, 3, H, W) or features (B, m, D) -> video_tokens (B, m, d), unnormalised."""
        return self.video(frames, video_mask)

    def encode_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """text_ids (B, n) -> text_tokens (B, n, d), unnormalised."""
        return self.text(text_ids, text_mask)

    @staticmethod
    def global_video(video_tokens: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """x_bar: mean over real frames (docs/method.md §2). (B, m, d) -> (B, d)."""
        w = video_mask.to(video_tokens.dtype).unsqueeze(-1)  # (B, m, 1)
        return (video_tokens * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, d)

    @staticmethod
    def global_text(text_tokens: torch.Tensor) -> torch.Tensor:
        """y_bar: the output at [CLS], position 0 (docs/method.md §2). (B, n, d) -> (B, d)."""
        return text_tokens[:, 0]  # (B, d)

    def fuse(
        self,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        video_tokens: torch.Tensor,
        video_mask: torch.Tensor,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """s3 for A (text, video) pairs, row a = text a with video a. Returns logits (A,).

        return_attention=True also returns f_m's attention weights, (logits (A,), attention
        (fusion_layers, A, heads, n + m, n + m)): attention[l, a, h, q, k] is how much token q
        of the concatenation [text (n) ; video (m)] reads token k in head h of layer l. The
        logits are the same as without it (the same layers, run one by one).
        """
        return self.fusion(text_tokens, text_mask, video_tokens, video_mask, return_attention)

    def _norm(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(t, dim=-1) if self.cfg.normalize else t

    def embed(self, batch: Batch) -> Embeddings:
        """Encode both sides of a batch once; every score and loss of a step reuses this.

        With `normalize=True` (the kit default) tokens and globals are unit vectors, so that
        s1 and token scores are cosines divided by tau; `normalize=False` is the paper's setting.
        Globals are pooled from the raw tokens and then normalised.
        """
        y = self.encode_text(batch.text_ids, batch.text_mask)  # (B, n, d)
        x = self.encode_video(batch.frames, batch.video_mask)  # (B, m, d)
        return Embeddings(
            text_tokens=self._norm(y),  # (B, n, d); padded rows stay 0 (normalize keeps 0)
            video_tokens=self._norm(x),  # (B, m, d)
            text_global=self._norm(self.global_text(y)),  # (B, d)
            video_global=self._norm(self.global_video(x, batch.video_mask)),  # (B, d)
            text_mask=batch.text_mask,
            video_mask=batch.video_mask,
        )

    def forward(self, batch: Batch) -> Embeddings:
        return self.embed(batch)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (a default checkpoint should stay under ~5 MB)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
