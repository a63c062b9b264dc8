"""Every knob of the model and of training, in two plain dataclasses (minGPT style).

The CLI (`python -m taco_lite.train`) and the notebooks write into these objects and nowhere
else, so one run is fully described by `(ModelConfig, TrainConfig)`. Both travel inside every
checkpoint as plain dicts (`config_to_dict` / `config_from_dict`).

`PRESETS` holds the four recipes of the kit:

- `fast`: CI and notebooks. A whole CLI run (data, training, test eval) in about a minute on a
  2-core CPU.
- `sweep`: one row of the ablation sweep (Table 3 / Table 4 in miniature), about 2 min on CPU.
- `default`: the best CPU model, under 15 min on a 2-core laptop.
- `gpu`: wider, bigger batches, more steps, bf16 autocast and `torch.compile`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from numbers import Integral
from typing import Any

VIDEO_INPUTS = ("pixels", "features")
LOSS_CHOICES = ("L1", "L3", "L1+L2", "L1+L3", "L1+L2+L3")
NEGATIVE_CHOICES = ("cascade", "random")
DEVICE_PREFIXES = ("auto", "cpu", "cuda", "mps")
MAX_SEED = 2**53  # the batch order seeds a generator with seed * 1000 + epoch (< 2**63)


@dataclass
class ModelConfig:
    """Sizes of the three encoders (docs/method.md §1) and the two temperatures (§3).

    Temperatures: the paper uses tau1 = tau2 = 1 on unnormalised features. Trained from scratch
    on small data, L2-normalised embeddings with a small temperature train much better, so the
    kit defaults to `normalize=True, tau1=tau2=0.07`. The paper's setting is one switch away:
    `ModelConfig(normalize=False, tau1=1.0, tau2=1.0)`.
    """

    d: int = 128  # embedding width shared by the three encoders
    video_input: str = "pixels"  # "pixels": frames (B, m, 3, H, W); "features": (B, m, D)
    feature_dim: int | None = None  # D, required for video_input="features"
    frame_size: int = 32  # H = W of the toy world's frames
    frame_motion: bool = True  # pixels: also feed each frame's difference to the previous one
    frame_pool: str = "max"  # pixels: "max" or "avg" spatial pooling after the frame CNN
    # paper: 1, 2 or 4 self-attention layers on top of the features. The kit's default is 0 for
    # pixels: calibrated on val (sweep preset, 1500 steps), 1 layer mixed the frames so much that
    # L2 hurt retrieval (R@1 12.2 vs L1's 14.4) and word grounding fell below chance; with 0
    # layers (the frame CNN already sees motion) TACo grounds nouns 83.8% vs 72.9% chance.
    video_layers: int = 0
    text_layers: int = 2
    fusion_layers: int = 2  # paper: 2
    heads: int = 4
    mlp_ratio: int = 2  # feed-forward width = mlp_ratio * d (BERT uses 4; 2 keeps files small)
    dropout: float = 0.1
    max_frames: int = 16  # learned video positions; use 48 for real features (paper)
    max_tokens: int = 32  # learned text positions incl. [CLS]/[SEP] (paper: 30)
    vocab_size: int = 512  # overwritten by train() from the real vocabulary
    normalize: bool = True  # L2-normalise tokens and globals before every dot product
    tau1: float = 0.07  # temperature of L1 (sentence level)
    tau2: float = 0.07  # temperature of L2 (token level)

    def __post_init__(self) -> None:
        validate_model_config(self)


@dataclass
class TrainConfig:
    """What to optimise and how (docs/method.md §3, §4 and the paper's recipe in §7).

    `losses` picks the terms of L = L1 + lambda_t * L2 + L3 (never renumbered: "L3" alone is
    the fusion loss alone). `negatives` picks how the fusion head's K' = `k_neg` negatives are
    chosen: "cascade" (Sec. 3.3, hard negatives from s1 + token scores) or "random".
    """

    losses: str = "L1+L2+L3"
    negatives: str = "cascade"
    k_neg: int = 8  # K': negatives per anchor for L3 (paper: 8); needs k_neg <= batch_size - 1
    pos_tags: str = "noun+verb"  # tokens of interest, parsed by taco_lite.text.pos.parse_pos_tags
    lambda_t: float = 0.5  # weight of L2 (paper: 0.5)
    drop_false_negatives: bool = False  # beyond the paper: skip negatives with the same caption
    symmetric_l1: bool = False  # L1 is text-to-video in Eq. 3; True averages in video-to-text
    endless_data: bool = False  # fresh world clips every epoch (data.EndlessTrainSet)
    batch_size: int = 32
    lr: float = 1e-3  # paper: 1e-4 at batch 128 on HowTo100M; small data from scratch wants more
    weight_decay: float = 1e-5
    warmup_steps: int = 50
    steps: int = 600
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    seed: int = 0
    device: str = "auto"  # "auto" = cuda, then mps, then cpu; or "cpu", "cuda", "cuda:1", "mps"
    amp: bool = False  # bf16 autocast (CUDA and CPU)
    compile: bool = False  # torch.compile the three encoders
    ckpt_every: int = 100  # write last.pt every this many steps (0 = by time / at the end only)
    ckpt_minutes: float = 2.0  # ... and after this many minutes of training since the last one
    deterministic: bool = True  # torch.use_deterministic_algorithms during train() (see docs)
    ckpt_dir: str = "runs/taco"
    log_every: int = 10
    progress: bool = True  # tqdm bar; False silences it
    num_workers: int = 0  # DataLoader workers (0 = load in the main process)
    # L2's token scores: 0 = one batched product (autograd keeps (B, n, B, m) for the backward);
    # c > 0 = losses.token_video_scores_lowmem, c videos at a time, keeping only (B, n, B)
    token_chunk: int = 0
    # the data trained on, recorded in every checkpoint: "" = the shipped toy world,
    # "world:PATH" = a generated world folder, "features:PATH" = real features (docs/real_data.md)
    data: str = ""

    def __post_init__(self) -> None:
        validate_train_config(self)

    @property
    def terms(self) -> tuple[str, ...]:
        """The enabled loss terms, e.g. ("L1", "L3")."""
        return tuple(self.losses.split("+"))


def validate_model_config(cfg: ModelConfig) -> None:
    """Raise ValueError with a learner-friendly message on an impossible ModelConfig."""
    if cfg.video_input not in VIDEO_INPUTS:
        raise ValueError(
            f"video_input is {cfg.video_input!r} but must be one of {VIDEO_INPUTS}: "
            "'pixels' for the toy world's frames, 'features' for pre-extracted features"
        )
    if cfg.frame_pool not in ("max", "avg"):
        raise ValueError(f"frame_pool is {cfg.frame_pool!r} but must be 'max' or 'avg'")
    if cfg.video_input == "features" and not cfg.feature_dim:
        raise ValueError(
            "video_input='features' needs feature_dim, the size D of one frame feature "
            "(e.g. ModelConfig(video_input='features', feature_dim=512))"
        )
    if cfg.d <= 0 or cfg.heads <= 0 or cfg.d % cfg.heads != 0:
        raise ValueError(
            f"d={cfg.d} must be a positive multiple of heads={cfg.heads}: "
            "each attention head gets d / heads channels"
        )
    for name in ("video_layers", "text_layers", "fusion_layers"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} is {getattr(cfg, name)} but cannot be negative")
    for name in ("max_frames", "max_tokens", "vocab_size", "frame_size", "mlp_ratio"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} is {getattr(cfg, name)} but must be positive")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout is {cfg.dropout} but must be in [0, 1)")
    if cfg.tau1 <= 0 or cfg.tau2 <= 0:
        raise ValueError(
            f"temperatures must be positive, got tau1={cfg.tau1}, tau2={cfg.tau2} "
            "(paper: 1.0 without normalisation; the kit: 0.07 with normalize=True)"
        )


def validate_train_config(cfg: TrainConfig) -> None:
    """Raise ValueError with a learner-friendly message on an impossible TrainConfig."""
    if cfg.losses not in LOSS_CHOICES:
        raise ValueError(
            f"losses is {cfg.losses!r} but must be one of {LOSS_CHOICES} "
            "(terms joined by '+', in the paper's order, e.g. 'L1+L2+L3')"
        )
    if cfg.negatives not in NEGATIVE_CHOICES:
        raise ValueError(f"negatives is {cfg.negatives!r} but must be one of {NEGATIVE_CHOICES}")
    if cfg.batch_size < 2:
        raise ValueError(
            f"batch_size is {cfg.batch_size} but contrastive learning needs at least 2 pairs: "
            "the other pairs of the batch are the negatives"
        )
    if cfg.k_neg < 1:
        raise ValueError(f"k_neg is {cfg.k_neg} but the fusion loss needs at least 1 negative")
    if "L3" in cfg.terms and cfg.k_neg > cfg.batch_size - 1:
        raise ValueError(
            f"k_neg={cfg.k_neg} but a batch of {cfg.batch_size} pairs has only "
            f"{cfg.batch_size - 1} negatives per anchor: lower k_neg or raise batch_size"
        )
    dev = cfg.device.split(":")[0]
    if dev not in DEVICE_PREFIXES:
        raise ValueError(
            f"device is {cfg.device!r} but must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    if cfg.steps < 1 or cfg.warmup_steps < 0:
        raise ValueError(
            f"need steps >= 1 and warmup_steps >= 0, got steps={cfg.steps}, "
            f"warmup_steps={cfg.warmup_steps}"
        )
    if cfg.lr <= 0:
        raise ValueError(f"lr is {cfg.lr} but must be positive")
    kind, sep, path = cfg.data.partition(":")
    if cfg.data and (not sep or kind not in ("world", "features") or not path):
        raise ValueError(
            f"data is {cfg.data!r} but must be '' (the shipped world), 'world:PATH' or "
            "'features:PATH'"
        )
    if cfg.token_chunk < 0:
        raise ValueError(
            f"token_chunk is {cfg.token_chunk} but must be 0 (one batched product) or a "
            "positive number of videos per chunk, e.g. 32"
        )
    if cfg.ckpt_every < 0 or cfg.log_every < 1 or cfg.num_workers < 0:
        raise ValueError(
            f"need ckpt_every >= 0, log_every >= 1, num_workers >= 0; got {cfg.ckpt_every}, "
            f"{cfg.log_every}, {cfg.num_workers}"
        )
    if not cfg.ckpt_minutes >= 0:  # also catches NaN
        raise ValueError(f"ckpt_minutes is {cfg.ckpt_minutes} but must be >= 0 (0 = off)")
    if (
        isinstance(cfg.seed, bool)
        or not isinstance(cfg.seed, Integral)
        or not 0 <= cfg.seed < MAX_SEED
    ):
        raise ValueError(
            f"seed is {cfg.seed!r} but must be an integer in [0, {MAX_SEED}): it seeds "
            "torch.Generator, which takes no negative seeds"
        )
    if not cfg.pos_tags.strip():
        raise ValueError("pos_tags is empty: use e.g. 'noun+verb', 'noun', 'det+adp' or 'all'")


@dataclass
class Preset:
    """A named pair of configs; `configs()` returns fresh copies that are safe to edit."""

    model: ModelConfig
    train: TrainConfig
    note: str = ""

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        return dataclasses.replace(self.model), dataclasses.replace(self.train)


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        ModelConfig(d=64, text_layers=1, fusion_layers=1, heads=4),
        TrainConfig(
            batch_size=32, steps=300, warmup_steps=30, lr=2e-3, log_every=10, ckpt_every=50
        ),
        note="CI and notebooks: whole CLI run about a minute on a 2-core CPU",
    ),
    "sweep": Preset(
        ModelConfig(d=64, text_layers=1, fusion_layers=1, heads=4),
        TrainConfig(
            batch_size=32, steps=600, warmup_steps=60, lr=2e-3, log_every=50, ckpt_every=100
        ),
        note="one ablation run: 1-4 min on a 2-core CPU (27 runs in under an hour with 2 jobs)",
    ),
    "default": Preset(
        ModelConfig(d=128),
        TrainConfig(
            batch_size=32, steps=1800, warmup_steps=100, lr=1e-3, log_every=25, ckpt_every=100
        ),
        note="best CPU model: under 15 min on a 2-core laptop",
    ),
    "gpu": Preset(
        ModelConfig(d=256, text_layers=2, fusion_layers=2, heads=8),
        TrainConfig(
            batch_size=128,
            steps=5000,
            warmup_steps=250,
            lr=5e-4,
            amp=True,
            compile=True,
            log_every=50,
            ckpt_every=250,
        ),
        note="a real GPU: wider model, batch 128 as in the paper, bf16 autocast + compile",
    ),
}


def config_to_dict(cfg: ModelConfig | TrainConfig) -> dict[str, Any]:
    """Plain dict (ints, floats, strings, bools, None) for checkpoints and JSON."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a ModelConfig / TrainConfig; unknown keys are an error, missing keys default.

    Missing keys get today's defaults so that a checkpoint written by an older kit still loads.
    """
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no field(s) {unknown}; known fields: {sorted(names)}. "
            "Was this written by a newer taco_lite?"
        )
    return cls(**data)


__all__ = [
    "LOSS_CHOICES",
    "NEGATIVE_CHOICES",
    "PRESETS",
    "ModelConfig",
    "Preset",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
]
