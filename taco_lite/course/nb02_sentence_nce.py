"""Feedback for notebook 02 (L1, Eq. 3): the sentence-level loss and the masked mean of frames."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from taco_lite.course.feedback import CheckReport, _call, _expect, _gen, _gradcheck, _is_tensor
from taco_lite.course.references import _ref_video_global

__all__ = ["check_sentence_nce", "check_video_global"]


def _ce_rows(logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, torch.arange(logits.shape[0]))


def check_sentence_nce(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 02.1: `fn(text_global, video_global, tau=1.0, symmetric=False) -> scalar` (Eq. 3)."""
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
    if got is not None and _is_tensor(report, probe, got, ()):
        sim = t @ v.T  # (B, B)
        mistakes = [
            (_ce_rows(sim.T / tau),
             "softmax over the wrong axis: for each text i, Eq. 3 normalises over the videos j "
             "(rows of text_global @ video_global.T, dim=1); you normalised over texts (video-to-text)"),
            (_ce_rows(sim), "your loss ignores tau: divide the similarities by tau before the softmax"),
            (_ce_rows(sim * tau), "you multiplied by tau; Eq. 3 divides the similarities by tau"),
            (_ce_rows(sim / tau) * 5, "you summed over the texts; Eq. 3 takes the mean over i"),
            (-_ce_rows(sim / tau), "the sign is flipped: the loss is -log softmax (positive)"),
            (0.5 * (_ce_rows(sim / tau) + _ce_rows(sim.T / tau)),
             "you averaged both directions although symmetric=False: Eq. 3 is text-to-video only"),
            (F.cross_entropy(sim / tau, torch.zeros(5, dtype=torch.long)),
             "the positive of text i is video i (the diagonal), not column 0"),
        ]  # fmt: skip
        hint = "compare with mean_i -log softmax_j(s1(i, :) / tau)[i]"
        _expect(report, probe, got, sentence_nce(t, v, tau=tau), hint, mistakes)
    probe = "symmetric=True"
    got = _call(report, probe, fn, t, v, tau=tau, symmetric=True)
    if got is not None and _is_tensor(report, probe, got, ()):
        hint = "symmetric=True should average the text-to-video and video-to-text losses (0.5 each)"
        _expect(report, probe, got, sentence_nce(t, v, tau=tau, symmetric=True), hint)
    probe = "large similarities (|s1| ~ 1e4): stays finite"
    big_t, big_v = 100 * t, 100 * v
    got = _call(report, probe, fn, big_t, big_v, tau=1.0)
    if got is not None:
        hint = (
            "overflow: exp of large similarities gives inf/NaN. Use F.log_softmax or "
            "F.cross_entropy (they subtract the max first) instead of log(softmax(...))"
        )
        _expect(report, probe, got, sentence_nce(big_t, big_v), hint, finite_tensor=True)
    small = (t[:3, :4].clone().requires_grad_(), v[:3, :4].clone().requires_grad_())
    _gradcheck(report, lambda a, b: fn(a, b, tau=0.7), small)
    return report.finish(verbose)


def check_video_global(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 02.2: `fn(video_tokens (B, m, d), video_mask (B, m)) -> x_bar (B, d)` (§2)."""
    report = CheckReport("video_global")
    g = _gen(12)
    B, m, d = 3, 5, 4
    x = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    want = _ref_video_global(x, mask)
    probe = "masked mean against the reference (B=3, m=5, padded videos)"
    got = _call(report, probe, fn, x, mask)
    if got is not None and _is_tensor(report, probe, got, (B, d)):
        mistakes = [
            (x.mean(1), "padded frames were averaged in: average over valid frames only (video_mask)"),
            ((x * mask[:, :, None]).sum(1) / m, "you divided by m; divide by the number of valid frames of each video"),
            ((x * mask[:, :, None]).sum(1), "you summed; x_bar is the *mean* over valid frames"),
        ]  # fmt: skip
        _expect(report, probe, got, want, "compare with (x * mask).sum(1) / mask.sum(1)", mistakes)
    probe = "padded frames hold huge values: result unchanged"
    noisy = x.clone()
    noisy[~mask] = 1e6
    got = _call(report, probe, fn, noisy, mask)
    if isinstance(got, torch.Tensor):
        hint = (
            "your mean ignores video_mask: padded frames changed the result. Select "
            "them away with torch.where(mask[..., None], x, 0) before summing"
        )
        _expect(report, probe, got, want, hint)
    _gradcheck(report, lambda a: fn(a, mask), (x.clone().requires_grad_(),))
    return report.finish(verbose)
