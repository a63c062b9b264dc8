"""Feedback for notebook 02 (L1, Eq. 3): the sentence-level loss and the masked mean of frames."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from taco_lite.course.feedback import (
    CheckReport,
    Part,
    _call,
    _expect,
    _gen,
    _gradcheck,
    _is_tensor,
    rel_error,
)
from taco_lite.course.references import _ref_video_global

__all__ = ["check_sentence_nce", "check_video_global"]


def _ce_rows(logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, torch.arange(logits.shape[0]))


def check_sentence_nce(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 02.1: `fn(text_global, video_global, tau=1.0, symmetric=False) -> scalar` (Eq. 3).

    Sections: "values" (against the reference), "edge cases" (symmetric=True agrees with your
    own two directions; large similarities stay finite), "gradients"."""
    from taco_lite.losses import sentence_nce

    report = CheckReport("sentence_nce")
    g = _gen(2)
    t, v = (
        torch.randn(5, 8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    tau = 0.5
    probe = "L1 against the reference (B=5, tau=0.5)"
    got = _call(report, probe, fn, t, v, tau=tau)
    values_ok = False
    if got is not None and _is_tensor(report, probe, got, ()):
        sim = t @ v.T  # (B, B)
        mistakes = [
            (_ce_rows(sim.T / tau),
             "softmax over the wrong axis: for each text i, Eq. 3 normalises over the videos j "
             "(rows of text_global @ video_global.T, dim=1); you normalised over texts (video-to-text)"),
            (_ce_rows(sim), "your loss ignores tau: divide the similarities by tau before the softmax"),
            (_ce_rows(sim * tau), "you multiplied by tau; Eq. 3 divides the similarities by tau"),
            (_ce_rows(sim / tau) * 5, "you summed over the texts; Eq. 3 takes the mean over i"),
            (_ce_rows(sim.T / tau) * 5, "you summed over the texts (Eq. 3 takes the mean over i) "
                                        "and normalised over the wrong axis (texts instead of videos j, dim=1)"),
            (-_ce_rows(sim / tau), "the sign is flipped: the loss is -log softmax (positive)"),
            (0.5 * (_ce_rows(sim / tau) + _ce_rows(sim.T / tau)),
             "you averaged both directions although symmetric=False: Eq. 3 is text-to-video only"),
            (F.cross_entropy(sim / tau, torch.zeros(5, dtype=torch.long)),
             "the positive of text i is video i (the diagonal), not column 0"),
        ]  # fmt: skip
        hint = "compare with mean_i -log softmax_j(s1(i, :) / tau)[i]"
        values_ok = _expect(report, probe, got, sentence_nce(t, v, tau=tau), hint, mistakes)
    report.section = "edge cases"
    probe = "symmetric=True: the mean of your text-to-video and video-to-text losses"
    both = _call(report, probe, fn, t, v, tau=tau, symmetric=True)
    back = _call(report, probe, fn, v, t, tau=tau) if both is not None else None
    one, two, mean = _scalar(got), _scalar(back), _scalar(both)
    if one is not None and two is not None and mean is not None:
        want = 0.5 * (one + two)  # your own L1, both ways
        if rel_error(mean, want) < 1e-6:
            report.ok(f"{probe}: relative error {rel_error(mean, want):.1e}")
        elif rel_error(mean, one) < 1e-6:
            report.fail(probe, "symmetric=True returned the text-to-video loss only: average it "
                               "with the video-to-text loss (0.5 each)")  # fmt: skip
        else:
            report.fail(probe, "symmetric=True should average the text-to-video and "
                               "video-to-text losses (0.5 each)")  # fmt: skip
    probe = "large similarities (|s1| ~ 1e4): stays finite"
    big_t, big_v = 100 * t, 100 * v
    big = _call(report, probe, fn, big_t, big_v, tau=1.0)
    if big is not None and _scalar(big) is not None:
        if not math.isfinite(_scalar(big)):
            report.fail(probe, "overflow: exp of large similarities gives inf/NaN. Use "
                               "F.log_softmax or F.cross_entropy (they subtract the max first) "
                               "instead of log(softmax(...))")  # fmt: skip
        elif values_ok:  # a right L1 must also be right here
            hint = "finite but different from the reference on large similarities"
            _expect(report, probe, big, sentence_nce(big_t, big_v), hint)
        else:
            report.ok(f"{probe}: finite")
    small = (t[:3, :4].clone().requires_grad_(), v[:3, :4].clone().requires_grad_())
    _gradcheck(report, lambda a, b: fn(a, b, tau=0.7), small, fn)
    return report.finish(verbose, part)


def check_video_global(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 02.2: `fn(video_tokens (B, m, d), video_mask (B, m)) -> x_bar (B, d)` (§2).

    Sections: "values", "edge cases" (padded frames cannot change your result), "gradients"."""
    report = CheckReport("video_global")
    g = _gen(12)
    B, m, d = 3, 5, 4
    x = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    want = _ref_video_global(x, mask)
    probe = "masked mean against the reference (B=3, m=5, padded videos)"
    got = _call(report, probe, fn, x, mask)
    if isinstance(got, torch.Tensor) and got.dim() == 2 and tuple(got.shape) != (B, d):
        report.fail(probe, f"you averaged over the wrong axis: got shape {tuple(got.shape)}, but "
                           f"frames are dim=1 of (B, m, d), so x_bar is (B, d) = {(B, d)}")  # fmt: skip
    elif got is not None and _is_tensor(report, probe, got, (B, d)):
        kept = x * mask[:, :, None]
        mistakes = [
            (x.mean(1), "padded frames were averaged in: average over valid frames only (video_mask)"),
            (kept.sum(1) / m, "you divided by m; divide by the number of valid frames of each video"),
            (kept.sum(1), "you summed; x_bar is the *mean* over valid frames"),
        ]  # fmt: skip
        _expect(report, probe, got, want, "compare with (x * mask).sum(1) / mask.sum(1)", mistakes)
    report.section = "edge cases"
    probe = "padded frames hold huge values: your result unchanged"
    noisy = x.clone()
    noisy[~mask] = 1e6
    again = _call(report, probe, fn, noisy, mask)
    if isinstance(again, torch.Tensor) and isinstance(got, torch.Tensor):
        if again.shape == got.shape and rel_error(again, got) < 1e-6:
            report.ok(f"{probe}")
        else:
            report.fail(probe, "your mean ignores video_mask: padded frames changed the result. "
                               "Select them away with torch.where(mask[..., None], x, 0) before "
                               "summing")  # fmt: skip
    _gradcheck(report, lambda a: fn(a, mask), (x.clone().requires_grad_(),), fn)
    return report.finish(verbose, part)


def _scalar(x: object) -> float | None:
    """x as a float if it is one number (a 0-d tensor, a float), else None."""
    if isinstance(x, torch.Tensor):
        return float(x.detach()) if x.numel() == 1 else None
    return float(x) if isinstance(x, int | float) else None
