"""Where training runs: device choice, bf16 autocast and torch.compile (nanoGPT habits).

CPU runs get a `nullcontext()` where autocast is off; `device="auto"` quietly falls back to CPU.
"""

from __future__ import annotations

import contextlib

import torch

from taco_lite.model import TacoModel


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` = cuda, then mps, then cpu (quietly); an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but this torch sees no CUDA GPU: use device='auto'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} but MPS is not available here: use device='auto'")
    return dev


def amp_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA and CPU when asked; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compile_encoders(model: TacoModel) -> None:
    """torch.compile each encoder in place (state_dict keys unchanged).

    If the compiler is unusable (e.g. no C++ toolchain on a CPU laptop), dynamo falls back to
    eager mode with a warning instead of crashing the run.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    for part in (model.video, model.text, model.fusion):
        part.compile(dynamic=None)
