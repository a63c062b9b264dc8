"""Save and load training state: atomic writes, plain contents, a format version.

A checkpoint is a dict of plain values (tensors, ints, floats, strings, lists, dicts), so that
`torch.load(path, weights_only=True)` can read it without running any pickled code. It holds
the model weights, optionally the optimiser / scheduler / RNG states (to resume exactly), both
configs as dicts and the vocabulary as a list of strings.

Writes go to a temporary file in the same folder, then `os.replace` swaps it in. A crash mid-
write therefore leaves the previous checkpoint untouched. Each temporary file names its process;
one left by a killed writer is removed by the next save to the same path, and a save never
touches the file of a process that still runs. Files get mode 0666 minus the umask
(0644 on most systems), so a shared hub can read them.

Every checkpoint carries a SHA-256 of all its contents (`"checksum"`, see checksum.py: tensors,
vocabulary, configs, step; older files of their tensor data only), verified on load, and
loading refuses NaN / inf weights: a flipped byte or a diverged run is reported, never used.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from taco_lite import __version__
from taco_lite.config import ModelConfig, TrainConfig, config_from_dict, config_to_dict
from taco_lite.runtime.checksum import content_checksum
from taco_lite.runtime.tempfiles import create_temp_file, remove_stale_temp_files

FORMAT_VERSION = 1  # bump when the layout below changes; load_checkpoint refuses the others

RETRAIN_HINT = "retrain with `python -m taco_lite.train --preset fast` (or re-download it)"


CHECKSUM_ALGO = "sha256"

# Fields of ModelConfig that fix the shape of some weight: a mismatch makes load_state_dict fail.
SHAPE_FIELDS = (
    "d",
    "video_input",
    "feature_dim",
    "frame_size",
    "frame_motion",
    "video_layers",
    "text_layers",
    "fusion_layers",
    "mlp_ratio",
    "max_frames",
    "max_tokens",
    "vocab_size",
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, unsafe, or from another format version / config."""


def tensor_checksum(obj: Any) -> str:
    """SHA-256 over every tensor in `obj` (nested dicts / lists), with its path, dtype and shape.

    Dict keys are visited in sorted order, so the digest depends on the contents only.
    """
    h = hashlib.new(CHECKSUM_ALGO)

    def visit(x: Any, where: str) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"{where}|{x.dtype}|{tuple(x.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                visit(x[k], f"{where}/{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                visit(v, f"{where}/{i}")

    visit(obj, "")
    return h.hexdigest()


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
    state["checksum"] = {
        "algo": CHECKSUM_ALGO,
        "tensors": tensor_checksum(state),  # what readers before "content" check
        "content": content_checksum(state),  # everything: tensors, vocab, configs, step
    }
    remove_stale_temp_files(path)
    tmp = create_temp_file(path)
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

    Raises CheckpointError naming the file when it is missing, truncated / corrupt, unsafe
    (pickled code), written in another format, fails its tensor checksum, or holds NaN / inf
    weights.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint: give the file, e.g. {path / 'model.pt'}"
        )
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path, or {RETRAIN_HINT}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save: zip (or legacy pickle)
        raise _corrupt(path, ValueError("not a torch file"))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower():  # a well-formed file with code in it
            raise CheckpointError(
                f"{path} is unsafe: it holds pickled Python objects or code that "
                "`torch.load(weights_only=True)` refuses to run (a taco_lite checkpoint holds "
                "plain tensors, numbers and strings only). Do not load it with "
                f"weights_only=False unless you trust its source; else {RETRAIN_HINT}"
            ) from err
        raise _corrupt(path, err) from err
    except Exception as err:  # truncated zip, random bytes, ...
        raise _corrupt(path, err) from err
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
    _verify_checksum(path, state)
    _check_finite_weights(path, state)
    return state


def _corrupt(path: Path, err: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable checkpoint (truncated or corrupt: {type(err).__name__}): "
        f"{RETRAIN_HINT}"
    )


