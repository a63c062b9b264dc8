"""Feedback for notebook 03 (L2, Eq. 4): token-to-video scores and the token-level loss."""

from __future__ import annotations

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

__all__ = ["check_token_video_scores", "check_token_nce"]


def _tvs_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    B, n, m, d = 3, 4, 5, 6  # all different, so a permuted output shows
    text = torch.randn(B, n, d, generator=g, dtype=torch.float64)
    video = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    return text, video, mask


def check_token_video_scores(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 03.1: `fn(text_tokens, video_tokens, video_mask) -> token_scores (B, n, B)`.

    Sections: "values", "edge cases" (padded frames cannot change your result; padding never
    wins with 0), "gradients"."""
    from taco_lite.losses import token_video_scores

    report = CheckReport("token_video_scores")
    text, video, mask = _tvs_inputs(3)
    B, n = text.shape[:2]
    probe = "s(i, p, j) against the reference (B=3, n=4, m=5, padded videos)"
    got = _call(report, probe, fn, text, video, mask)
    values_ok = False
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (B, B, n) and B != n:
        report.fail(
            probe, "axes in the wrong order: return (B, n, B), token p of text i against video j"
        )
    elif got is not None and _is_tensor(report, probe, got, (B, n, B)):
        raw = torch.einsum("ipd,jkd->ipjk", text, video)  # (B, n, B, m)
        w = mask[None, None].double()  # (1, 1, B, m)
        mistakes = [
            (raw.amax(-1), "your scores ignore video_mask: padded frames changed the result. "
                           "Fill padded frames with -inf before the max over frames"),
            ((raw * w).amax(-1), "padded frames score 0 after multiplying by the mask, and 0 beats "
                                 "every negative real score: mask with -inf, not by multiplying"),
            ((raw * w).sum(-1) / w.sum(-1), "you averaged over frames; s(i, p, j) is the *max* over valid frames"),
            ((raw * w).sum(-1), "you summed over frames; s(i, p, j) is the *max* over valid frames"),
            (raw.masked_fill(~mask[None, None], float("-inf")).amax(-1).transpose(0, 2),
             "text and video are swapped: out[i, p, j] is token p of text i against video j"),
        ]  # fmt: skip
        hint = "compare with max over valid k of text_tokens[i, p] . video_tokens[j, k]"
        want = token_video_scores(text, video, mask)
        values_ok = _expect(report, probe, got, want, hint, mistakes)
    report.section = "edge cases"
    probe = "padded frames hold huge values: your result unchanged"
    noisy = video.clone()
    noisy[~mask] = 1e3
    again = _call(report, probe, fn, text, noisy, mask)
    mask_ok = False
    if isinstance(again, torch.Tensor) and isinstance(got, torch.Tensor):
        if again.shape == got.shape and rel_error(again, got) < 1e-6:
            report.ok(probe)
            mask_ok = True
        else:
            report.fail(probe, "your scores ignore video_mask: padded frames changed the result. "
                               "Use scores.masked_fill(~video_mask[None, None], float('-inf')) "
                               "before the max")  # fmt: skip
    probe = "all real scores negative: padding must not win with 0"
    neg_text = -text.abs()
    pos_video = video.abs().masked_fill(~mask[:, :, None], 0.0)
    neg = _call(report, probe, fn, neg_text, pos_video, mask) if mask_ok else None
    if not mask_ok:
        report.skip(probe, "fix the mask first")
    elif isinstance(neg, torch.Tensor):
        zeroed = torch.einsum("ipd,jkd->ipjk", neg_text, pos_video).amax(-1)  # (B, n, B)
        if neg.shape == zeroed.shape and rel_error(neg, zeroed) < 1e-6:
            report.fail(probe, "padded frames score 0, and 0 beats every negative real score: "
                               "mask with -inf, not by multiplying with the mask")  # fmt: skip
        elif neg.shape == zeroed.shape and bool((neg <= 0).all()):
            report.ok(f"{probe}: every score stays negative")
        elif values_ok:
            want = token_video_scores(neg_text, pos_video, mask)
            _expect(report, probe, neg, want, "compare with the reference on negative scores")
        else:
            report.skip(probe, "fix the values first")
    small = _tvs_inputs(4)
    inputs = (
        small[0][:, :2, :3].clone().requires_grad_(),
        small[1][:, :, :3].clone().requires_grad_(),
    )
    _gradcheck(report, lambda a, b: fn(a, b, small[2]), inputs, fn)
    return report.finish(verbose, part)


def _tnce_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    B, n = 4, 5
    scores = torch.randn(B, n, B, generator=g, dtype=torch.float64)
    raw = torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1
    keep = torch.tensor(
        [[0, 1, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=torch.bool
    )
    w = torch.where(keep, raw, 0.0)
    return scores, w / w.sum(1, keepdim=True)


def check_token_nce(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 03.2: `fn(token_scores, token_weights, tau=1.0) -> scalar` (L2, Eq. 4).

    Sections: "values" (against the reference, with and without a text that has no token of
    interest), "edge cases" (all-zero weights give exactly 0; weight-0 tokens may hold -inf),
    "gradients"."""
    from taco_lite.losses import token_nce

    report = CheckReport("token_nce")
    scores, w = _tnce_inputs(5)
    B, n = w.shape
    tau = 0.5
    idx = torch.arange(B)

    def l2(logp: torch.Tensor, weights: torch.Tensor, denom: float) -> torch.Tensor:
        return -(weights * logp[idx, :, idx]).sum() / denom  # logp (B, n, B) -> scalar

    probe = "L2 against the reference (B=4, n=5, tau=0.5)"
    got = _call(report, probe, fn, scores, w, tau=tau)
    values_ok = False
    if got is not None and _is_tensor(report, probe, got, ()):
        uniform = (w > 0).double() / (w > 0).sum(1, keepdim=True)  # (B, n)
        ones = torch.ones_like(w)
        mistakes = []
        # each mistake as written on the raw scores and after torch.where(weights > 0, ...)
        for s in (scores, torch.where(w[:, :, None] > 0, scores, 0.0)):
            right = F.log_softmax(s / tau, dim=2)
            mistakes += [
                (l2(F.log_softmax(s / tau, dim=0), w, B),
                 "softmax over the wrong axis: over texts (dim=0) instead of videos j (dim=2)"),
                (l2(F.log_softmax(s / tau, dim=1), w, B),
                 "softmax over the wrong axis: over tokens (dim=1) instead of videos j (dim=2)"),
                (l2(F.log_softmax(s, dim=2), w, B), "your loss ignores tau: divide token_scores by tau"),
                (l2(F.log_softmax(s * tau, dim=2), w, B), "you multiplied by tau; Eq. 4 divides by tau"),
                (-(w * right[:, :, 0]).sum() / B,
                 "the positive of text i is video i (out[i, p, i]), not video 0"),
                (l2(right, w, 1), "you summed over texts; divide by the number of texts with a token of interest"),
                (l2(right, w, B * n), "you divided by B * n; divide by the number of texts with a token of interest"),
                (l2(right, uniform, B), "the idf weights are ignored: weigh each token's loss by token_weights[i, p]"),
                (l2(right, ones, B),
                 "every token counts, padding and specials too: weigh each token's loss by token_weights[i, p]"),
                (l2(right, ones, B * n),
                 "every token counts equally (a plain mean over all tokens): weigh each token's loss "
                 "by token_weights[i, p] and divide by the number of texts with a token of interest"),
            ]  # fmt: skip
        hint = "compare with sum_i,p w[i,p] (-log softmax_j(s(i,p,:)/tau)[i]) / #texts with tokens"
        values_ok = _expect(report, probe, got, token_nce(scores, w, tau=tau), hint, mistakes)
    probe = "one text without tokens of interest"
    w2 = w.clone()
    w2[1] = 0.0
    if values_ok:
        got2 = _call(report, probe, fn, scores, w2, tau=tau)
        if isinstance(got2, torch.Tensor):
            want = token_nce(scores, w2, tau=tau)
            mistakes = [
                (want * 3 / 4, "you divided by B; divide by the number of texts with "
                               "at least one token of interest (here 3 of 4)"),
            ]  # fmt: skip
            hint = (
                "a text with all-zero weights adds nothing and is not counted"
                if bool(torch.isfinite(got2).all())
                else "NaN on all-zero weights: a text without tokens of interest must add 0, not 0/0"
            )
            _expect(report, probe, got2, want, hint, mistakes)
    else:
        report.skip(probe, "fix the values first")
    report.section = "edge cases"
    probe = "no text has a token of interest: exactly 0, no NaN"
    zero = _call(report, probe, fn, scores, torch.zeros_like(w), tau=tau)
    if isinstance(zero, torch.Tensor) and zero.numel() == 1:
        if bool(torch.isfinite(zero).all()) and float(zero) == 0.0:
            report.ok(f"{probe}: {float(zero)}")
        elif not bool(torch.isfinite(zero).all()):
            report.fail(
                probe,
                f"got {float(zero)}: NaN on all-zero weights. Divide by the number of texts "
                "with a token of interest clamped to at least 1 (.clamp_min(1))",
            )
        else:
            report.fail(
                probe,
                f"got {float(zero):.4f}: with all-zero token_weights L2 must be exactly 0. Weigh "
                "each token's loss by token_weights[i, p], so tokens of weight 0 add nothing",
            )
    probe = "weight-0 tokens hold -inf scores: your result unchanged, no NaN"
    s3 = scores.clone()
    s3[:, 0, :] = float("-inf")  # [CLS] position: weight 0 everywhere
    inf_got = _call(report, probe, fn, s3, w, tau=tau)
    if isinstance(inf_got, torch.Tensor) and isinstance(got, torch.Tensor):
        if not bool(torch.isfinite(inf_got).all()):
            report.fail(probe, "0 * inf = NaN: a token with weight 0 may hold any score. Replace "
                               "the scores of weight-0 tokens (torch.where(token_weights > 0, ...)) "
                               "before the log-softmax")  # fmt: skip
        elif inf_got.shape == got.shape and rel_error(inf_got, got) < 1e-6:
            report.ok(probe)
        else:
            report.fail(probe, "the scores of weight-0 tokens changed your loss: a token of "
                               "weight 0 must add nothing, whatever its score")  # fmt: skip
    small_s, small_w = _tnce_inputs(6)
    _gradcheck(report, lambda x: fn(x, small_w, tau=0.7), (small_s.clone().requires_grad_(),), fn)
    return report.finish(verbose, part)
