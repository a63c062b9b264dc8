"""Tests for taco_lite.metrics: retrieval ranks (with ties), R@k/MedR/MnR, grounding accuracy."""

from __future__ import annotations

import pytest
import torch

from taco_lite.metrics import (
    grounding_accuracy,
    grounding_counts,
    retrieval_metrics,
    retrieval_ranks,
    retrieval_report,
)

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from helpers import naive
except ImportError:  # tests/ is a package
    from tests.helpers import naive


def test_identity_is_perfect():
    m = retrieval_metrics(torch.eye(12))
    assert m == {"R1": 100.0, "R5": 100.0, "R10": 100.0, "MedR": 1.0, "MnR": 1.0}


def test_reversed_order_is_worst():
    # every query's ground truth scores lowest: rank N for all
    N = 12
    sim = torch.ones(N, N) - 2 * torch.eye(N)
    m = retrieval_metrics(sim)
    assert m == {"R1": 0.0, "R5": 0.0, "R10": 0.0, "MedR": 12.0, "MnR": 12.0}


def test_hand_made_ranks():
    sim = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.3],  # gt best: rank 1
            [0.5, 0.4, 0.6, 0.0],  # two higher: rank 3
            [0.1, 0.9, 0.8, 0.7],  # one higher: rank 2
            [0.4, 0.3, 0.2, 0.1],  # three higher: rank 4
        ]
    )
    assert retrieval_ranks(sim).tolist() == [1, 3, 2, 4]
    m = retrieval_metrics(sim)
    assert m["R1"] == 25.0 and m["R5"] == 100.0 and m["R10"] == 100.0
    assert m["MedR"] == 2.5  # even N: mean of the two middle ranks (2 and 3)
    assert m["MnR"] == 2.5


def test_ties_are_resolved_in_the_querys_favour():
    sim = torch.tensor(
        [
            [1.0, 1.0, 1.0],  # all tied with gt: rank 1 (none strictly higher)
            [2.0, 1.0, 1.0],  # one strictly higher, one tied: rank 2
            [0.0, 0.0, 0.0],  # all tied: rank 1
        ]
    )
    assert retrieval_ranks(sim).tolist() == [1, 2, 1]
    m = retrieval_metrics(sim)
    assert m["R1"] == pytest.approx(200 / 3) and m["MedR"] == 1.0


def test_constant_matrix_is_all_ties():
    assert retrieval_metrics(torch.zeros(5, 5))["R1"] == 100.0  # documented quirk of the rule


def test_r_at_k_boundaries():
    N = 20
    # query i's gt has exactly i candidates above it: rank i + 1
    sim = torch.zeros(N, N)
    for i in range(N):
        sim[i, i] = 0.5
        others = [j for j in range(N) if j != i][:i]
        sim[i, others] = 1.0
    assert retrieval_ranks(sim).tolist() == list(range(1, N + 1))
    m = retrieval_metrics(sim)
    assert m["R1"] == 5.0 and m["R5"] == 25.0 and m["R10"] == 50.0
    assert m["MedR"] == 10.5 and m["MnR"] == 10.5


@pytest.mark.parametrize("N", [7, 10, 16])
def test_matches_naive_on_random_with_ties(N):
    g = torch.Generator().manual_seed(N)
    sim = torch.randint(0, 4, (N, N), generator=g).float()  # few values: many ties
    assert retrieval_metrics(sim) == pytest.approx(naive.retrieval_metrics(sim))
    sim = torch.randn(N, N, generator=g)
    assert retrieval_metrics(sim) == pytest.approx(naive.retrieval_metrics(sim))


