"""Where training runs: device choice, bf16 autocast and torch.compile (nanoGPT habits).

CPU runs get a `nullcontext()` where autocast is off; `device="auto"` quietly falls back to CPU.
"""

from __future__ import annotations

import contextlib
import os

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
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={name!r} is not a device name: use auto, cpu, cuda, cuda:N (N = 0, 1, ...) "
            "or mps"
        ) from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={name!r}: taco_lite runs on cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but this torch sees no CUDA GPU: use device='auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s): "
            "use cuda:0 or device='auto'"
        )
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


@contextlib.contextmanager
def deterministic_mode(enabled: bool = True, device: torch.device | None = None):
    """Same seed, same machine, same thread count -> bit-identical runs (restored on exit).

    Turns on `torch.use_deterministic_algorithms(True, warn_only=True)`: ops with a
    deterministic variant use it, and an op without one warns instead of failing the run.
    On CUDA it also pins cuDNN to deterministic kernels (no autotuning) and sets
    CUBLAS_WORKSPACE_CONFIG=:4096:8 unless already set, which cuBLAS reads only when its first
    handle is created, i.e. it helps only if nothing used CUDA matmuls earlier in the process
    (set it in the shell to be sure). See docs/determinism.md for what stays non-deterministic.
    """
    if not enabled:
        yield
        return
    import torch.utils.deterministic as det_utils

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        det_utils.fill_uninitialized_memory,
    )
    if device is not None and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    # The flag also fills every torch.empty with NaN (a debugging aid that costs a write per
    # allocation); the kit never reads uninitialised memory, so skip that part.
    det_utils.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:4]
        det_utils.fill_uninitialized_memory = before[4]
