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
Part = str | Sequence[str] | None  # the section(s) a grade cell checks (CheckReport.only)

__all__ = ["TOL", "CheckFailed", "CheckReport", "rel_error"]


class CheckFailed(AssertionError):
    """A check found a mistake; the message lists every failed probe with a hint (`.report`)."""

    report: CheckReport | None = None


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
    """What one `check_*` call found: one line per probe, and the failures with their hints.

    Each probe belongs to a *section* ("values", "edge cases", "gradients", ...; set
    `report.section` before the probe). A grade cell worth part of an exercise's points checks
    one or more sections: `finish(verbose, part="gradients")` prints and raises for those only,
    so a partly right answer earns the points of the parts it gets right (issue 19).
    """

    name: str
    entries: list[tuple[str, str, str, str]] = field(default_factory=list)  # section, status, line, hint
    section: str = "values"

    @property
    def lines(self) -> list[str]:
        return [f"  {status:<5} {line}" for _, status, line, _ in self.entries]

    @property
    def failures(self) -> list[str]:
        return [f"{line}\n        -> {hint}" for _, st, line, hint in self.entries if st == "FAIL"]

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(sec for sec, *_ in self.entries))

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def hints(self) -> list[str]:
        """The hints of the failed probes, in the order they were printed."""
        return [hint for _, st, _, hint in self.entries if st == "FAIL"]

    def ok(self, line: str) -> None:
        self.entries.append((self.section, "ok", line, ""))

    def fail(self, line: str, hint: str) -> None:
        self.entries.append((self.section, "FAIL", line, hint))

    def skip(self, line: str, why: str) -> None:
        """A probe not run because an earlier one failed (its answer would be misleading)."""
        self.entries.append((self.section, "skip", f"{line} ({why})", ""))

    def only(self, part: str | Sequence[str] | None) -> CheckReport:
        """The report restricted to the section(s) `part` (None: everything)."""
        if part is None:
            return self
        wanted = [part] if isinstance(part, str) else list(part)
        unknown = [p for p in wanted if p not in self.sections]
        if unknown:
            raise ValueError(
                f"{self.name} has no section {unknown}: its sections are {self.sections}"
            )
        kept = [e for e in self.entries if e[0] in wanted]
        return CheckReport(f"{self.name} [{', '.join(wanted)}]", kept)

    def __str__(self) -> str:
        head = f"{self.name}: {'all checks passed' if self.passed else 'some checks FAILED'}"
        return "\n".join([head, *self.lines])

    def finish(self, verbose: bool, part: str | Sequence[str] | None = None) -> CheckReport:
        """Print (verbose) and raise `CheckFailed` if a probe of `part` failed; returns the report."""
        report = self.only(part)
        if verbose:
            print(report)
        if report.failures:
            error = CheckFailed(
                f"{report.name} failed {len(report.failures)} check(s):\n- "
                + "\n- ".join(report.failures)
            )
            error.report = report  # the hints, in order, for tools and tests
            raise error
        return report


def _call(report: CheckReport, probe: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run the learner's fn with the kit's answer hidden (integrity.py); NotImplementedError
    propagates, any other error becomes a failure (None is returned)."""
    from taco_lite.course.integrity import KitAnswerUsed, run_as_student

    try:
        return run_as_student(report.name, fn, *args, **kwargs)
    except NotImplementedError:
        raise
    except KitAnswerUsed as e:
        report.fail(probe, str(e))
        return None
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


def _gradcheck(
    report: CheckReport, fn: Callable, inputs: tuple, learner: Callable, probe: str = "gradcheck"
) -> None:
    """Compare autograd's gradients with finite differences (float64 inputs), section "gradients".

    fn: what gradcheck calls (often a lambda around `learner`, the learner's function); the
    kit's answer is hidden from `learner` while it runs (integrity.py)."""
    from taco_lite.course.integrity import KitAnswerUsed, kit_hidden, kit_objects

    report.section = "gradients"
    kit = kit_objects(report.name)
    try:
        if id(learner) in kit:
            raise KitAnswerUsed(f"this is the kit's own {kit[id(learner)][1]}, not yours")
        with kit_hidden(report.name, learner) as called:
            try:
                ok = torch.autograd.gradcheck(
                    fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False
                )
            except Exception:
                if called:
                    raise KitAnswerUsed(f"your function calls the kit's own {called[0]}") from None
                raise
        if called:
            raise KitAnswerUsed(f"your function calls the kit's own {called[0]}")
    except NotImplementedError:
        raise
    except KitAnswerUsed as e:
        report.fail(probe, f"{e}: write it yourself")
        return
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