def _verify_checksum(path: Path, state: dict[str, Any]) -> None:
    """Compare the stored SHA-256 with a fresh one: of every value ("content") where the file
    has it, else of the tensor data ("tensors", files written before "content" existed; files
    without any checksum pass: they were written before checksums existed)."""
    stored = state.get("checksum")
    if stored is None:
        return
    if not isinstance(stored, dict) or stored.get("algo") != CHECKSUM_ALGO:
        raise CheckpointError(f"{path} has an unknown checksum entry {stored!r}: {RETRAIN_HINT}")
    body = {k: v for k, v in state.items() if k != "checksum"}
    if "content" in stored:
        if content_checksum(body) != stored["content"]:
            raise CheckpointError(
                f"{path} fails its checksum: its contents (weights, vocabulary, configs or "
                "step) changed after it was written (a damaged disk or copy, or an edit). "
                f"Use another copy, or {RETRAIN_HINT}"
            )
        return
    if tensor_checksum(body) != stored.get("tensors"):
        raise CheckpointError(
            f"{path} fails its checksum: its tensor data changed after it was written "
            f"(a damaged disk or copy). Use another copy, or {RETRAIN_HINT}"
        )


def _check_finite_weights(path: Path, state: dict[str, Any]) -> None:
    weights = state.get("model")
    if not isinstance(weights, dict):
        return
    bad = [
        k
        for k, v in weights.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(
            f"{path} holds NaN or inf weights ({shown}): the run that wrote it diverged "
            "(learning rate too high? try a lower --lr or keep grad_clip on). Resume from an "
            f"earlier checkpoint, or {RETRAIN_HINT}"
        )


def config_differences(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """'field: checkpoint X, here Y' for every field whose value differs (keys of `current`)."""
    if saved is None:
        return []
    return [
        f"{k}: checkpoint {saved[k]!r}, here {current[k]!r}"
        for k in current
        if k in saved and saved[k] != current[k]
    ]


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Any = None) -> None:
    """`model.load_state_dict(state["model"])`, but a config mismatch names the fields.

    A checkpoint written with another `d`, `max_tokens`, `vocab_size`, ... cannot fit this
    model; instead of PyTorch's list of size mismatches, say which ModelConfig field differs
    and how to rebuild the model from the checkpoint.
    """
    plain = _plain_module(model)
    where = f"{path} " if path is not None else "the checkpoint "
    cfg = getattr(plain, "cfg", None)
    if cfg is not None and state.get("model_cfg") is not None:
        here = config_to_dict(cfg)
        diffs = config_differences(
            state["model_cfg"], {k: here[k] for k in SHAPE_FIELDS if k in here}
        )
        if diffs:
            raise CheckpointError(
                f"{where}was written by a model of another shape; ModelConfig differs in "
                + "; ".join(diffs)
                + ". Rebuild the model from the checkpoint (`load_model(path)`, or "
                "`ModelConfig(**state['model_cfg'])`) instead of from a preset, or retrain "
                "with the new config"
            )
    try:
        plain.load_state_dict(state["model"])
    except RuntimeError as err:
        mine = plain.state_dict()
        theirs = state["model"]
        missing = sorted(set(mine) - set(theirs))
        extra = sorted(set(theirs) - set(mine))
        shapes = [
            f"{k}: checkpoint {tuple(theirs[k].shape)}, model {tuple(mine[k].shape)}"
            for k in mine
            if k in theirs and tuple(theirs[k].shape) != tuple(mine[k].shape)
        ]
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape(s) differ, e.g. " + "; ".join(shapes[:3]))
        if missing:
            parts.append(f"{len(missing)} weight(s) missing, e.g. {missing[:3]}")
        if extra:
            parts.append(f"{len(extra)} unexpected weight(s), e.g. {extra[:3]}")
        raise CheckpointError(
            f"{where}does not fit this model ({'; '.join(parts) or err}). Build the model "
            "from the checkpoint's own config with `load_model(path)`"
        ) from err


def restore_training_state(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> int:
    """Put a loaded checkpoint back into live objects; returns the step it was written at."""
    load_weights(model, state)
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
    load_weights(model, state, path)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    extra = state.get("extra") or {}
    # what the run recorded (runtime.provenance): its preset and its data's fingerprint
    model.provenance = {k: extra[k] for k in ("preset", "data") if k in extra}
    return model, state.get("vocab"), (model_cfg, train_cfg)
