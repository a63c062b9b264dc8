"""The checkpoint's content checksum: SHA-256 over everything that shapes results.

`tensor_checksum` (checkpoint.py, the first checksum) covers tensor data only, so a swapped
vocabulary word, an edited config or step loaded silently. `content_checksum` covers every
value in the checkpoint: tensors (path, dtype, shape, bytes), and strings, numbers, booleans
and None with their type, inside dicts (keys sorted) and lists. Checkpoints carry both: a
reader verifies `"content"` where present and falls back on `"tensors"` for files written
before it existed (the shipped data/checkpoints/*.pt).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import torch


def content_checksum(obj: Any, algo: str = "sha256") -> str:
    """SHA-256 over every value in `obj` (nested dicts / lists / tuples), with its path."""
    h = hashlib.new(algo)

    def visit(x: Any, where: str) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"T|{where}|{x.dtype}|{tuple(x.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(f"D|{where}|{len(x)}|".encode())
            for k in sorted(x, key=lambda k: (type(k).__name__, str(k))):
                visit(x[k], f"{where}/{type(k).__name__}:{k}")
        elif isinstance(x, (list, tuple)):
            h.update(f"L|{where}|{len(x)}|".encode())
            for i, v in enumerate(x):
                visit(v, f"{where}/{i}")
        elif isinstance(x, float):
            h.update(f"F|{where}|".encode() + struct.pack("<d", x))
        elif isinstance(x, (bool, int, str, bytes)) or x is None:
            h.update(f"{type(x).__name__}|{where}|{x!r}|".encode())
        else:  # torch.dtype, torch.Size, ...: weights_only loads only plain types
            h.update(f"O|{where}|{type(x).__name__}|{x!r}|".encode())

    visit(obj, "")
    return h.hexdigest()
