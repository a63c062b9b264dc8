"""Feedback for notebook 05 (training): one optimiser step, overfitting one batch, and R@k."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from taco_lite.course.feedback import CheckReport, _call, _expect, _gen, rel_error
from taco_lite.course.reference import _reference_step

__all__ = ["check_train_step", "overfit_one_batch", "check_recall_at_k"]


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run the tiny training probes on one thread, then restore the caller's setting.

    Why: on these toy sizes (d = 16, B = 4) every op is tiny and thread hand-offs dominate; on a
    busy 2-core machine 40 steps took 60 s with 2 threads and 0.3 s with 1 (measured).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tiny_setup(seed: int = 0) -> tuple[Any, Any, Any]:
    """A tiny deterministic model, batch and config (dropout 0) for training-step probes."""
    from taco_lite.batch import synthetic_batch
    from taco_lite.config import ModelConfig, TrainConfig
    from taco_lite.model import TacoModel

    mcfg = ModelConfig(d=16, heads=2, text_layers=1, video_layers=1, fusion_layers=1, dropout=0.0,
                       vocab_size=20, frame_size=16, max_frames=8, max_tokens=8)  # fmt: skip
    tcfg = TrainConfig(
        batch_size=4, k_neg=2, steps=10, warmup_steps=0, lr=1e-2, device="cpu", progress=False
    )
    torch.manual_seed(seed)
    model = TacoModel(mcfg)
    batch = synthetic_batch(B=4, n=6, m=4, vocab_size=20, frame_size=16, seed=seed)
    return model, batch, tcfg


def check_train_step(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 05.1: `fn(model, batch, tcfg, fns, optimizer) -> float`, one optimiser step."""
    with _one_thread():
        return _check_train_step(fn, verbose)


def _check_train_step(fn: Callable, verbose: bool) -> CheckReport:
    import copy

    from taco_lite.train.step import LossFns

    report = CheckReport("train_step")
    model, batch, tcfg = _tiny_setup(0)
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(twin.parameters(), lr=0.1)
    for p in model.parameters():  # stale gradients: a step that forgets zero_grad adds them in
        p.grad = torch.full_like(p, 0.5)
    probe = "one step from the same start as the reference (stale gradients present)"
    got = _call(report, probe, fn, model, batch, tcfg, LossFns(), opt)
    if got is not None:
        want = _reference_step(twin, batch, tcfg, LossFns(), opt_ref)
        loss_ok = isinstance(got, int | float | torch.Tensor) and rel_error(float(got), want) < 1e-5
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        params_ref = torch.cat([p.detach().flatten() for p in twin.parameters()])
        start = torch.cat([p.detach().flatten() for p in _tiny_setup(0)[0].parameters()])
        err = rel_error(params, params_ref)
        if err < 1e-5 and loss_ok:
            report.ok(f"{probe}: parameters relative error {err:.1e} (expect < 1e-5)")
        elif rel_error(params, start) == 0.0:
            report.fail(
                probe, "the parameters did not change: call optimizer.step() after backward()"
            )
        elif err >= 1e-5:
            report.fail(
                probe,
                "the update differs from the reference: call optimizer.zero_grad() before "
                "backward(), or old gradients are added in",
            )
        else:
            report.fail(
                probe,
                f"return the total loss as a float (before the step): expected {want:.4f}, got {got}",
            )
    return report.finish(verbose)


def overfit_one_batch(
    step_fn: Callable, fns: Any = None, steps: int = 40, lr: float = 3e-3, seed: int = 0
) -> list[float]:
    """Train the tiny model on one synthetic batch with `step_fn`; returns the loss per step.

    The classic sanity check (CS231n): a correct step must drive the loss of a single small
    batch far down. If it does not, the model, the losses or the step are broken.
    """
    from taco_lite.train.step import LossFns

    with _one_thread():
        model, batch, tcfg = _tiny_setup(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        fns = fns if fns is not None else LossFns()
        return [float(step_fn(model, batch, tcfg, fns, opt)) for _ in range(steps)]


def check_recall_at_k(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 05.2: `fn(sim, k) -> float`, R@k in percent (rows = queries, gt on the diagonal)."""
    from taco_lite.metrics import retrieval_metrics

    report = CheckReport("recall_at_k")
    g = _gen(11)
    sim = torch.randn(20, 20, generator=g, dtype=torch.float64)
    sim += 1.5 * torch.eye(20, dtype=torch.float64)
    for k in (1, 5, 10):
        probe = f"R@{k} on a random 20 x 20 matrix"
        got = _call(report, probe, fn, sim, k)
        if got is not None:
            want = retrieval_metrics(sim)[f"R{k}"]
            cols = retrieval_metrics(sim.T.contiguous())[f"R{k}"]
            mistakes = [
                (want / 100, "return a percentage (0-100), not a fraction"),
                (cols, "rows are the queries: rank the ground truth sim[i, i] within row i"),
            ]
            hint = f"expected {want:.2f}, got {float(got):.2f}"
            _expect(report, probe, float(got), want, hint, mistakes)
    probe = "ties with the ground truth count in its favour"
    ties = torch.zeros(6, 6, dtype=torch.float64)
    ties[0, 1] = 1.0  # query 0: one strictly higher candidate -> rank 2
    got = _call(report, probe, fn, ties, 1)
    if got is not None:
        want = retrieval_metrics(ties)["R1"]
        hint = (
            "rank = 1 + number of candidates scoring *strictly* higher than the ground "
            f"truth (TACO_SPEC §6): expected {want:.2f}, got {float(got):.2f}"
        )
        _expect(report, probe, float(got), want, hint)
    return report.finish(verbose)
