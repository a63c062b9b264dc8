"""The exercise checks accept the reference and name the mistake of each typical wrong answer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import taco_lite.evaluate.alignment
import taco_lite.losses
import taco_lite.metrics
from taco_lite import course as checks
from taco_lite.cascade import pair_scores
from taco_lite.losses import fusion_nce, token_nce, token_video_scores
from taco_lite.text.pos import idf_table, interest_mask, token_weights

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from solutions import solution
except ImportError:  # tests/ is a package
    from tests.solutions import solution


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


def _solved() -> list[tuple]:
    """(check, notebook, function) for every exercise of every notebook that has a
    `check_<name>` without a world argument: a new exercise is tested without being listed."""
    import ast
    import inspect

    found = []
    for path in checks.lesson_notebooks():
        for cell in checks.read_notebook(path).cells:
            if cell.cell_type != "code" or checks.cell_role(cell) != "exercise":
                continue
            defs = [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
            check = getattr(checks, f"check_{defs[0].removeprefix('my_')}", None) if len(defs) == 1 else None
            if check is not None and "world" not in inspect.signature(check).parameters:
                found.append((check, path.name[:2], defs[0]))
    return found


SOLVED = _solved()


def test_the_discovery_finds_the_exercises():
    names = {n for _, _, n in SOLVED}
    assert {"my_token_nce", "my_pair_scores", "softmax_over_frames", "my_retrieval_ranks"} <= names
    assert len(SOLVED) >= 15


@pytest.mark.parametrize("check, nb, name", SOLVED, ids=[n for _, _, n in SOLVED])
def test_the_notebooks_solutions_pass(check, nb, name):
    report = check(solution(nb, name), verbose=False)
    assert report.passed and report.lines
    for section in report.sections:  # every part a grade cell can ask for passes on its own
        check(solution(nb, name), verbose=False, part=section)


# ------------------------------------------------------------------ integrity (issue 19)

KIT_CALLS = {  # exercise -> a learner's function that only calls the kit's own answer
    "sentence_nce": lambda t, v, tau=1.0, symmetric=False: taco_lite.losses.sentence_nce(t, v, tau, symmetric),
    "video_global": lambda x, mask: checks.reference("video_global")(x, mask),
    "token_video_scores": lambda y, x, mask: token_video_scores(y, x, mask),
    "token_nce": lambda s, w, tau=1.0: taco_lite.losses.token_nce(s, w, tau=tau),
    "pair_scores": lambda sim, tok, mask: pair_scores(sim, tok, mask),
    "hard_negatives": lambda a, k: taco_lite.evaluate.alignment.hard_negatives(a, k),  # a re-export
    "fusion_nce": lambda logits: fusion_nce(logits),
    "recall_at_k": lambda sim, k: taco_lite.metrics.retrieval_metrics(sim)[f"R{k}"],
    "retrieval_ranks": lambda sim: taco_lite.metrics.retrieval_ranks(sim),
    "softmax_over_frames": lambda s, tau: taco_lite.evaluate.alignment.softmax_over_frames(s, tau),
    "word_frame_block": lambda a, t, v: checks.reference("word_frame_block")(a, t, v),
    "interest_mask": lambda tags, pos: interest_mask(tags, frozenset(pos)),
    "idf_table": lambda docs: dict(idf_table(docs)),
    "token_weights": token_weights,  # the kit's function itself
}  # fmt: skip


@pytest.mark.parametrize("check, nb, name", SOLVED, ids=[n for _, _, n in SOLVED])
def test_a_function_that_calls_the_kit_fails_every_section(check, nb, name):
    exercise = name.removeprefix("my_")
    if not checks.KIT_ANSWERS.get(exercise) and exercise not in KIT_CALLS:
        pytest.skip(f"the package has no answer to {exercise}")
    fn = KIT_CALLS.get(exercise, lambda *a, **k: checks.reference(exercise)(*a, **k))
    with pytest.raises(checks.CheckFailed) as info:
        check(fn, verbose=False)
    report = info.value.report
    assert report.hints and "kit's own" in report.hints[0], report
    for section in report.sections:
        with pytest.raises(checks.CheckFailed, match="kit's own"):
            check(fn, verbose=False, part=section)
    # nothing stays swapped: the kit's functions work again after the check
    assert checks.reference(exercise) is not None and "kit" not in repr(checks.reference(exercise))


def test_kit_hidden_restores_every_binding():
    before = (taco_lite.losses.token_nce, taco_lite.cascade.pair_scores)
    with checks.kit_hidden("token_nce", lambda: None):
        assert taco_lite.losses.token_nce is not before[0]
        with pytest.raises(checks.KitAnswerUsed, match="token_nce yourself"):
            taco_lite.losses.token_nce(torch.zeros(1, 1, 1), torch.zeros(1, 1))
    assert (taco_lite.losses.token_nce, taco_lite.cascade.pair_scores) == before


def test_a_swallowed_kit_call_still_fails():
    def sneaky(scores, w, tau=1.0):
        try:
            return taco_lite.losses.token_nce(scores, w, tau=tau)
        except Exception:
            return solution("03", "my_token_nce")(scores, w, tau=tau)

    assert "kit's own" in failure_text(checks.check_token_nce, sneaky)


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

    assert "ignore video_mask" in failure_text(checks.check_token_video_scores, no_mask)
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
    mine = solution("02", "my_sentence_nce")
    assert checks.use_or_reference(mine, "sentence_nce") is mine
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

    checks.check_recall_at_k(solution("05", "my_recall_at_k"), verbose=False)

    def pessimistic(sim, k):
        ranks = 1 + (sim >= sim.diagonal()[:, None]).sum(1) - 1
        ranks = ranks + (sim == sim.diagonal()[:, None]).sum(1) - 1
        return 100.0 * float((ranks <= k).double().mean())

    assert "strictly" in failure_text(checks.check_recall_at_k, pessimistic)


def test_device_step_check_names_each_mistake():
    import contextlib

    from taco_lite.train.step import taco_step


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


# ------------------------------------------------------------------ misfires (issue 19 item 5)
# Each wrong answer the issue observed: the first hint names its mistake, and no hint speaks of
# a mistake the answer does not contain.


def _ce(logits):
    return F.cross_entropy(logits, torch.arange(logits.shape[0]))


def _l2(scores, w, tau, dim=2, positive=None, uniform=False):
    B = scores.shape[0]
    active = w > 0
    s = torch.where(active[:, :, None], scores, 0.0)
    logp = F.log_softmax(s / tau, dim=dim)
    idx = torch.arange(B)
    nll = -(logp[idx, :, idx] if positive is None else logp[:, :, positive])
    if uniform:
        return nll.mean()  # every token counts, unweighted
    return (torch.where(active, w, 0.0) * nll).sum() / active.any(1).sum().clamp_min(1)


def _wrong_step(backward_on="total", zero_first=True, zero_after=False):
    def fn(model, batch, tcfg, fns, optimizer):
        from taco_lite.train.step import taco_step

        if zero_first:
            optimizer.zero_grad()
        out = taco_step(model, batch, tcfg, fns)
        getattr(out, backward_on).backward()
        if zero_after:
            optimizer.zero_grad()
        optimizer.step()
        return float(out.total.detach())

    return fn


def _softmax(dim=1, use_tau=True, stable=True):
    def fn(scores, tau):
        z = scores / tau if use_tau else scores
        if stable:
            z = z - z.amax(dim=dim, keepdim=True)
        e = torch.exp(z)
        return e / e.sum(dim=dim, keepdim=True)

    return fn


def _pair_scores_inplace(sim, tok, mask):
    tok.masked_fill_(~mask[:, :, None], 0.0)  # edits the caller's tensor
    return sim + tok.sum(1)


MISFIRES = [  # (check, wrong answer, words the first hint must hold, words no hint may hold)
    ("02 wrong axis", checks.check_sentence_nce,
     lambda t, v, tau=1.0, symmetric=False: _ce((t @ v.T).T / tau) if not symmetric
     else 0.5 * (_ce((t @ v.T).T / tau) + _ce(t @ v.T / tau)), "wrong axis", ("overflow", "symmetric")),
    ("02 sum", checks.check_sentence_nce,
     lambda t, v, tau=1.0, symmetric=False: 5 * _ce(t @ v.T / tau) if not symmetric
     else 2.5 * (_ce(t @ v.T / tau) + _ce(v @ t.T / tau)), "summed", ("overflow", "symmetric")),
    ("02 .item()", checks.check_sentence_nce,
     lambda t, v, tau=1.0, symmetric=False: (_ce(t @ v.T / tau) if not symmetric
     else 0.5 * (_ce(t @ v.T / tau) + _ce(v @ t.T / tau))).item(), ".item()", ("overflow", "symmetric")),
    ("02 video_global mean over the wrong axis", checks.check_video_global,
     lambda x, mask: torch.where(mask[:, :, None], x, 0.0).sum(2) / mask.sum(1, keepdim=True),
     "wrong axis", ("ignores video_mask",)),
    ("03 softmax over tokens", checks.check_token_nce,
     lambda s, w, tau=1.0: _l2(s, w, tau, dim=1), "over tokens", ("0 * inf", "NaN")),
    ("03 tau forgotten", checks.check_token_nce,
     lambda s, w, tau=1.0: _l2(s, w, 1.0), "ignores tau", ("0 * inf", "NaN")),
    ("03 positive in column 0", checks.check_token_nce,
     lambda s, w, tau=1.0: _l2(s, w, tau, positive=0), "video 0", ("0 * inf", "NaN")),
    ("03 unweighted, all tokens", checks.check_token_nce,
     lambda s, w, tau=1.0: _l2(s, w, tau, uniform=True), "token_weights", ("NaN", "0 * inf")),
    ("03 token scores of the wrong shape", checks.check_token_video_scores,
     lambda y, x, mask: torch.einsum("ipd,jkd->ipjk", y, x).masked_fill(~mask[None, None], float("-inf")),
     "expected shape", ("ignores video_mask", "0 beats")),
    ("04 L3 last column", checks.check_fusion_nce,
     lambda lg: F.cross_entropy(lg, torch.full((lg.shape[0],), lg.shape[1] - 1)), "column 0", ("overflow",)),
    ("04 L3 summed", checks.check_fusion_nce,
     lambda lg: F.cross_entropy(lg, torch.zeros(lg.shape[0], dtype=torch.long), reduction="sum"),
     "summed", ("overflow",)),
    ("04 L3 wrong axis", checks.check_fusion_nce,
     lambda lg: F.cross_entropy(lg.T, torch.zeros(lg.shape[1], dtype=torch.long)), "wrong axis", ("overflow",)),
    ("04 pair_scores summed over the videos", checks.check_pair_scores,
     lambda sim, tok, mask: sim + torch.where(mask[:, :, None], tok, 0.0).sum(2).sum(1, keepdim=True),
     "videos j", ("torch.where", "multiplying")),
    ("04 pair_scores summed over dim=2", checks.check_pair_scores,
     lambda sim, tok, mask: sim[:, :1] + torch.where(mask[:, :, None], tok, 0.0).sum(2),
     "videos j", ("torch.where", "multiplying", "outside token_mask")),
    ("04 pair_scores edits its input", checks.check_pair_scores, _pair_scores_inplace,
     "in place", ("outside token_mask",)),
    ("05 backward on L1 only", checks.check_train_step, _wrong_step(backward_on="L1"), "L1 only",
     ("zero_grad",)),
    ("05 zero_grad after backward", checks.check_train_step, _wrong_step(zero_first=False, zero_after=True),
     "before* backward", ("call optimizer.step()",)),
    ("05 rank < k", checks.check_recall_at_k,
     lambda sim, k: 100.0 * float(((1 + (sim > sim.diagonal()[:, None]).sum(1)) < k).double().mean()),
     "rank < k", ("rows are the queries",)),
    ("07 softmax over the wrong axis", checks.check_softmax_over_frames, _softmax(dim=0), "wrong axis",
     ("tau", "overflow")),
    ("07 tau forgotten", checks.check_softmax_over_frames, _softmax(use_tau=False), "forgot tau",
     ("axis", "overflow")),
    ("07 naive exp", checks.check_softmax_over_frames, _softmax(stable=False), "overflow",
     ("axis", "forgot tau")),
]  # fmt: skip


@pytest.mark.parametrize("label, check, fn, first, never", MISFIRES, ids=[m[0] for m in MISFIRES])
def test_the_first_hint_names_the_mistake_and_no_other_hint_fires(label, check, fn, first, never):
    with pytest.raises(checks.CheckFailed) as info:
        check(fn, verbose=False)
    hints = info.value.report.hints
    assert hints and first in hints[0], f"{label}: first hint {hints[:1]}"
    wrong = [(w, h) for h in hints for w in never if w in h]
    assert not wrong, f"{label}: a hint for a mistake it does not contain: {wrong}"
    assert str(info.value).strip(), "a failing check raises with a message"


def test_a_partly_right_answer_keeps_the_points_of_the_parts_it_gets_right():
    """Issue 19: "a student who only forgot tau gets 0/3". Now values fail, gradients pass."""
    def no_tau(s, w, tau=1.0):
        return _l2(s, w, 1.0)

    with pytest.raises(checks.CheckFailed, match="ignores tau"):
        checks.check_token_nce(no_tau, verbose=False, part="values")
    checks.check_token_nce(no_tau, verbose=False, part="gradients")
    with pytest.raises(ValueError, match="sections are"):
        checks.check_token_nce(no_tau, verbose=False, part="shapes")
