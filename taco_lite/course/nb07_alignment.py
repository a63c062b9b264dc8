"""Feedback for notebook 07: the softmax over frames and the word -> frame block of f_m's attention."""

from __future__ import annotations

from collections.abc import Callable

import torch

from taco_lite.course.feedback import CheckReport, Part, _call, _expect, _gen, _is_tensor, rel_error

__all__ = ["check_softmax_over_frames", "check_word_frame_block"]


def _wfb_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A full (n + m, n + m) attention matrix whose padded rows and columns are NOT zero.

    f_m's key-padding mask already gives padded keys 0 weight; a matrix from attention without
    that mask (or averaged with one that has none) does not, so the probe uses such a matrix:
    only then does forgetting the video mask change the answer.
    """
    g = _gen(seed)
    n, m = 4, 5  # different, so a transposed block shows
    L = n + m
    att = torch.softmax(torch.randn(L, L, generator=g, dtype=torch.float64) * 2, dim=-1)
    text_mask = torch.tensor([True, True, True, False])  # the last token is padding
    video_mask = torch.tensor([True, True, True, False, False])  # the last 2 frames are padding
    return att, text_mask, video_mask


def check_softmax_over_frames(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 07.1: `fn(scores (n, m), tau) -> (n, m)`, each row a softmax over the frames.

    Sections: "values" (against the formula, float64), "edge cases" (huge scores stay finite)."""
    report = CheckReport("softmax_over_frames")
    g = _gen(0)
    scores = torch.randn(7, 12, generator=g, dtype=torch.float64) * 3  # (n, m), n != m
    tau = 0.07
    probe = "softmax over frames against the reference (n=7, m=12, tau=0.07)"
    got = _call(report, probe, fn, scores, tau)
    if got is not None and _is_tensor(report, probe, got, tuple(scores.shape)):
        with torch.no_grad():
            mistakes = [
                (torch.softmax(scores / tau, dim=0),
                 "softmax over the wrong axis: each *word's row* (dim=1, over frames) sums to 1, "
                 "not each frame's column (dim=0)"),
                (torch.softmax(scores, dim=1), "you forgot tau: divide the scores by tau first"),
                (torch.softmax(scores * tau, dim=1), "you multiplied by tau; divide the scores by tau"),
                (torch.exp(scores / tau), "you did not normalise: divide each row by its sum"),
            ]  # fmt: skip
        want = torch.softmax(scores / tau, dim=1)
        if not bool(torch.isfinite(got).all()):
            report.fail(probe, "inf or NaN in your output: exp(scores / tau) overflows for large "
                               "scores. Subtract each row's max before exp")  # fmt: skip
        else:
            hint = "compare with exp(s / tau) / (sum over the row's frames of exp(s / tau))"
            _expect(report, probe, got, want, hint, mistakes)
    report.section = "edge cases"
    probe = "huge scores (1e4 / tau): finite, each row sums to 1"
    huge = torch.tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], dtype=torch.float64)
    big = _call(report, probe, fn, huge, tau)
    if isinstance(big, torch.Tensor):
        if not bool(torch.isfinite(big).all()):
            report.fail(probe, "overflow: exp(1e4 / tau) is inf and inf / inf = NaN. Subtract "
                               "each row's max before exp (the softmax does not change)")  # fmt: skip
        elif big.shape == huge.shape and rel_error(big.sum(1), torch.ones(2)) < 1e-6:
            report.ok(probe)
        else:
            report.fail(probe, f"rows sum to {[round(float(x), 3) for x in big.sum(-1)]}, expected 1")
    return report.finish(verbose, part)


