"""Tests for taco_lite.cascade: sampling scores, hard/random negatives, pair layout, re-ranking."""

from __future__ import annotations

import pytest
import torch

from taco_lite.cascade import (
    cascade_rerank,
    fusion_pair_count,
    fusion_pairs,
    hard_negatives,
    pair_scores,
    random_negatives,
    weighted_token_scores,
)
from taco_lite.losses import fusion_nce

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from helpers import ATOL, gen, naive, pair_inputs, token_weights
except ImportError:  # tests/ is a package
    from tests.helpers import ATOL, gen, naive, pair_inputs, token_weights


# ---------------------------------------------------------------------------- pair_scores


def test_pair_scores_matches_naive_and_ignores_masked_tokens():
    g = gen(1)
    B, n = 6, 5
    sim, tok, mask = pair_inputs(B, n, g)
    mask[2] = False  # a text without tokens of interest: a = s1
    tok_dirty = tok.clone()
    tok_dirty[~mask] = float("inf")  # masked tokens may hold anything
    got = pair_scores(sim, tok_dirty, mask)
    assert got.shape == (B, B)
    torch.testing.assert_close(got, naive.pair_scores(sim, tok, mask).float(), atol=ATOL, rtol=0)
    torch.testing.assert_close(got[2], sim[2])


