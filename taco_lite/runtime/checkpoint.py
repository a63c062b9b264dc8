"""Save and load training state: atomic writes, plain contents, a format version.

A checkpoint is a dict of plain values (tensors, ints, floats, strings, lists, dicts), so that
`torch.load(path, weights_only=True)` can read it without running any pickled code. It holds
the model weights, optionally the optimiser / scheduler / RNG states (to resume exactly), both
configs as dicts and the vocabulary as a list of strings.

Writes go to a temporary file in the same folder, then `os.replace` swaps it in. A crash mid-
write therefore leaves the previous checkpoint untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from taco_lite import __version__
from taco_lite.config import ModelConfig, TrainConfig, config_from_dict, config_to_dict

FORMAT_VERSION = 1  # bump when the layout below changes; load_checkpoint refuses the others

RETRAIN_HINT = "retrain with `python -m taco_lite.train --preset fast` (or re-download it)"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or from another format version."""


def rng_states() -> dict[str, Any]:
    """Global RNG states (dropout uses them): torch CPU, and every CUDA device if any."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        cuda = [s.cpu() for s in states["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _vocab_list(vocab: Any) -> list[str] | None:
    if vocab is None:
        return None
    if hasattr(vocab, "to_list"):
        return list(vocab.to_list())
    return [str(w) for w in vocab]


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    step: int = 0,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    vocab: Any = None,
    extra: dict[str, Any] | None = None,
    with_rng: bool = True,
) -> Path:
    """Atomically write a checkpoint to `path` and return it.

    Leave `optimizer` and `scheduler` out (None) for a small file to ship or evaluate from:
    Adam's two moment buffers triple the size. `extra` must hold plain values only.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model_cfg = model_cfg if model_cfg is not None else getattr(model, "cfg", None)
    state = {
        "format_version": FORMAT_VERSION,
        "taco_lite_version": __version__,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in _plain_module(model).state_dict().items()},
        "model_cfg": config_to_dict(model_cfg) if model_cfg is not None else None,
        "train_cfg": config_to_dict(train_cfg) if train_cfg is not None else None,
        "vocab": _vocab_list(vocab),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_states() if with_rng else None,
        "extra": extra or {},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows (same folder, same filesystem)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _plain_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module under a torch.compile wrapper, so that keys carry no `_orig_mod.` prefix."""
    return getattr(model, "_orig_mod", model)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True` and check its format version.

    Raises CheckpointError naming the file when it is missing, truncated / corrupt, or written
    in another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path, or {RETRAIN_HINT}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code, ...
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {type(err).__name__}): "
            f"{RETRAIN_HINT}"
        ) from err
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(
            f"{path} is not a taco_lite checkpoint (no format_version): {RETRAIN_HINT}"
        )
    found = state["format_version"]
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is checkpoint format {found}, this taco_lite "
            f"({__version__}) reads format {FORMAT_VERSION}: {RETRAIN_HINT}"
        )
    return state


def restore_training_state(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> int:
    """Put a loaded checkpoint back into live objects; returns the step it was written at."""
    _plain_module(model).load_state_dict(state["model"])
    if optimizer is not None:
        if state.get("optimizer") is None:
            raise CheckpointError(
                "this checkpoint holds no optimiser state (a slim export), so training cannot "
                "resume from it exactly: resume from the run's last.pt instead"
            )
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and state.get("rng") is not None:
        set_rng_states(state["rng"])
    return int(state["step"])


def load_model(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[torch.nn.Module, list[str] | None, tuple[ModelConfig, TrainConfig | None]]:
    """Rebuild a trained model for evaluation: returns (model in eval mode, vocab, configs).

    The vocabulary comes back as a list of strings; `taco_lite.text.Vocab.from_list` turns it
    into a Vocab.
    """
    from taco_lite.model import (
        TacoModel,  # local import keeps checkpoint -> model out of import cycles
    )

    state = load_checkpoint(path, map_location=map_location)
    if state.get("model_cfg") is None:
        raise CheckpointError(f"{path} holds no model config, so the model cannot be rebuilt")
    model_cfg = config_from_dict(ModelConfig, state["model_cfg"])
    train_cfg = (
        config_from_dict(TrainConfig, state["train_cfg"]) if state.get("train_cfg") else None
    )
    model = TacoModel(model_cfg)
    model.load_state_dict(state["model"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return model, state.get("vocab"), (model_cfg, train_cfg)