def test_report_uses_both_directions():
    sim = torch.tensor([[3.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rep = retrieval_report(sim)
    assert rep["t2v"]["R1"] == pytest.approx(200 / 3)  # text 1 loses to video 0
    assert rep["v2t"]["R1"] == 100.0  # each video's own text scores highest in its column
    assert set(rep) == {"t2v", "v2t"}


def test_infinities_are_refused_like_nan():
    """Issue 23: an all-inf matrix gave R@1 100.0 (inf ties with inf, the query wins ties)."""
    for bad in (float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="inf value"):
            retrieval_metrics(torch.full((4, 4), bad))
        sim = torch.eye(3)
        sim[0, 1] = bad
        with pytest.raises(ValueError, match="sim contains 0 NaN and 1 inf"):
            retrieval_ranks(sim)


def test_nan_raises():
    sim = torch.eye(3)
    sim[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(sim)


@pytest.mark.parametrize("shape, match", [((3, 4), r"\(3, 4\).*square"), ((3,), r"2-D.*\(3,\)")])
def test_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(torch.randn(shape))


# ---------------------------------------------------------------------------- grounding


def test_grounding_hand_made():
    sim = torch.tensor([[0.1, 0.9, 0.2], [0.8, 0.1, 0.0], [0.0, 0.0, 5.0], [0.3, 0.2, 0.1]])
    gold = torch.tensor(
        [[False, True, False], [False, True, True], [False, False, True], [False, False, False]]
    )
    tmask = torch.tensor([True, True, True, True])
    # token 0 right, token 1 wrong, token 2 right, token 3 has no gold frame: not scored
    assert grounding_counts(sim, gold, tmask) == (2, 3)
    assert grounding_accuracy(sim, gold, tmask) == pytest.approx(2 / 3)
    # a token outside the mask is not scored
    assert grounding_counts(sim, gold, torch.tensor([True, False, True, True])) == (2, 2)
    # padding: frame 2 is not a real frame, so token 2 has no valid gold frame
    vmask = torch.tensor([True, True, False])
    assert grounding_counts(sim, gold, tmask, vmask) == (1, 2)


def test_grounding_batched_matches_naive():
    g = torch.Generator().manual_seed(3)
    B, n, m = 4, 6, 5
    sim = torch.randn(B, n, m, generator=g)
    gold = torch.rand(B, n, m, generator=g) < 0.3
    tmask = torch.rand(B, n, generator=g) < 0.7
    vmask = torch.arange(m)[None, :] < torch.tensor([5, 3, 1, 4])[:, None]
    sim_dirty = sim.masked_fill(~vmask[:, None, :], 99.0)  # padded frames must not win
    got = grounding_counts(sim_dirty, gold, tmask, vmask)
    assert got == naive.grounding_counts(sim, gold, tmask, vmask)
    assert got[1] > 0


def test_grounding_nothing_to_score_raises():
    sim = torch.randn(3, 4)
    with pytest.raises(ValueError, match="undefined"):
        grounding_accuracy(
            sim, torch.zeros(3, 4, dtype=torch.bool), torch.ones(3, dtype=torch.bool)
        )


def test_grounding_bad_shapes():
    with pytest.raises(ValueError, match=r"gold_frames has shape \(3, 5\).*\(3, 4\)"):
        grounding_counts(
            torch.randn(3, 4), torch.zeros(3, 5, dtype=torch.bool), torch.ones(3).bool()
        )
    with pytest.raises(ValueError, match=r"token_mask has shape \(2,\).*\(3, 4\)"):
        grounding_counts(
            torch.randn(3, 4), torch.zeros(3, 4, dtype=torch.bool), torch.ones(2).bool()
        )
    with pytest.raises(ValueError, match="bool"):
        grounding_counts(torch.randn(3, 4), torch.zeros(3, 4), torch.ones(3).bool())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_on_cuda_match_cpu():
    g = torch.Generator().manual_seed(4)
    sim = torch.randint(0, 5, (30, 30), generator=g).float()
    assert retrieval_report(sim.cuda()) == retrieval_report(sim)
    tfs, gold = torch.randn(2, 4, 5, generator=g), torch.rand(2, 4, 5, generator=g) < 0.4
    tm, vm = torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 5, dtype=torch.bool)
    assert grounding_counts(tfs.cuda(), gold.cuda(), tm.cuda(), vm.cuda()) == grounding_counts(
        tfs, gold, tm, vm
    )