def test_pair_scores_is_unweighted_sum():
    sim = torch.zeros(2, 2)
    tok = torch.tensor([[[1.0, 2.0], [10.0, 20.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (2, 2, 2)
    mask = torch.tensor([[True, True], [False, False]])
    assert pair_scores(sim, tok, mask)[0].tolist() == [11.0, 22.0]


@pytest.mark.parametrize(
    "sim_shape, tok_shape, mask_shape, match",
    [
        ((4, 5), (4, 3, 4), (4, 3), r"sim_global has shape \(4, 5\).*\(4, 3, 4\)"),
        ((4, 4), (4, 3, 4), (4, 2), r"token_mask has shape \(4, 2\).*\(4, 3, 4\)"),
        ((4, 4), (4, 4), (4, 3), r"3-D \(B, n, B\).*\(4, 4\)"),
    ],
)
def test_pair_scores_bad_shapes(sim_shape, tok_shape, mask_shape, match):
    with pytest.raises(ValueError, match=match):
        pair_scores(torch.randn(sim_shape), torch.randn(tok_shape), torch.ones(mask_shape).bool())


# ---------------------------------------------------------------------------- hard_negatives


@pytest.mark.parametrize("B, k", [(8, 1), (8, 3), (8, 7), (5, 4), (2, 1)])
def test_hard_negatives_picks_true_top_k_and_never_the_positive(B, k):
    g = gen(B * 10 + k)
    a = torch.randn(B, B, generator=g)
    a += 5 * torch.eye(B)  # the positive scores highest: the easiest mistake to make
    vft, tfv = hard_negatives(a, k)
    assert vft.shape == tfv.shape == (B, k)
    assert vft.dtype == tfv.dtype == torch.long
    anchors = torch.arange(B)[:, None]
    assert not (vft == anchors).any()
    assert not (tfv == anchors).any()
    want_t, want_v = naive.hard_negative_scores(a, k)
    for i in range(B):
        assert [float(a[i, j]) for j in vft[i]] == want_t[i]  # best first, the true top-k
        assert [float(a[t, i]) for t in tfv[i]] == want_v[i]
        assert len(set(vft[i].tolist())) == k and len(set(tfv[i].tolist())) == k


def test_hard_negatives_rows_and_columns_differ():
    a = torch.tensor([[0.0, 9.0, 1.0], [2.0, 0.0, 3.0], [8.0, 4.0, 0.0]])
    vft, tfv = hard_negatives(a, 1)
    assert vft.flatten().tolist() == [1, 2, 0]  # text i: argmax over a[i, j != i]
    assert tfv.flatten().tolist() == [2, 0, 1]  # video j: argmax over a[i != j, j]


def test_hard_negatives_k_equals_B_minus_1_is_all_others():
    a = torch.randn(8, 8, generator=gen(3))
    vft, tfv = hard_negatives(a, 7)
    for i in range(8):
        assert sorted(vft[i].tolist()) == [j for j in range(8) if j != i]
        assert sorted(tfv[i].tolist()) == [j for j in range(8) if j != i]


def test_hard_negatives_with_ties_and_infinite_scores():
    a = torch.zeros(4, 4)
    a[0, 0] = float("inf")
    a[1, 3] = float("-inf")
    vft, tfv = hard_negatives(a, 3)
    assert not (vft == torch.arange(4)[:, None]).any()
    assert not (tfv == torch.arange(4)[:, None]).any()
    assert vft[1].tolist()[-1] == 3  # -inf is still a valid (last) choice, the positive is not


def test_hard_negatives_k_too_large_message():
    with pytest.raises(
        ValueError,
        match=r"k_neg=9 but a batch of 8 pairs has only 7 negatives per anchor: "
        r"lower k_neg or raise the batch size",
    ):
        hard_negatives(torch.randn(8, 8), 9)


@pytest.mark.parametrize("k", [0, -1])
def test_hard_negatives_k_too_small(k):
    with pytest.raises(ValueError, match=f"k_neg={k}.*at least 1"):
        hard_negatives(torch.randn(8, 8), k)


def test_hard_negatives_k_must_be_int():
    with pytest.raises(ValueError, match="must be an int"):
        hard_negatives(torch.randn(8, 8), 2.0)


def test_hard_negatives_bad_input():
    with pytest.raises(ValueError, match=r"\(4, 5\).*square"):
        hard_negatives(torch.randn(4, 5), 2)
    with pytest.raises(ValueError, match="NaN"):
        hard_negatives(torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), 1)


def test_hard_negatives_drops_duplicate_captions():
    # captions: 0 and 1 identical, 2 and 3 identical, the rest unique
    ids = torch.tensor([0, 0, 1, 1, 2, 3])
    a = torch.randn(6, 6, generator=gen(4))
    a[0, 1] = a[1, 0] = 100.0  # the duplicate scores highest: a false negative
    a[2, 3] = a[3, 2] = 100.0
    vft, tfv = hard_negatives(a, 3, caption_ids=ids)
    for i in range(6):
        for j in vft[i].tolist() + tfv[i].tolist():
            assert j != i and ids[j] != ids[i]
    # without the flag the duplicate is the hardest negative
    vft_plain, _ = hard_negatives(a, 3)
    assert vft_plain[0, 0].item() == 1


def test_hard_negatives_duplicate_fallback_keeps_shape_and_skips_positive():
    ids = torch.tensor([7, 7, 7, 5])  # text 0 has only one distinct-caption candidate (3)
    a = torch.randn(4, 4, generator=gen(5))
    vft, tfv = hard_negatives(a, 3, caption_ids=ids)
    assert vft.shape == tfv.shape == (4, 3)
    assert not (vft == torch.arange(4)[:, None]).any()
    assert not (tfv == torch.arange(4)[:, None]).any()
    assert vft[0, 0].item() == 3  # the true negative first, then duplicates by score
    dup = [1, 2] if a[0, 1] >= a[0, 2] else [2, 1]
    assert vft[0, 1:].tolist() == dup


def test_hard_negatives_caption_ids_shape():
    with pytest.raises(ValueError, match=r"caption_ids has shape \(3,\).*\(4, 4\)"):
        hard_negatives(torch.randn(4, 4), 2, caption_ids=torch.arange(3))


# ---------------------------------------------------------------------------- random_negatives


@pytest.mark.parametrize("B, k", [(8, 3), (8, 7), (2, 1), (30, 8)])
def test_random_negatives_valid(B, k):
    vft, tfv = random_negatives(B, k, generator=gen(6))
    for out in (vft, tfv):
        assert out.shape == (B, k) and out.dtype == torch.long
        assert not (out == torch.arange(B)[:, None]).any()
        assert ((out >= 0) & (out < B)).all()
        for row in out.tolist():
            assert len(set(row)) == k


def test_random_negatives_reproducible_and_random():
    a = random_negatives(16, 4, generator=gen(7))
    b = random_negatives(16, 4, generator=gen(7))
    c = random_negatives(16, 4, generator=gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # the two directions are drawn independently


def test_random_negatives_is_uniform():
    # every non-positive video should be drawn about equally often for text 0
    counts = torch.zeros(5)
    g = gen(9)
    for _ in range(400):
        vft, _ = random_negatives(5, 2, generator=g)
        counts += torch.bincount(vft[0], minlength=5)
    assert counts[0] == 0
    assert (counts[1:] > 150).all() and (counts[1:] < 250).all()  # expected 200 each


def test_random_negatives_errors():
    with pytest.raises(ValueError, match="k_neg=8 but a batch of 8 pairs has only 7"):
        random_negatives(8, 8)
    with pytest.raises(ValueError, match="k_neg=0"):
        random_negatives(8, 0)
    with pytest.raises(ValueError, match="at least 2"):
        random_negatives(1, 1)


# ---------------------------------------------------------------------------- fusion_pairs


def test_fusion_pairs_layout():
    vft = torch.tensor([[1, 2], [2, 0], [0, 1]])
    tfv = torch.tensor([[2, 1], [0, 2], [1, 0]])
    t_idx, v_idx = fusion_pairs(vft, tfv)
    assert t_idx.shape == v_idx.shape == (fusion_pair_count(3, 2),)
    pairs = list(zip(t_idx.view(6, 3).tolist(), v_idx.view(6, 3).tolist(), strict=True))
    assert pairs[0] == ([0, 0, 0], [0, 1, 2])  # text anchor 0: positive video 0, then 1, 2
    assert pairs[2] == ([2, 2, 2], [2, 0, 1])
    assert pairs[3] == ([0, 2, 1], [0, 0, 0])  # video anchor 0: positive text 0, then 2, 1
    assert pairs[5] == ([2, 1, 0], [2, 2, 2])


def test_fusion_pairs_with_a_perfect_scorer_give_zero_loss():
    """End to end: gather pairs, score them, reshape; a scorer that knows the positives wins."""
    B, k = 6, 3
    a = torch.randn(B, B, generator=gen(10))
    t_idx, v_idx = fusion_pairs(*hard_negatives(a, k))
    logits = 50.0 * (t_idx == v_idx).float()  # s3 high only for true pairs
    assert fusion_nce(logits.view(2 * B, 1 + k)).item() < 1e-6
    assert (t_idx.view(2 * B, 1 + k)[:, 0] == v_idx.view(2 * B, 1 + k)[:, 0]).all()
    assert (t_idx.view(2 * B, 1 + k)[:, 1:] != v_idx.view(2 * B, 1 + k)[:, 1:]).all()


def test_fusion_pairs_errors():
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 1\)"):
        fusion_pairs(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="LongTensor"):
        fusion_pairs(torch.zeros(3, 2), torch.zeros(3, 2))


def test_fusion_pair_count():
    assert fusion_pair_count(128, 8) == 2304
    assert fusion_pair_count(3, 2) == 18
    assert 128 * 128 / fusion_pair_count(128, 8) == pytest.approx(16384 / 2304)


# ---------------------------------------------------------------------------- inference


def test_weighted_token_scores_matches_naive_with_inf_padding():
    g = gen(11)
    N, n, M = 5, 4, 6
    s = torch.randn(N, n, M, generator=g)
    w = token_weights(N, n, g)  # (N, n), text 1 without tokens of interest
    dirty = s.clone()
    dirty[w == 0] = float("-inf")
    got = weighted_token_scores(dirty, w)
    assert got.shape == (N, M) and torch.isfinite(got).all()
    torch.testing.assert_close(got, naive.weighted_token_scores(s, w).float(), atol=ATOL, rtol=0)
    assert (got[1] == 0).all()


def test_weighted_token_scores_shape_message():
    with pytest.raises(
        ValueError, match=r"token_weights has shape \(4, 7\) but token_scores is \(4, 9, 4\)"
    ):
        weighted_token_scores(torch.randn(4, 9, 4), torch.rand(4, 7))


def test_cascade_rerank_rule():
    coarse = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    fine_calls = []

    def fine_fn(rows, cols):
        fine_calls.append((rows.clone(), cols.clone()))
        return torch.where(cols == 1, 10.0, 0.0)  # fusion prefers candidate 1

    out = cascade_rerank(coarse, 3, fine_fn)
    rows, cols = fine_calls[0]
    assert sorted(cols[0].tolist()) == [0, 1, 2] and (rows == 0).all()
    order = out[0].argsort(descending=True).tolist()
    assert order == [1, 0, 2, 3, 4]  # 1 promoted by fusion, then coarse order; rest below
    assert out[0, 1] == 14.0 and out[0, 0] == 5.0  # top-k: coarse + fine
    assert out[0, 3] < out[0, 2] and out[0, 3] - out[0, 4] == 1.0  # rest: coarse minus a shift


def test_cascade_rerank_recall_and_ranks_beyond_k():
    from taco_lite.metrics import retrieval_ranks

    g = gen(12)
    N, k = 20, 5
    coarse = torch.randn(N, N, generator=g)
    fine_fn = lambda r, c: torch.where(r == c, 100.0, 0.0)  # noqa: E731, an oracle
    out = cascade_rerank(coarse, k, fine_fn, rows_per_call=7)
    coarse_ranks = retrieval_ranks(coarse)
    ranks = retrieval_ranks(out)
    in_top = coarse_ranks <= k
    assert (ranks[in_top] == 1).all()  # the oracle fixes every query it sees
    assert torch.equal(ranks[~in_top], coarse_ranks[~in_top])  # the rest keep coarse ranks


def test_cascade_rerank_fine_only_and_full():
    coarse = torch.tensor([[3.0, 2.0, 1.0]])
    fine_fn = lambda r, c: -c.double()  # noqa: E731, fusion: lower index is better
    out = cascade_rerank(coarse, 3, fine_fn, add_coarse=False)  # k = M: full fusion
    assert out[0].tolist() == [0.0, -1.0, -2.0]


def test_cascade_rerank_errors():
    with pytest.raises(ValueError, match=r"k=6 but coarse \(2, 5\) has 5 candidates"):
        cascade_rerank(torch.randn(2, 5), 6, lambda r, c: torch.zeros(r.shape))
    with pytest.raises(ValueError, match=r"fine_fn returned \(3,\).*\(2, 2\)"):
        cascade_rerank(torch.randn(2, 5), 2, lambda r, c: torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        cascade_rerank(torch.randn(2, 5), 2, lambda r, c: torch.full(r.shape, float("nan")))


def test_cascade_rerank_top_k_always_outrank_the_rest():
    g = gen(13)
    N, M, k = 6, 9, 4
    coarse = torch.randn(N, M, generator=g)
    noise = torch.randn(N, M, generator=g)
    fine_fn = lambda r, c: -1000.0 + noise[r, c]  # noqa: E731, fusion hates everything it sees
    out = cascade_rerank(coarse, k, fine_fn)
    top = coarse.topk(k, dim=1).indices
    is_top = torch.zeros(N, M, dtype=torch.bool).scatter_(1, top, True)
    for i in range(N):
        assert out[i][is_top[i]].min() >= out[i][~is_top[i]].max() + 1.0 - 1e-9
        # order inside the top-k follows coarse + fine, order of the rest follows coarse
        assert torch.equal(
            out[i][is_top[i]].argsort(), (coarse[i] + noise[i])[is_top[i]].double().argsort()
        )
        assert torch.equal(out[i][~is_top[i]].argsort(), coarse[i][~is_top[i]].argsort())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cascade_on_cuda_matches_cpu():
    g = gen(14)
    B, n, k = 8, 5, 3
    sim, tok, mask = pair_inputs(B, n, g)
    ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
    a_cpu = pair_scores(sim, tok, mask)
    a_gpu = pair_scores(sim.cuda(), tok.cuda(), mask.cuda())
    torch.testing.assert_close(a_gpu.cpu(), a_cpu)
    for cpu, gpu in zip(hard_negatives(a_cpu, k, ids), hard_negatives(a_gpu, k, ids), strict=True):
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    r_cpu = random_negatives(B, k, generator=gen(1))
    r_gpu = random_negatives(B, k, generator=gen(1), device="cuda")
    assert r_gpu[0].device.type == "cuda" and torch.equal(r_gpu[0].cpu(), r_cpu[0])
    t_idx, v_idx = fusion_pairs(*r_gpu)
    assert t_idx.device.type == "cuda" and torch.equal(t_idx.cpu(), fusion_pairs(*r_cpu)[0])
    fine = lambda r, c: (r * 10 + c).float()  # noqa: E731
    torch.testing.assert_close(
        cascade_rerank(sim.cuda(), 3, fine).cpu(), cascade_rerank(sim, 3, fine)
    )
