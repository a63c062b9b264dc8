"""Input checks shared by `losses`, `cascade` and `metrics`.

Why a module of its own: the maths functions are meant to be called by learners, and a shape
mistake deep inside an einsum gives an unreadable error. These helpers raise `ValueError`
messages that say what was expected, what was received, and what to try. Imports only torch.
"""

from __future__ import annotations

import math

import torch


def shape_str(t: torch.Tensor) -> str:
    """`(4, 7)` rather than `torch.Size([4, 7])`, so messages read like the docstrings."""
    return str(tuple(t.shape))


def require_tensor(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor but is a {type(t).__name__}")
    if t.device.type == "meta":
        raise ValueError(
            f"{name} is on the 'meta' device: a shape-only placeholder that holds no numbers "
            "(a model built with device='meta' and never loaded). Materialise it first, e.g. "
            "model.to_empty(device='cpu') then load a checkpoint, or build it on 'cpu'"
        )
    return t


def require_dims(name: str, t: torch.Tensor, layout: str) -> None:
    """Check the number of dims; `layout` is the expected shape in words, e.g. "(B, n, d)"."""
    require_tensor(name, t)
    want = len([part for part in layout.strip("()").split(",") if part.strip()])
    if t.dim() != want:
        raise ValueError(
            f"{name} should be {want}-D {layout} but has shape {shape_str(t)}: "
            f"check which tensor you passed, or add/remove a batch dimension"
        )


def require_float(name: str, t: torch.Tensor) -> None:
    if not t.is_floating_point():
        raise ValueError(
            f"{name} should be a float tensor but has dtype {t.dtype}: try {name}.float()"
        )


def require_bool(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.bool:
        raise ValueError(
            f"{name} should be a bool mask (True = valid) but has dtype {t.dtype}: "
            f"try {name}.bool() or ({name} > 0)"
        )


def require_no_nan(name: str, t: torch.Tensor) -> None:
    if torch.isnan(t).any():
        bad = int(torch.isnan(t).sum())
        raise ValueError(
            f"{name} contains {bad} NaN value(s) (shape {shape_str(t)}): "
            f"look for a division by zero or a log of 0 upstream"
        )


# Why a tensor of model outputs holds NaN / inf, most of the time.
DIVERGED = (
    "training probably diverged: a learning rate too high (or inf), a temperature near 0, or "
    "no gradient clipping; lower the learning rate, keep grad_clip > 0, and check the "
    "model's inputs for NaN"
)


def require_finite(name: str, t: torch.Tensor, cause: str = DIVERGED) -> None:
    """NaN or +-inf anywhere in `t` -> ValueError naming it, with counts and a likely cause.

    One `torch.isfinite(t).all()` on the happy path; the counts are computed only on failure.
    """
    if not bool(torch.isfinite(t).all()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} inf value(s) (shape {shape_str(t)}, "
            f"dtype {t.dtype}): {cause}"
        )


def require_finite_result(name: str, t: torch.Tensor, tau: float | None = None) -> torch.Tensor:
    """Check a loss / score computed from finite inputs; returns `t` for a one-line return."""
    if bool(torch.isfinite(t).all()):
        return t
    why = f"the temperature tau={tau} is too small for these scores, or " if tau else ""
    raise ValueError(
        f"{name} came out NaN or inf although its inputs are finite: {why}the inputs are so "
        "large that the computation overflows (normalise the embeddings, or compute in "
        "float32 instead of float16)"
    )


def require_same_dtype(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """Two floats multiplied together need one dtype, except under autocast (which casts)."""
    if a.dtype == b.dtype or torch.is_autocast_enabled(a.device.type):
        return
    raise ValueError(
        f"{a_name} is {a.dtype} but {b_name} is {b.dtype}: use one dtype for both, e.g. "
        f"{a_name}.float() and {b_name}.float(), or run under torch.autocast, which casts them"
    )


def require_positive(name: str, value: float) -> None:
    """A temperature: > 0 and finite (tau = inf makes every logit 0, the loss log B)."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0 but is {value}: a temperature divides the scores")
    if not math.isfinite(value):
        raise ValueError(
            f"{name} must be a finite number but is {value}: an infinite temperature makes "
            "every score 0, and the loss log B whatever the model; try 0.05 or 1.0"
        )


# Why a score matrix handed to a metric holds +-inf.
SCORES_INF = (
    "a metric ranks finite scores only (an all-inf matrix would rank every ground truth "
    "first); look for an overflow or a division by zero upstream, or replace masked entries "
    "by a large finite value"
)


def require_int(name: str, value: object) -> int:
    """Accept Python ints (and 0-d integer tensors), reject bools and floats like 8.0."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int but is {value!r} ({type(value).__name__})")
    return value