def check_word_frame_block(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 07.2: `fn(attention (n+m, n+m), text_mask (n,), video_mask (m,)) -> (n, m)`.

    Sections: "values" (against the reference), "edge cases" (real rows sum to 1; a word with
    no attention on real frames gives 0, not NaN)."""
    from taco_lite.evaluate.attention import word_frame_block

    report = CheckReport("word_frame_block")
    att, tmask, vmask = _wfb_inputs(7)
    n, m = tmask.shape[0], vmask.shape[0]
    probe = "word -> frame block against the reference (n=4, m=5, 1 padded token, 2 padded frames)"
    got = _call(report, probe, fn, att, tmask, vmask)
    if got is not None and _is_tensor(report, probe, got, (n, m)):
        block = att[:n, n:]  # (n, m) text queries x video keys
        keep = (tmask[:, None] & vmask[None, :]).double()  # (n, m)
        rows = tmask[:, None].double()  # (n, 1)

        def rows_norm(b: torch.Tensor) -> torch.Tensor:
            return b / b.sum(1, keepdim=True)

        def cols_norm(b: torch.Tensor) -> torch.Tensor:
            return torch.nan_to_num(b / b.sum(0, keepdim=True))

        mistakes = [
            (rows_norm(block) * rows,
             "you forgot to mask padded frames: the padded frame columns still take part (and "
             "the sum you divide by includes them). Zero them with video_mask before normalising"),
            (rows_norm(block),
             "you forgot to mask padding: padded frames and the padded token's row must be 0"),
            (rows_norm(block * keep[:1].expand_as(block)),
             "the padded token's row must be 0: multiply by text_mask as well"),
            (block * keep,
             "you did not renormalise: divide each word's row by its sum over the real frames, "
             "so that each row sums to 1"),
            (cols_norm(block * keep),
             "normalised over the wrong axis: each *word's row* (sum over frames, dim=1) must "
             "sum to 1, not each frame's column (sum over words, dim=0)"),
            (rows_norm(att[n:, :n].T * keep) * rows,
             "you took the frame -> word block (video queries, text keys) and transposed it; "
             "rows are queries: take attention[:n, n:] (text rows, video columns)"),
            (rows_norm(att[:n, :m] * keep) * rows,
             "you took the text -> text block: the video's keys are the columns n .. n+m-1"),
        ]  # fmt: skip
        hint = (
            "take attention[:n, n:], zero padded tokens and frames, then divide each row by "
            "its sum over the real frames"
        )
        if bool(torch.isnan(got).any()):
            bad = sorted({int(p) for p in torch.nonzero(torch.isnan(got))[:, 0]})
            report.fail(probe, f"NaN in row(s) {bad}: {_ZERO_ROW}")
        else:
            _expect(report, probe, got, word_frame_block(att, tmask, vmask), hint, mistakes)
    elif isinstance(got, torch.Tensor) and tuple(got.shape) == (m, n):
        report.fail(probe, "axes swapped: return (n, m), one row per word, one column per frame")
    report.section = "edge cases"
    probe = "each real word's row sums to 1 over the real frames"
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (n, m):
        sums = got.double()[tmask][:, vmask].sum(1)  # (real words,)
        if bool(torch.allclose(sums, torch.ones_like(sums))):
            report.ok(probe)
        else:
            report.fail(probe, f"row sums are {[round(float(s), 3) for s in sums]}, expected 1")
    probe = "a word with no attention on any real frame gives a row of 0, not NaN"
    att0 = att.clone()
    att0[1, n:] = 0.0  # token 1 attends only to text
    got = _call(report, probe, fn, att0, tmask, vmask)
    if isinstance(got, torch.Tensor):
        if not bool(torch.isfinite(got).all()):
            report.fail(probe, f"NaN or inf in your output: {_ZERO_ROW}")
        else:
            hint = "row 1 (no attention on real frames) must be all 0, the other rows as before"
            _expect(report, probe, got, word_frame_block(att0, tmask, vmask), hint)
    return report.finish(verbose, part)


_ZERO_ROW = (
    "a row whose sum over real frames is 0 (a padded token, or a word that attends only to "
    "text) gives 0 / 0 = NaN. Divide only where the sum is > 0, e.g. "
    "torch.where(total > 0, block / total.clamp_min(1e-30), torch.zeros_like(block))"
)
