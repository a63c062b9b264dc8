"""The embedding-geometry diagnostics of sweep/geometry.py on hand-made similarities."""

from __future__ import annotations

import pytest
import torch

from taco_lite.sweep.geometry import (
    bank_corrected,
    csls,
    format_geometry,
    format_paired,
    hubness,
    mean_pairwise_cosine,
)


def test_mean_pairwise_cosine_spread_vs_cone():
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.ones(5, 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_cosine(torch.ones(1, 3))


def test_hubness_counts_how_often_each_item_is_first():
    sim = torch.zeros(4, 4)
    sim[:, 2] = 1.0  # video 2 is first for every text: one hub
    h = hubness(sim)
    assert h["max"] == 4 and h["never"] == 0.75
    assert h["skew"] == pytest.approx(0.75)  # counts 0, 0, 4, 0: third moment 6 / std 2 cubed
    assert hubness(torch.eye(4)) == {"max": 1, "skew": 0.0, "never": 0.0}


def test_csls_discounts_a_hub_and_restores_the_diagonal():
    """Video 0 is close to every text (a hub); CSLS subtracts its neighbourhood similarity,
    so each text finds its own video again."""
    sim = 0.5 * torch.eye(3)
    sim[:, 0] += 0.6  # text i: video 0 scores 0.6 (+0.5 for i = 0), its own video 0.5
    assert retrieval_first(sim) == [0, 0, 0]
    assert retrieval_first(csls(sim, k=1)) == [0, 1, 2]
    with pytest.raises(ValueError, match="k is 4"):
        csls(sim, k=4)


def retrieval_first(sim: torch.Tensor) -> list[int]:
    return sim.argmax(1).tolist()


def test_format_geometry_one_row_per_run():
    g = {"R1": {"t2v": 10.0, "v2t": 12.0}, "csls_R1": {"t2v": 11.0, "v2t": 13.0},
         "bank_R1": {"t2v": 14.0, "v2t": 15.0},
         "cos": {"video": 0.25, "text": 0.05},
         "hub": {"t2v": {"max": 37, "skew": 5.7, "never": 0.6},
                 "v2t": {"max": 19, "skew": 3.5, "never": 0.6}}}  # fmt: skip
    table = format_geometry({"L1+L2-endless": g}, 10)
    assert (
        "| L1+L2-endless | 10.0 / 12.0 | 0.250 / 0.050 | 37, 5.7 | 19, 3.5 | 11.0 / 13.0 | "
        "14.0 / 15.0 |" in table
    )
    b = {"diff": -3.6, "lo": -5.0, "hi": -2.1}
    paired = {"L1+L2": {s: {"t2v": b, "v2t": b} for s in ("s1", "csls", "bank")}}
    assert "| L1+L2 | -3.6 [-5.0, -2.1] |" in format_paired(paired, "L1")


def test_bank_corrected_discounts_a_hub_without_the_test_queries():
    """A bank of other texts also finds video 0 close: subtracting that restores each text's
    own video; the test queries themselves are never read for the discount."""
    sim = 0.5 * torch.eye(3)
    sim[:, 0] += 0.6
    bank = torch.tensor([[0.7, 0.1, 0.0], [0.6, 0.0, 0.1]])  # (B = 2 bank texts, 3 videos)
    assert retrieval_first(bank_corrected(sim, bank, k=1)) == [0, 1, 2]
    with pytest.raises(ValueError, match="same gallery"):
        bank_corrected(sim, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="bank's size"):
        bank_corrected(sim, bank, k=3)
