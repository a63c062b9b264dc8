"""The encoders the downstream tasks compare: sweep checkpoints (trained here when missing) and a
random-init floor, plus the caption idf they were trained with.

Which data an encoder is trained on is a `TrainConfig.data` string (`taco_lite/data/sources.py`): "" for
the shipped world, "world:PATH" or "features:PATH"; the checkpoint records it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch


def text_idf(data: str = "") -> dict[str, float]:
    """idf over the training captions of `data`, as in training (`data.sources.training_idf`)."""
    from taco_lite.data.sources import training_idf

    return training_idf(data)


def ensure_checkpoint(
    root: Path,
    slug: str,
    seed: int,
    preset: str,
    data: str = "",
    steps: int | None = None,
    batch_size: int | None = None,
) -> Path:
    """root/slug/seed<k>/model.pt, trained now on `data` (sweep row config + `preset`) if
    missing. An existing checkpoint trained on other data is an error, not a silent mix."""
    from taco_lite.config import PRESETS
    from taco_lite.data.sources import model_config_for_data
    from taco_lite.runtime.checkpoint import load_checkpoint
    from taco_lite.sweep import ROWS_BY_SLUG
    from taco_lite.train import load_world_datasets, train

    path = root / slug / f"seed{seed}" / "model.pt"
    if path.is_file():
        from taco_lite.runtime.provenance import check_same_data, normalized_spec

        state = load_checkpoint(path)
        seen = (state.get("train_cfg") or {}).get("data", "")
        if normalized_spec(seen) != normalized_spec(data):
            raise ValueError(
                f"{path} was trained on data {seen!r} but this run uses {data!r}: give "
                "--checkpoints a folder of its own for each data set"
            )
        check_same_data(state.get("extra"), seen, data, explicit=False, where=str(path))
        return path
    row = ROWS_BY_SLUG[slug]
    model_cfg, train_cfg = PRESETS[preset].configs()
    model_cfg = model_config_for_data(model_cfg, data)
    steps = steps or train_cfg.steps
    changes: dict[str, Any] = dict(
        losses=row.losses, negatives=row.negatives, pos_tags=row.pos_tags, seed=seed,
        ckpt_dir=str(path.parent), progress=False, steps=steps, data=data,
        warmup_steps=min(train_cfg.warmup_steps, steps // 5),
    )  # fmt: skip
    if batch_size is not None:
        changes["batch_size"] = batch_size
        changes["k_neg"] = min(train_cfg.k_neg, batch_size - 1)
    train_cfg = dataclasses.replace(train_cfg, **changes)
    print(f"training missing checkpoint {path} ({row.name}, preset {preset}, {steps} steps)",
          flush=True)  # fmt: skip
    datasets, vocab = load_world_datasets(model_cfg, train_cfg, splits=("train",))
    train(model_cfg, train_cfg, datasets=datasets, vocab=vocab)
    (path.parent / "last.pt").unlink(missing_ok=True)  # model.pt (slim) is enough here
    return path


def load_encoder(path: Path) -> tuple[Any, Any, str]:
    """(model in eval mode, Vocab, pos_tags) from a checkpoint written by train()."""
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.text import Vocab

    model, words, (_, train_cfg) = load_model(path)
    if words is None:
        raise ValueError(f"{path} holds no vocabulary: evaluate a checkpoint written by train()")
    return model, Vocab.from_list(words), train_cfg.pos_tags if train_cfg else "noun+verb"


def random_encoder(like: Any, seed: int) -> Any:
    """A TacoModel with `like`'s config and fresh random weights (seeded), in eval mode."""
    from taco_lite.model import TacoModel

    torch.manual_seed(seed)
    return TacoModel(like.cfg).eval()
