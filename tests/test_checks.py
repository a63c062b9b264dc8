"""The exercise checks accept the reference and name the mistake of each typical wrong answer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from taco_lite import course as checks
from taco_lite.cascade import hard_negatives, pair_scores
from taco_lite.losses import fusion_nce, sentence_nce, token_nce, token_video_scores
from taco_lite.text.pos import idf_table, interest_mask, token_weights


def failure_text(check, fn, *args) -> str:
    with pytest.raises(checks.CheckFailed) as info:
        check(fn, *args, verbose=False)
    return str(info.value)


# ------------------------------------------------------------------ rel_error


def test_rel_error_basics():
    assert checks.rel_error(1.0, 1.0) == 0.0
    assert checks.rel_error([1.0, 2.0], [1.0, 2.0 + 1e-9]) < 1e-9
    assert checks.rel_error(1.0, 1.1) == pytest.approx(0.1 / 2.1)
    assert checks.rel_error(torch.ones(2), torch.ones(3)) == math.inf  # shape mismatch
    assert checks.rel_error(float("nan"), 1.0) == math.inf
    assert checks.rel_error(float("inf"), float("inf")) == 0.0


# ------------------------------------------------------------------ references pass


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_sentence_nce, sentence_nce),
        (checks.check_token_video_scores, token_video_scores),
        (checks.check_token_nce, token_nce),
        (checks.check_pair_scores, pair_scores),
        (checks.check_hard_negatives, hard_negatives),
        (checks.check_fusion_nce, fusion_nce),
        (checks.check_interest_mask, lambda tags, pos: interest_mask(tags, frozenset(pos))),
        (checks.check_idf_table, lambda docs: dict(idf_table(docs))),
        (checks.check_token_weights, token_weights),
        (checks.check_video_global, checks.reference("video_global")),
    ],
)
def test_reference_passes(check, fn):
    report = check(fn, verbose=False)
    assert report.passed and report.lines


def test_not_implemented_propagates():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for check in (checks.check_sentence_nce, checks.check_token_nce, checks.check_hard_negatives):
        with pytest.raises(NotImplementedError):
            check(stub, verbose=False)


# ------------------------------------------------------------------ mistakes are named


def test_sentence_nce_mistakes():
    def wrong_axis(t, v, tau=1.0, symmetric=False):
        return F.cross_entropy((t @ v.T).T / tau, torch.arange(len(t)))

    def no_tau(t, v, tau=1.0, symmetric=False):
        return F.cross_entropy(t @ v.T, torch.arange(len(t)))

    def naive_log_softmax(t, v, tau=1.0, symmetric=False):
        p = torch.exp(t @ v.T / tau)
        return -(p.diagonal() / p.sum(1)).log().mean()

    assert "wrong axis" in failure_text(checks.check_sentence_nce, wrong_axis)
    assert "ignores tau" in failure_text(checks.check_sentence_nce, no_tau)
    assert "overflow" in failure_text(checks.check_sentence_nce, naive_log_softmax)


def test_token_video_scores_mistakes():
    def no_mask(text, video, mask):
        return torch.einsum("ipd,jkd->ipjk", text, video).amax(-1)

    def zero_mask(text, video, mask):
        raw = torch.einsum("ipd,jkd->ipjk", text, video)
        return (raw * mask[None, None]).amax(-1)

    assert "ignores video_mask" in failure_text(checks.check_token_video_scores, no_mask)
    assert "0 beats every negative" in failure_text(checks.check_token_video_scores, zero_mask)


def test_token_nce_mistakes():
    def by_b(scores, w, tau=1.0):
        B = scores.shape[0]
        logp = F.log_softmax(scores / tau, dim=2)
        idx = torch.arange(B)
        return -(w * logp[idx, :, idx]).sum() / B

    def nan_prone(scores, w, tau=1.0):
        B = scores.shape[0]
        logp = F.log_softmax(scores / tau, dim=2)
        idx = torch.arange(B)
        return -(w * logp[idx, :, idx]).sum() / (w.sum(1) > 0).sum()

    text = failure_text(checks.check_token_nce, by_b)
    assert "divided by B" in text
    text = failure_text(checks.check_token_nce, nan_prone)
    assert "NaN on all-zero weights" in text and "0 * inf" in text


def test_video_global_ignores_mask():
    assert "padded frames were averaged in" in failure_text(
        checks.check_video_global, lambda x, mask: x.mean(1)
    )


def test_call_or_reference(capsys):
    def stub(*args):
        raise NotImplementedError()

    assert checks.call_or_reference(stub, "idf_table", [["a"], ["b"]]) == checks.reference(
        "idf_table"
    )([["a"], ["b"]])
    assert "not implemented yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match="known exercises"):
        checks.reference("nope")


def test_hard_negatives_includes_positive():
    def with_positive(a, k):
        return a.topk(k, dim=1).indices, a.T.topk(k, dim=1).indices

    assert "positive is among the negatives" in failure_text(
        checks.check_hard_negatives, with_positive
    )


def test_pair_scores_ignores_mask():
    def no_mask(sim, tok, mask):
        return sim + tok.sum(1)

    assert "outside token_mask" in failure_text(checks.check_pair_scores, no_mask)


def test_fusion_nce_wrong_column():
    def last(logits):
        return F.cross_entropy(logits, torch.full((logits.shape[0],), logits.shape[1] - 1))

    assert "column 0" in failure_text(checks.check_fusion_nce, last)


def test_token_weights_not_renormalised():
    def raw(tokens, tags, idf, pos):
        return [idf[t] if g in pos else 0.0 for t, g in zip(tokens, tags, strict=True)]

    assert "not renormalised" in failure_text(checks.check_token_weights, raw)


def test_idf_counts_occurrences():
    def occurrences(docs):
        D = len(docs)
        counts = {}
        for doc in docs:
            for t in doc:
                counts[t] = counts.get(t, 0) + 1
        return {w: max(math.log(D / (1 + c)), 1e-3) for w, c in counts.items()}

    assert "occurrences" in failure_text(checks.check_idf_table, occurrences)


# ------------------------------------------------------------------ fallbacks and training


def test_use_or_reference_falls_back(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    assert checks.use_or_reference(stub, "token_nce") is token_nce
    assert "not implemented yet" in capsys.readouterr().out
    assert checks.use_or_reference(sentence_nce, "sentence_nce") is sentence_nce
    fns = checks.loss_fns_with_fallback(verbose=False, fusion_nce=stub)
    assert fns.fusion_nce is fusion_nce


def _step(model, batch, tcfg, fns, optimizer):
    from taco_lite.train.step import taco_step

    optimizer.zero_grad()
    out = taco_step(model, batch, tcfg, fns)
    out.total.backward()
    optimizer.step()
    return float(out.total.detach())


def test_train_step_check_and_overfit():
    checks.check_train_step(_step, verbose=False)

    def no_zero_grad(model, batch, tcfg, fns, optimizer):
        from taco_lite.train.step import taco_step

        out = taco_step(model, batch, tcfg, fns)
        out.total.backward()
        optimizer.step()
        return float(out.total.detach())

    assert "zero_grad" in failure_text(checks.check_train_step, no_zero_grad)
    losses = checks.overfit_one_batch(_step, steps=25)
    assert losses[-1] < 0.5 * losses[0]


def test_recall_at_k_check():
    from taco_lite.metrics import retrieval_metrics

    checks.check_recall_at_k(lambda s, k: retrieval_metrics(s)[f"R{k}"], verbose=False)

    def pessimistic(sim, k):
        ranks = 1 + (sim >= sim.diagonal()[:, None]).sum(1) - 1
        ranks = ranks + (sim == sim.diagonal()[:, None]).sum(1) - 1
        return 100.0 * float((ranks <= k).double().mean())

    assert "strictly" in failure_text(checks.check_recall_at_k, pessimistic)


def test_device_step_check_names_each_mistake():
    import contextlib

    from taco_lite.train.step import taco_step

    checks.check_device_step(checks.reference("device_step"), verbose=False)

    def step(move=True, dtype=torch.bfloat16, follow_amp=True, returns=True):
        def fn(model, batch, tcfg, fns, optimizer, amp):
            device = next(model.parameters()).device
            if move:
                batch = batch.to(device)
            optimizer.zero_grad()
            on = (amp if follow_amp else True) and dtype is not None
            ctx = torch.autocast(device.type, dtype) if on else contextlib.nullcontext()
            with ctx:
                out = taco_step(model, batch, tcfg, fns)
            out.total.backward()
            optimizer.step()
            return float(out.total.detach()) if returns else None

        return fn

    checks.check_device_step(step(), verbose=False)
    assert "no autocast" in failure_text(checks.check_device_step, step(dtype=None))
    assert "amp=False" in failure_text(checks.check_device_step, step(follow_amp=False))
    assert "never moved" in failure_text(checks.check_device_step, step(move=False))
    assert "got None" in failure_text(checks.check_device_step, step(returns=False))
    try:
        with torch.autocast("cpu", torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except RuntimeError:
        return  # no float16 autocast on this CPU build: that mistake cannot be probed
    assert "bfloat16" in failure_text(checks.check_device_step, step(dtype=torch.float16))
