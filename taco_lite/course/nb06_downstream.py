"""Feedback for notebook 06 (retrieval at test time): the 1-based ranks of the ground truth."""

from __future__ import annotations

from collections.abc import Callable

import torch

from taco_lite.course.feedback import CheckReport, Part, _call, _gen

__all__ = ["check_retrieval_ranks"]


def check_retrieval_ranks(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 06.1: `fn(sim (N, N)) -> LongTensor (N,)`, rank_i = 1 + #{j: sim[i, j] > sim[i, i]}.

    Sections: "values" (a random matrix), "edge cases" (ties count in the query's favour;
    integer ranks)."""
    report = CheckReport("retrieval_ranks")
    g = _gen(6)
    N = 30
    sim = torch.randn(N, N, generator=g, dtype=torch.float64) + 2 * torch.eye(N, dtype=torch.float64)
    want = 1 + (sim > sim.diagonal()[:, None]).sum(1)  # (N,) docs/method.md §6
    probe = f"ranks on a random {N} x {N} matrix (expect them equal: ranks are integers)"
    got = _call(report, probe, fn, sim)
    if got is not None:
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (N,):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            report.fail(probe, f"expected a tensor of shape ({N},), one rank per query, got {shape}")
        elif torch.equal(got.long(), want):
            report.ok(f"{probe}: all {N} equal")
        else:
            cols = 1 + (sim.T > sim.diagonal()[:, None]).sum(1)
            mistakes = [
                (cols, "rows are the queries: compare sim[i, j] with sim[i, i] along row i, not "
                       "column i"),
                (want - 1, "ranks are 1-based: the best possible rank is 1, so add 1 to the count"),
                (1 + (sim >= sim.diagonal()[:, None]).sum(1),
                 "you counted the ground truth itself (>=): count only the candidates scoring "
                 "strictly higher (>)"),
            ]  # fmt: skip
            hint = next((h for value, h in mistakes if torch.equal(got.long(), value)), None)
            report.fail(probe, hint or f"expected {want[:8].tolist()}..., got {got[:8].tolist()}...")
    report.section = "edge cases"
    probe = "ties: a candidate equal to the ground truth does not push it down"
    ties = torch.zeros(5, 5, dtype=torch.float64)
    ties[0, 1] = 1.0  # query 0: one strictly higher candidate -> rank 2
    ties[2, :] = 0.5  # query 2: a constant row -> rank 1
    got = _call(report, probe, fn, ties)
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (5,):
        expected = [2, 1, 1, 1, 1]
        if got.tolist() != expected:
            report.fail(probe, f"expected {expected}, got {got.tolist()}: count only the candidates "
                               "scoring strictly higher (`>`, not `>=`), and do not rank by the "
                               "position in a sort (argsort breaks ties arbitrarily)")  # fmt: skip
        elif got.is_floating_point():
            report.fail(probe, "return integer ranks (a LongTensor), e.g. via .sum() of a bool "
                               "tensor")  # fmt: skip
        else:
            report.ok(f"{probe}: {expected}")
    return report.finish(verbose, part)
