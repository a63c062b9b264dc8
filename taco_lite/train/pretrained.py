"""Load the shipped checkpoint, or train a small model when it cannot be used.

Notebooks 03 and 04 (and anyone else who needs "a trained TACo, now") call `load_or_train`
instead of repeating the same 25 lines: the shipped `data/checkpoints/taco.pt` when it was
trained on this vocabulary, else a short run of the `fast` preset. A short run trains into a
temporary folder that is removed afterwards: the model comes back in memory, nothing piles up.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import taco_lite
from taco_lite.config import PRESETS
from taco_lite.model import TacoModel

SHIPPED = Path("data") / "checkpoints"


def tiny_configs(seed: int = 0) -> tuple[Any, Any]:
    """The `fast` preset shrunk for notebooks' fast mode (CI): d = 32, 25 steps, B = 16."""
    mcfg, tcfg = PRESETS["fast"].configs()
    mcfg = dataclasses.replace(mcfg, d=32, heads=2)
    tcfg = dataclasses.replace(
        tcfg, steps=25, warmup_steps=3, batch_size=16, k_neg=4, lr=3e-3, seed=seed
    )
    return mcfg, tcfg


def load_or_train(
    datasets: Mapping[str, Sequence],
    vocab: Any,
    *,
    checkpoint: str | Path | None = "taco.pt",
    fast: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> TacoModel:
    """A trained model in eval mode: the shipped checkpoint if usable, else a short training.

    datasets: at least {"train": ...} as built by `taco_lite.data.build_datasets`.
    vocab: the vocabulary those datasets were encoded with; a checkpoint trained on another
        vocabulary would read different token ids, so it is not used.
    checkpoint: a file name under `data/checkpoints/`, a path, or None to always train.
    fast: train the tiny configuration (`tiny_configs`) and never load, as in CI's fast mode.
    """
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.train.loop import train

    model = None
    if checkpoint is not None and not fast:
        path = Path(checkpoint)
        if not path.is_absolute() and not path.is_file():
            path = taco_lite.repo_root() / SHIPPED / path
        if path.is_file():
            model, words, _ = load_model(path)
            if words != vocab.to_list():
                log(f"{path} was trained on another vocabulary; training a new model instead")
                model = None
            else:
                log(f"loaded {path}")
        else:
            log(f"{path} not found; training a new model instead")
    if model is None:
        if fast:
            mcfg, tcfg = tiny_configs(seed)
        else:
            mcfg, tcfg = PRESETS["fast"].configs()
            tcfg = dataclasses.replace(tcfg, seed=seed)
        with tempfile.TemporaryDirectory(prefix="taco_nb_") as out:
            tcfg = dataclasses.replace(tcfg, ckpt_dir=out, progress=False)
            result = train(mcfg, tcfg, datasets=datasets, vocab=vocab)
        model = result.model
        log(f"trained {tcfg.steps} steps ({tcfg.losses}) in {result.seconds:.0f} s")
    return model.eval()
