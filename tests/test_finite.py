"""No silent NaN (issue 11): NaN / inf inputs or outputs of the contract functions (docs/method.md
§8) raise ValueError naming the tensor and a likely cause; mixed dtypes and `meta` tensors get
a clear error too; bf16 similarity ties are warned about."""

from __future__ import annotations

import warnings

import pytest
import torch

from taco_lite.cascade import pair_scores, weighted_token_scores
from taco_lite.losses import fusion_nce, sentence_nce, token_nce, token_video_scores
from taco_lite.metrics import retrieval_metrics

BAD = [float("nan"), float("inf"), float("-inf")]


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("which", ["text_global", "video_global"])
def test_sentence_nce_refuses_non_finite_inputs(bad, which):
    t, v = torch.randn(4, 8, generator=g()), torch.randn(4, 8, generator=g(1))
    (t if which == "text_global" else v)[2, 3] = bad
    with pytest.raises(ValueError, match=rf"{which} contains .*learning rate too high"):
        sentence_nce(t, v, tau=0.07)


def test_sentence_nce_overflow_inside_is_named():
    t, v = torch.randn(4, 8, generator=g()), torch.randn(4, 8, generator=g(1))
    with pytest.raises(ValueError, match=r"sentence_nce \(L1\) came out NaN or inf.*tau=1e-40"):
        sentence_nce(t * 1e30, v * 1e30, tau=1e-40)


@pytest.mark.parametrize("bad", BAD)
def test_fusion_nce_refuses_nan_and_inf(bad):
    logits = torch.randn(6, 4, generator=g())
    logits[1, 2] = bad
    with pytest.raises(ValueError, match="logits contains"):
        fusion_nce(logits)


@pytest.mark.parametrize("bad", BAD)
def test_token_video_scores_refuses_non_finite_tokens(bad):
    tt, vt = torch.randn(3, 5, 8, generator=g()), torch.randn(3, 4, 8, generator=g(1))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1, 3] = False
    vt[1, 3] = bad  # a padded frame may hold anything
    assert torch.isfinite(token_video_scores(tt, vt, mask)).all()
    vt[0, 0] = bad
    with pytest.raises(ValueError, match=r"video_tokens \(valid frames\) contains"):
        token_video_scores(tt, vt, mask)
    tt[0, 0, 0] = bad
    with pytest.raises(ValueError, match="text_tokens contains"):
        token_video_scores(tt, vt, mask)


def test_token_nce_names_the_tensor_and_the_cause():
    s = torch.randn(3, 4, 3, generator=g())
    w = torch.zeros(3, 4)
    w[0, 1] = 1.0
    s[0, 1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"token_scores \(tokens with nonzero weight\).*learning"):
        token_nce(s, w)


def test_pair_scores_and_s2_refuse_nan_where_it_counts():
    sim = torch.randn(3, 3, generator=g())
    tok = torch.randn(3, 4, 3, generator=g(1))
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[:, 1] = True
    tok[0, 0, 0] = float("nan")  # masked: ignored
    assert torch.isfinite(pair_scores(sim, tok, mask)).all()
    tok[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="token_scores .*tokens of interest"):
        pair_scores(sim, tok, mask)
    sim[0, 0] = float("inf")
    with pytest.raises(ValueError, match="sim_global contains"):
        pair_scores(sim, torch.zeros(3, 4, 3), mask)
    with pytest.raises(ValueError, match="nonzero weight"):
        weighted_token_scores(tok, mask.float())


def test_mixed_dtypes_get_a_clear_error_except_under_autocast():
    t = torch.randn(4, 8, generator=g())
    v = torch.randn(4, 8, generator=g(1)).bfloat16()
    with pytest.raises(ValueError, match=r"text_global is torch.float32 but video_global is"):
        sentence_nce(t, v)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(sentence_nce(t, v))
    mask = torch.ones(4, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="text_tokens is torch.float32 but video_tokens is"):
        token_video_scores(torch.randn(4, 2, 8), torch.randn(4, 3, 8).bfloat16(), mask)


def test_meta_tensors_get_a_clear_error():
    t = torch.empty(4, 8, device="meta")
    with pytest.raises(ValueError, match="'meta' device"):
        sentence_nce(t, t)
    with pytest.raises(ValueError, match="'meta' device"):
        fusion_nce(torch.empty(4, 3, device="meta"))
    with pytest.raises(ValueError, match="'meta' device"):
        retrieval_metrics(torch.empty(4, 4, device="meta"))


def test_bf16_ties_warn_and_ranks_use_float32():
    """Scores 0.002 apart near 1 round to one bf16 value (spacing 2**-8): R@1 would read 100
    instead of 0 without a word."""
    N = 10
    sim = torch.full((N, N), 0.994)
    sim.fill_diagonal_(0.992)  # float32: every ground truth ranks last
    assert retrieval_metrics(sim)["R1"] == 0.0
    with pytest.warns(UserWarning, match="low precision: 10 of 10 queries tie"):
        rounded = retrieval_metrics(sim.bfloat16())["R1"]
    assert rounded == 100.0  # the optimistic tie rule, which the warning is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        retrieval_metrics(torch.eye(N).bfloat16())  # no ties: no warning


@pytest.mark.parametrize("tau", [float("inf"), float("nan"), -1.0, 0.0])
def test_sentence_nce_refuses_a_non_finite_or_non_positive_temperature(tau):
    """Issue 23: sentence_nce(tau=inf) returned log B whatever the scores."""
    t, v = torch.randn(4, 8, generator=g()), torch.randn(4, 8, generator=g(1))
    with pytest.raises(ValueError, match="tau must be"):
        sentence_nce(t, v, tau=tau)
