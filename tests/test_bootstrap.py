"""Paired bootstrap of an R@k difference (metrics.paired_bootstrap) against known answers."""

import math

import pytest
import torch

from taco_lite.metrics import paired_bootstrap, rank_metrics, retrieval_metrics


def test_identical_runs_give_a_zero_interval():
    ranks = torch.randint(1, 50, (300,), generator=torch.Generator().manual_seed(0))
    out = paired_bootstrap(ranks, ranks.clone(), n_boot=500)
    assert out["diff"] == out["lo"] == out["hi"] == 0.0


def test_all_hits_against_no_hits():
    out = paired_bootstrap(torch.full((40,), 7), torch.ones(40, dtype=torch.long), n_boot=200)
    assert (out["R_a"], out["R_b"], out["diff"], out["lo"], out["hi"]) == (0, 100, 100, 100, 100)


def test_interval_matches_the_normal_approximation():
    # 60 queries only b gets right, 20 only a gets right, N = 2000: diff = +2.0 points and
    # the bootstrap SE of a mean of N draws is sd(d) / sqrt(N) = sqrt(400 - 4) / sqrt(2000).
    N = 2000
    a = torch.full((N,), 9)
    b = torch.full((N,), 9)
    b[:60] = 1
    a[60:80] = 1
    out = paired_bootstrap(a, b, k=1, n_boot=4000, seed=1)
    se = math.sqrt(396.0) / math.sqrt(N)
    assert out["diff"] == pytest.approx(2.0)
    assert out["se"] == pytest.approx(se, rel=0.08)
    assert out["lo"] == pytest.approx(2.0 - 1.96 * se, abs=0.12)
    assert out["hi"] == pytest.approx(2.0 + 1.96 * se, abs=0.12)
    assert paired_bootstrap(a, b, k=10)["diff"] == 0.0  # rank 9 is inside R@10 for everyone


def test_seeds_are_resampled_too():
    # Seeds 0 and 2: b wins every query; seeds 1 and 3: no difference. Resampling only the
    # queries would give a zero-width interval at 50; resampling the 4 seeds gives mean
    # differences in {0, 25, 50, 75, 100} with P(0) = P(100) = 1/16 > 2.5%.
    S, N = 4, 100
    a = torch.full((S, N), 5)
    b = a.clone()
    b[0::2] = 1
    out = paired_bootstrap(a, b, n_boot=4000)
    assert (out["diff"], out["lo"], out["hi"], out["S"]) == (50.0, 0.0, 100.0, 4)


def test_deterministic_in_seed_and_checked():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randint(1, 4, (2, 500), generator=g)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(a, b[:-1])


def test_rank_metrics_agrees_with_retrieval_metrics():
    sim = torch.randn(30, 30, generator=torch.Generator().manual_seed(0))
    from taco_lite.metrics import retrieval_ranks

    assert rank_metrics(retrieval_ranks(sim)) == retrieval_metrics(sim)
    with pytest.raises(ValueError, match="1-based"):
        rank_metrics(torch.tensor([0, 1]))
