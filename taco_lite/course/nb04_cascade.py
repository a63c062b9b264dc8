"""Feedback for notebook 04 (the cascade and L3, Eqs. 5-6): pair scores, hard negatives, L3."""

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
    _shape_of,
    rel_error,
)

__all__ = ["check_pair_scores", "check_hard_negatives", "check_fusion_nce"]


def check_pair_scores(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 04.1: `fn(sim_global, token_scores, token_mask) -> pair_scores (B, B)`.

    Sections: "values" (against the reference; your inputs left unchanged), "edge cases"
    (tokens outside the mask cannot change your result, even when they are inf)."""
    report = CheckReport("pair_scores")
    g = _gen(7)
    B, n = 4, 6
    sim = torch.randn(B, B, generator=g, dtype=torch.float64)
    tok = torch.randn(B, n, B, generator=g, dtype=torch.float64)
    mask = torch.rand(B, n, generator=g) < 0.5
    mask[:, 1] = True
    # the package computes in float32; the float64 formula is the reference here
    want = sim + torch.where(mask[:, :, None], tok, 0.0).sum(dim=1)  # (B, B)
    probe = "a(i, j) against the reference (B=4, n=6)"
    inputs = (sim.clone(), tok.clone(), mask.clone())
    got = _call(report, probe, fn, *inputs)
    changed = [
        name
        for name, before, after in zip(("sim_global", "token_scores", "token_mask"),
                                       (sim, tok, mask), inputs, strict=True)
        if not torch.equal(before, after)
    ]  # fmt: skip
    if changed:
        report.fail(probe, f"your function changed its input(s) {changed} in place (e.g. "
                           "+=, masked_fill_, or writing into a slice): the trainer reuses them. "
                           "Compute into a new tensor (torch.where returns one)")  # fmt: skip
    elif isinstance(got, torch.Tensor) and tuple(got.shape) == (B, n):
        report.fail(probe, f"got shape {(B, n)}, one value per token: you summed over the videos j "
                           "(dim=2); sum over the tokens p (dim=1), keeping (B, B)")  # fmt: skip
    elif got is not None and _is_tensor(report, probe, got, (B, B)):
        masked = torch.where(mask[:, :, None], tok, 0.0)  # (B, n, B)
        mistakes = [
            (sim + tok.sum(1), "tokens outside token_mask were added: sum only over tokens of interest P_i"),
            (masked.sum(1), "s1 is missing: a(i, j) = s1(i, j) + sum over P_i of s(i, p, j)"),
            (sim + masked.sum(1) / mask.sum(1, keepdim=True), "you averaged the token scores; the paper's sum is unweighted and not averaged"),
            (sim + masked.sum(1).T, "the token sum is transposed: row i is text i, column j video j"),
            (sim + masked.sum(2).sum(1, keepdim=True), "you summed over the videos j (dim=2) as well: "
                                                         "sum over the tokens p only (dim=1), keeping (B, B)"),
        ]  # fmt: skip
        hint = "compare with sim_global + the sum over p of token_scores where token_mask"
        _expect(report, probe, got, want, hint, mistakes)
    report.section = "edge cases"
    probe = "tokens outside the mask hold inf: your result unchanged"
    noisy = tok.clone()
    noisy[~mask] = float("inf")
    again = _call(report, probe, fn, sim.clone(), noisy, mask.clone())
    if isinstance(again, torch.Tensor) and isinstance(got, torch.Tensor):
        if again.shape == got.shape and rel_error(again, got) < 1e-6:
            report.ok(probe)
        elif not bool(torch.isfinite(again).all()) and bool(torch.isfinite(got).all()):
            report.fail(probe, "tokens outside token_mask leaked in as inf / NaN (inf * 0 = NaN "
                               "when multiplying by the mask): select with "
                               "torch.where(token_mask[:, :, None], token_scores, 0)")  # fmt: skip
        else:
            report.fail(probe, "tokens outside token_mask changed your result: sum only over "
                               "the tokens of interest")  # fmt: skip
    return report.finish(verbose, part)


def check_hard_negatives(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 04.2: `fn(pair_scores, k) -> (videos_for_text, texts_for_video)`, (B, k) each.

    Sections: "values" (against the reference), "edge cases" (k = B - 1 with the positives
    scoring highest)."""
    from taco_lite.cascade import hard_negatives

    report = CheckReport("hard_negatives")
    g = _gen(8)
    B, k = 6, 3
    a = torch.randn(B, B, generator=g, dtype=torch.float64)
    probe = f"top-{k} negatives against the reference (B={B})"
    got = _call(report, probe, fn, a, k)
    if got is not None:
        if not (isinstance(got, tuple | list) and len(got) == 2):
            report.fail(probe, "return a tuple (videos_for_text, texts_for_video)")
        else:
            vft, tfv = got
            want_v, want_t = hard_negatives(a, k)
            ok_shapes = _is_tensor(report, probe + " videos_for_text", vft, (B, k)) and _is_tensor(
                report, probe + " texts_for_video", tfv, (B, k)
            )
            if ok_shapes:
                if vft.dtype != torch.long or tfv.dtype != torch.long:
                    report.fail(
                        probe, "return LongTensors of indices (topk(...).indices is already long)"
                    )
                diag_v = bool((vft == torch.arange(B)[:, None]).any())
                diag_t = bool((tfv == torch.arange(B)[:, None]).any())
                if torch.equal(vft, want_v) and torch.equal(tfv, want_t):
                    report.ok(f"{probe}: identical indices, best first")
                elif diag_v or diag_t:
                    report.fail(
                        probe,
                        "the positive is among the negatives: exclude the diagonal (i == j), "
                        "e.g. fill it with -inf before topk",
                    )
                elif torch.equal(tfv, _rows_topk(a, k)):
                    report.fail(
                        probe,
                        "texts_for_video[j] must rank the texts i of column j (use pair_scores.T), "
                        "not row j",
                    )
                elif torch.equal(vft, _rows_topk(-a, k)):
                    report.fail(
                        probe,
                        "you picked the lowest scores: hard negatives are the *highest* a(i, j)",
                    )
                elif torch.equal(vft.sort(1).values, want_v.sort(1).values) and torch.equal(
                    tfv.sort(1).values, want_t.sort(1).values
                ):
                    report.fail(
                        probe, "right negatives, wrong order: return them best first (descending a)"
                    )
                else:
                    report.fail(
                        probe,
                        f"expected videos_for_text[0] = {want_v[0].tolist()}, got {vft[0].tolist()}",
                    )
    report.section = "edge cases"
    probe = "positives score highest (diagonal = 1e6): still excluded"
    a2 = a.clone()
    a2.fill_diagonal_(1e6)
    got = _call(report, probe, fn, a2, B - 1)
    if got is not None and isinstance(got, tuple | list) and len(got) == 2:
        vft, tfv = got
        if (
            isinstance(vft, torch.Tensor)
            and isinstance(tfv, torch.Tensor)
            and vft.shape == (B, B - 1)
        ):
            bad = bool(
                (vft == torch.arange(B)[:, None]).any() or (tfv == torch.arange(B)[:, None]).any()
            )
            if bad:
                report.fail(
                    probe, "the positive is among the negatives: exclude the diagonal before topk"
                )
            else:
                report.ok(f"{probe}: k = B-1 = {B - 1}, the positive never returned")
        else:
            report.fail(probe, f"with k = B-1 expected shape {(B, B - 1)}, got {_shape_of(vft)}")
    return report.finish(verbose, part)


def _rows_topk(a: torch.Tensor, k: int) -> torch.Tensor:
    """Row-wise top-k with the diagonal excluded (helper of the diagnosis)."""
    masked = a.clone()
    masked.fill_diagonal_(float("-inf"))
    return masked.topk(k, dim=1).indices


def check_fusion_nce(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 04.3: `fn(logits (A, 1 + k)) -> scalar`, positive in column 0 (L3, Eqs. 5-6).

    Sections: "values", "edge cases" (large logits stay finite), "gradients"."""
    from taco_lite.losses import fusion_nce

    report = CheckReport("fusion_nce")
    g = _gen(9)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    probe = "L3 against the reference (A=6 anchors, k=3)"
    got = _call(report, probe, fn, logits)
    values_ok = False
    if got is not None and _is_tensor(report, probe, got, ()):
        A = logits.shape[0]
        mistakes = [
            (F.cross_entropy(logits, torch.full((A,), 3)), "the positive is column 0, not the last column"),
            (F.cross_entropy(logits, torch.arange(A) % 4), "the positive is column 0 of every row, not the diagonal"),
            (F.cross_entropy(logits, torch.zeros(A, dtype=torch.long)) * A, "you summed over anchors; L3 is the mean"),
            (-F.cross_entropy(logits, torch.zeros(A, dtype=torch.long)), "the sign is flipped: -log softmax is positive"),
            (F.cross_entropy(logits.T, torch.zeros(4, dtype=torch.long)), "softmax over the wrong axis: each row (anchor) is one softmax"),
        ]  # fmt: skip
        hint = "compare with mean over rows of -log softmax(row)[0]"
        values_ok = _expect(report, probe, got, fusion_nce(logits), hint, mistakes)
    report.section = "edge cases"
    probe = "large logits (~1e4): stays finite"
    big = _call(report, probe, fn, 1e4 * logits)
    if isinstance(big, torch.Tensor) and big.numel() == 1:
        if not bool(torch.isfinite(big).all()):
            hint = "overflow: use F.log_softmax or F.cross_entropy, not log(softmax(...))"
            report.fail(probe, hint)
        elif values_ok:
            hint = "finite but different from the reference on large logits"
            _expect(report, probe, big, fusion_nce(1e4 * logits), hint)
        else:
            report.ok(f"{probe}: finite")
    _gradcheck(report, fn, (logits[:3].clone().requires_grad_(),), fn)
    return report.finish(verbose, part)
