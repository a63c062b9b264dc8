"""Feedback for notebook 05 (training): one optimiser step, overfitting one batch, and R@k."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from taco_lite.course.feedback import CheckReport, Part, _call, _diagnose, _expect, _gen, rel_error
from taco_lite.course.references import _reference_step

__all__ = ["check_train_step", "overfit_one_batch", "check_recall_at_k", "check_device_step"]


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


def check_train_step(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 05.1: `fn(model, batch, tcfg, fns, optimizer) -> float`, one optimiser step."""
    with _one_thread():
        return _check_train_step(fn, verbose, part)


def _check_train_step(fn: Callable, verbose: bool, part: Part) -> CheckReport:
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
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        stale = bool(grads) and all(bool((gr == 0.5).all()) for gr in grads)
        if err < 1e-5 and loss_ok:
            report.ok(f"{probe}: parameters relative error {err:.1e} (expect < 1e-5)")
        elif rel_error(params, start) == 0.0:
            if grads and not stale and any(bool(gr.abs().sum() > 0) for gr in grads):
                hint = "the parameters did not change: call optimizer.step() after backward()"
            else:
                hint = ("the gradients were cleared before the step, so the step changed nothing: "
                        "call optimizer.zero_grad() *before* backward(), then optimizer.step()")
            report.fail(probe, hint)
        elif err >= 1e-5:
            report.fail(probe, _diagnose(params, _step_mistakes(batch, tcfg), (
                "the update differs from the reference: zero the gradients, backward() on "
                "out.total (L = L1 + lambda_t L2 + L3), then optimizer.step()")))
        else:
            report.fail(
                probe,
                f"return the total loss as a float (before the step): expected {want:.4f}, got {got}",
            )
    return report.finish(verbose, part)


def _step_mistakes(batch: Any, tcfg: Any) -> list[tuple[torch.Tensor, str]]:
    """The parameters after one step of each known wrong step (same start, stale gradients)."""
    from taco_lite.train.step import LossFns, taco_step

    def run(backward_on: str, zero: bool) -> torch.Tensor:
        model = _tiny_setup(0)[0]
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.5)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        if zero:
            opt.zero_grad(set_to_none=True)
        out = taco_step(model, batch, tcfg, LossFns())
        getattr(out, backward_on).backward()
        opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    return [
        (run("total", zero=False), "old gradients were added in: call optimizer.zero_grad() "
                                   "before backward()"),
        (run("L1", zero=True), "you called backward() on L1 only: backward() on out.total, "
                               "the sum L1 + lambda_t L2 + L3"),
        (run("L1", zero=False), "you called backward() on L1 only (use out.total) and old "
                                "gradients were added in (call optimizer.zero_grad() first)"),
    ]  # fmt: skip


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


