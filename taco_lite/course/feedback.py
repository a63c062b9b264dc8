"""What every exercise check shares: the relative error, the report, and the probe helpers.

Why: a learner who sees "wrong answer" learns little. Each `check_*` function (one module per
notebook: `nb00_world` ... `nb05_training`) runs the learner's function next to the package's
reference (docs/method.md §8) on small inputs, and on inputs crafted to expose one common mistake
each (ignoring a mask, the wrong softmax axis, a forgotten temperature, the positive among the
negatives, weights that are not renormalised, NaN on all-zero weights). It prints one line per
probe and, if any probe fails, raises `CheckFailed` (an AssertionError, so nbgrader counts the
grade cell as failed) whose message says *what* is wrong and what to try.

`NotImplementedError` from an unfinished exercise is never caught: it propagates, so that an
untouched notebook fails its grade cells with that one error only (see `references.py` for the
fallbacks that *do* catch it).

The pattern is CS231n's: a relative error with the target stated ("expect < 1e-6"). The helpers
with a leading underscore are for the check modules of this package only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

TOL = 1e-6  # relative error accepted against the reference, in float64

__all__ = ["TOL", "CheckFailed", "CheckReport", "rel_error"]


class CheckFailed(AssertionError):
    """A check found a mistake; the message lists every failed probe with a hint."""


def rel_error(x: Any, y: Any) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise (CS231n's relative error).

    Accepts tensors, numpy arrays, lists and numbers. Different shapes or a NaN give inf, so a
    comparison `rel_error(a, b) < tol` is False whenever the two cannot be equal.
    """
    a = torch.as_tensor(_plain(x), dtype=torch.float64)
    b = torch.as_tensor(_plain(y), dtype=torch.float64)
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    if torch.isnan(a).any() or torch.isnan(b).any():
        return math.inf
    same = a == b  # equal infinities count as equal
    diff = torch.where(same, 0.0, (a - b).abs())
    denom = torch.where(same, 1.0, (a.abs() + b.abs()).clamp_min(1e-8))
    err = (diff / denom).max()
    return float(err) if torch.isfinite(err) else math.inf


def _plain(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return x


@dataclass
class CheckReport:
    """What one `check_*` call found: one line per probe, and the failures with their hints."""

    name: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def ok(self, line: str) -> None:
        self.lines.append(f"  ok    {line}")

    def fail(self, line: str, hint: str) -> None:
        self.lines.append(f"  FAIL  {line}")
        self.failures.append(f"{line}\n        -> {hint}")

    def __str__(self) -> str:
        head = f"{self.name}: {'all checks passed' if self.passed else 'some checks FAILED'}"
        return "\n".join([head, *self.lines])

    def finish(self, verbose: bool) -> CheckReport:
        if verbose:
            print(self)
        if self.failures:
            raise CheckFailed(
                f"{self.name} failed {len(self.failures)} check(s):\n- "
                + "\n- ".join(self.failures)
            )
        return self


def _call(report: CheckReport, probe: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run the learner's fn; NotImplementedError propagates, any other error becomes a failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:  # the learner's code: report it, keep probing
        report.fail(probe, f"your function raised {type(e).__name__}: {e}")
        return None


def _close(report: CheckReport, probe: str, got: Any, want: Any, tol: float = TOL) -> bool:
    err = rel_error(got, want)
    if err < tol:
        report.ok(f"{probe}: relative error {err:.1e} (expect < {tol:.0e})")
        return True
    return False


def _diagnose(got: Any, candidates: Sequence[tuple[Any, str]], default: str) -> str:
    """The hint of the first known mistake whose output equals `got`, else `default`."""
    for value, hint in candidates:
        if value is not None and rel_error(got, value) < 1e-6:
            return hint
    return default


def _expect(
    report: CheckReport,
    probe: str,
    got: Any,
    want: Any,
    hint: str,
    mistakes: Sequence[tuple[Any, str]] = (),
    finite_tensor: bool = False,
) -> bool:
    """The compare-and-diagnose step of a probe: ok if `got` matches `want`, else one failure.

    The failure's hint is that of the first known mistake (output, hint) in `mistakes` whose
    output equals `got`, else `hint`. finite_tensor=True (the overflow probes): anything but a
    finite torch.Tensor fails with `hint` at once. Returns whether the probe passed.
    """
    if finite_tensor and not (isinstance(got, torch.Tensor) and bool(torch.isfinite(got).all())):
        report.fail(probe, hint)
        return False
    if _close(report, probe, got, want):
        return True
    report.fail(probe, _diagnose(got, mistakes, hint))
    return False


def _expect_equal(
    report: CheckReport,
    probe: str,
    got: Any,
    want: Any,
    ok_line: str,
    hint: str,
    mistakes: Sequence[tuple[Any, str]] = (),
) -> bool:
    """`_expect` for exact answers (lists of ids, of frames, of bools): `got == want` or a failure.

    ok_line follows the probe on success; on failure the hint is that of the first known mistake
    (output, hint) whose output equals `got`, else `hint`.
    """
    if got == want:
        report.ok(f"{probe}: {ok_line}")
        return True
    report.fail(probe, next((h for value, h in mistakes if got == value), hint))
    return False


def _shape_of(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return str(tuple(x.shape))
    return type(x).__name__


def _is_tensor(report: CheckReport, probe: str, got: Any, shape: tuple[int, ...]) -> bool:
    if not isinstance(got, torch.Tensor):
        report.fail(
            probe,
            f"expected a torch.Tensor of shape {shape} but got {type(got).__name__}: "
            "return the tensor itself (no .item(), no .tolist())",
        )
        return False
    if tuple(got.shape) != shape:
        report.fail(probe, f"expected shape {shape} but got {_shape_of(got)}")
        return False
    return True


def _gradcheck(report: CheckReport, fn: Callable, inputs: tuple, probe: str = "gradcheck") -> None:
    """Compare autograd's gradients with finite differences (float64 inputs)."""
    try:
        ok = torch.autograd.gradcheck(
            fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False
        )
    except NotImplementedError:
        raise
    except Exception as e:
        ok = False
        detail = f"{type(e).__name__}: {e}"
    else:
        detail = "autograd's gradient differs from finite differences"
    if ok:
        report.ok(f"{probe}: gradients match finite differences")
    else:
        report.fail(
            probe,
            f"{detail.splitlines()[0]}. Keep the computation in torch end to end: no .item(), "
            ".detach(), .numpy() or float() inside, and no in-place edits of the inputs",
        )


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
