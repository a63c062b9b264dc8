"""The pure computations behind the explorers (`taco_lite.evaluate.alignment`), against naive loops."""

from __future__ import annotations

import pytest
import torch

from taco_lite.cascade import pair_scores
from taco_lite.evaluate import alignment
from taco_lite.losses import token_video_scores


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_token_frame_scores_are_dot_products_and_their_max_is_eq4_score():
    y, x = _rand(5, 8, seed=1), _rand(7, 8, seed=2)  # (n, d), (m, d)
    got = alignment.token_frame_scores(y, x)  # (n, m)
    for p in range(5):
        for k in range(7):
            assert got[p, k].item() == pytest.approx(float((y[p] * x[k]).sum()), abs=1e-5)
    # the max over frames is s(i, p, i) of losses.token_video_scores for the same pair
    s = token_video_scores(y[None], x[None], torch.ones(1, 7, dtype=torch.bool))  # (1, n, 1)
    torch.testing.assert_close(got.max(dim=1).values, s[0, :, 0])


def test_token_frame_scores_explains_a_width_mismatch():
    with pytest.raises(ValueError, match=r"same width d"):
        alignment.token_frame_scores(_rand(3, 4), _rand(5, 6))


def test_softmax_over_frames_matches_a_loop_and_ignores_padded_frames():
    scores = _rand(4, 6, seed=3) * 5
    mask = torch.tensor([True, True, False, True, True, False])
    got = alignment.softmax_over_frames(scores, tau=0.5, video_mask=mask)
    for p in range(4):
        e = [float(torch.exp(scores[p, k] / 0.5)) if mask[k] else 0.0 for k in range(6)]
        for k in range(6):
            assert got[p, k].item() == pytest.approx(e[k] / sum(e), rel=1e-5, abs=1e-7)
    assert torch.all(got[:, ~mask] == 0)


def test_softmax_over_frames_never_gives_nan_for_huge_scores():
    got = alignment.softmax_over_frames(torch.tensor([[1e30, -1e30, 0.0]]), tau=0.07)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.sum(1), torch.ones(1))


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_softmax_over_frames_rejects_a_bad_temperature(tau):
    with pytest.raises(ValueError, match="tau must be > 0"):
        alignment.softmax_over_frames(_rand(2, 3), tau=tau)


def test_best_frame_per_token_skips_padded_frames_and_breaks_ties_early():
    scores = torch.tensor([[0.1, 0.9, 5.0], [0.3, 0.3, 0.1], [2.0, 1.0, 0.0]])
    mask = torch.tensor([True, True, False])  # frame 2 is padding although it scores highest
    assert alignment.best_frame_per_token(scores, mask).tolist() == [1, 0, 0]
    assert alignment.best_frame_per_token(scores).tolist() == [2, 0, 0]


def test_best_frame_per_token_explains_a_bad_mask():
    with pytest.raises(ValueError, match=r"one entry per frame, shape \(3,\)"):
        alignment.best_frame_per_token(_rand(2, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one real frame"):
        alignment.best_frame_per_token(_rand(2, 3), torch.zeros(3, dtype=torch.bool))


def test_apply_view_switches_between_dot_and_softmax():
    scores = _rand(3, 4)
    torch.testing.assert_close(alignment.apply_view(scores, "dot"), scores)
    torch.testing.assert_close(
        alignment.apply_view(scores, "softmax", 2.0), torch.softmax(scores / 2.0, dim=1)
    )
    with pytest.raises(ValueError, match="must be one of"):
        alignment.apply_view(scores, "cosine")


def test_clip_grounding_counts_hits_on_gold_frames_only():
    scores = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.9, 0.0], [0.8, 0.1, 0.1, 0.2], [0.0, 0.0, 0.0, 1.0]]
    )  # best frames 0, 2, 0, 3
    gold = torch.zeros(4, 4, dtype=torch.bool)
    gold[1, 2] = True  # hit
    gold[2, 3] = True  # miss: best is frame 0
    gold[3, 3] = True  # a hit, but token 3 is not in the mask
    mask = torch.tensor([True, True, True, False])
    res = alignment.clip_grounding(scores, gold, mask)
    assert (res.correct, res.scored) == (1, 2)
    assert res.accuracy == pytest.approx(0.5)
    assert "1/2" in str(res)


def test_clip_grounding_without_gold_is_none_not_nan():
    res = alignment.clip_grounding(
        _rand(3, 4), torch.zeros(3, 4, dtype=torch.bool), torch.ones(3, dtype=torch.bool)
    )
    assert res.accuracy is None and res.scored == 0
    assert "no token" in str(res)


def test_top_k_is_sorted_stable_and_capped():
    scores = torch.tensor([0.2, 0.9, 0.5, 0.9, -1.0])
    idx, vals = alignment.top_k(scores, 3)
    assert idx.tolist() == [1, 3, 2]  # the tie keeps the lower index first
    assert vals.tolist() == pytest.approx([0.9, 0.9, 0.5])
    assert alignment.top_k(scores, 50)[0].numel() == 5
    with pytest.raises(ValueError, match="k >= 1"):
        alignment.top_k(scores, 0)
    with pytest.raises(ValueError, match="NaN"):
        alignment.top_k(torch.tensor([0.1, float("nan")]), 1)


def test_cascade_candidates_are_the_hardest_negatives_of_the_anchor():
    B, n, d, m = 6, 4, 8, 5
    g = torch.Generator().manual_seed(0)
    text = torch.randn(B, n, d, generator=g)
    video = torch.randn(B, m, d, generator=g)
    vmask = torch.ones(B, m, dtype=torch.bool)
    tmask = torch.rand(B, n, generator=g) < 0.6
    sim = text[:, 0] @ video.mean(1).T  # (B, B)
    tok = token_video_scores(text, video, vmask)  # (B, n, B)
    for anchor in range(B):
        c = alignment.cascade_candidates(sim, tok, tmask, anchor, k_neg=3, seed=7)
        # naive: a(i, j) by loops, then the 3 best j != anchor
        a = [
            float(sim[anchor, j]) + sum(float(tok[anchor, p, j]) for p in range(n) if tmask[anchor, p])
            for j in range(B)
        ]  # fmt: skip
        want = sorted((j for j in range(B) if j != anchor), key=lambda j: -a[j])[:3]
        assert c.hard == want
        assert anchor not in c.random and len(set(c.random)) == 3
        torch.testing.assert_close(c.pair_scores, pair_scores(sim, tok, tmask)[anchor])
    again = alignment.cascade_candidates(sim, tok, tmask, 2, k_neg=3, seed=7)
    other = [alignment.cascade_candidates(sim, tok, tmask, 2, 3, seed=s).random for s in range(8)]
    assert again.random == alignment.cascade_candidates(sim, tok, tmask, 2, 3, seed=7).random
    assert len({tuple(r) for r in other}) > 1  # the seed matters


def test_cascade_candidates_explains_too_many_negatives():
    sim, tok = _rand(4, 4), _rand(4, 3, 4)
    with pytest.raises(ValueError, match="only 3 negatives"):
        alignment.cascade_candidates(sim, tok, torch.ones(4, 3, dtype=torch.bool), 0, k_neg=5)