def check_recall_at_k(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 05.2: `fn(sim, k) -> float`, R@k in percent (rows = queries, gt on the diagonal).

    Sections: "values" (random matrices), "edge cases" (ties with the ground truth)."""
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
            ranks = 1 + (sim > sim.diagonal()[:, None]).sum(1)  # (N,)
            below = 100.0 * float((ranks < k).double().mean())
            mistakes = [
                (want / 100, "return a percentage (0-100), not a fraction"),
                (below, "you counted rank < k; R@k counts rank <= k (rank 1 is the best, so "
                        "R@1 is the share of rank-1 queries)"),
                (cols, "rows are the queries: rank the ground truth sim[i, i] within row i"),
            ]
            hint = f"expected {want:.2f}, got {float(got):.2f}"
            _expect(report, probe, float(got), want, hint, mistakes)
    report.section = "edge cases"
    probe = "ties with the ground truth count in its favour"
    ties = torch.zeros(6, 6, dtype=torch.float64)
    ties[0, 1] = 1.0  # query 0: one strictly higher candidate -> rank 2
    got = _call(report, probe, fn, ties, 1)
    if got is not None:
        want = retrieval_metrics(ties)["R1"]
        hint = (
            "rank = 1 + number of candidates scoring *strictly* higher than the ground "
            f"truth (docs/method.md §6): expected {want:.2f}, got {float(got):.2f}"
        )
        _expect(report, probe, float(got), want, hint)
    return report.finish(verbose, part)


# ------------------------------------------------------------------ exercise 05.3: device + bf16


def _step_with_autocast(dtype: torch.dtype | None) -> Callable:
    """A right step but for its autocast (None = none): the known mistakes of exercise 05.3."""
    import contextlib

    from taco_lite.train.step import taco_step

    def step(model: Any, batch: Any, tcfg: Any, fns: Any, optimizer: Any, amp: bool) -> float:
        device = next(model.parameters()).device
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        ctx = contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype)
        with ctx:
            out = taco_step(model, batch, tcfg, fns)
        out.total.backward()
        optimizer.step()
        return float(out.total.detach())

    return step


def _spy_batch(batch: Any, calls: list) -> Any:
    """A copy of `batch` that records the device of every `.to(device)` call in `calls`."""
    from dataclasses import fields

    from taco_lite.batch import Batch

    class SpyBatch(Batch):
        def to(self, device: Any, non_blocking: bool = False) -> Batch:
            calls.append(torch.device(device))
            return super().to(device, non_blocking=non_blocking)

    return SpyBatch(**{f.name: getattr(batch, f.name) for f in fields(batch)})


def _flat_params(model: Any) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])


def check_device_step(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 05.3: `fn(model, batch, tcfg, fns, optimizer, amp) -> float`, one optimiser step.

    The batch arrives on the CPU and must move to the model's device; with amp=True the forward
    runs under bf16 autocast. Probed on this machine's device (CUDA when there is one, else the
    CPU, where bf16 autocast works too), with amp=True and amp=False.
    """
    with _one_thread():
        return _check_device_step(fn, verbose, part)


def _check_device_step(fn: Callable, verbose: bool, part: Part) -> CheckReport:
    from taco_lite.course.references import _reference_device_step
    from taco_lite.runtime.device import resolve_device
    from taco_lite.train.step import LossFns

    report = CheckReport("device_step")
    device = resolve_device("auto")
    known = {
        True: [
            (None, "no autocast: run taco_step inside torch.autocast(device_type=device.type, "
                   "dtype=torch.bfloat16) when amp is True"),
            (torch.float16, "autocast with float16: use dtype=torch.bfloat16 (bf16 has float32's "
                            "range, so it needs no loss scaling)"),
        ],
        False: [
            (torch.bfloat16, "autocast is on although amp=False: pass enabled=amp to "
                             "torch.autocast, or skip it when amp is False"),
        ],
    }  # fmt: skip

    def fresh() -> tuple[Any, Any, Any, Any]:
        model, batch, tcfg = _tiny_setup(0)
        model.to(device)
        return model, batch, tcfg, torch.optim.SGD(model.parameters(), lr=0.1)

    for amp in (True, False):
        report.section = "bf16" if amp else "float32"
        probe = f"one step on {device.type}, amp={amp}, batch on the CPU"
        model, batch, tcfg, opt = fresh()
        calls: list[torch.device] = []
        failed = len(report.failures)
        got = _call(report, probe, fn, model, _spy_batch(batch, calls), tcfg, LossFns(), opt, amp)
        if got is None:
            if len(report.failures) == failed:  # it ran, but returned nothing
                report.fail(probe, "return the total loss as a float (before the step), got None")
            continue
        if not any(c.type == device.type for c in calls):
            report.fail(
                probe,
                "the batch was never moved: batch = batch.to(device), with the model's device "
                "device = next(model.parameters()).device (on a GPU the step would fail with "
                "'Expected all tensors to be on the same device')",
            )
            continue
        twin, _, _, twin_opt = fresh()
        want = _reference_device_step(twin, batch, tcfg, LossFns(), twin_opt, amp)
        mistakes = []
        for dtype, hint in known[amp]:
            wrong, _, _, wrong_opt = fresh()
            try:
                _step_with_autocast(dtype)(wrong, batch, tcfg, LossFns(), wrong_opt, amp)
            except RuntimeError:  # float16 autocast is missing on some CPU builds
                continue
            mistakes.append((_flat_params(wrong), hint))
        hint = (
            "the parameters after the step differ from the reference: zero the gradients, run "
            "taco_step (under bf16 autocast when amp), backward() on out.total, optimizer.step()"
        )
        if _expect(report, probe, _flat_params(model), _flat_params(twin), hint, mistakes):
            if (
                not isinstance(got, int | float | torch.Tensor)
                or rel_error(float(got), want) > 1e-5
            ):
                report.fail(
                    probe,
                    f"return the total loss as a float (before the step): expected {want:.4f}, "
                    f"got {got}",
                )
    return report.finish(verbose, part)
