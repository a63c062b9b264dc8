"""Tests for taco_lite.losses: L1, L2, L3 against loop twins, grads, edge cases, overfitting.

The token-video scores of Eq. 4 (plain, chunked, low-memory) are in test_token_scores.py."""

from __future__ import annotations

import pytest
import torch

from taco_lite.losses import fusion_nce, sentence_nce, token_nce, token_video_scores

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from helpers import ATOL, gen, naive, token_inputs, token_weights, video_mask
except ImportError:  # tests/ is a package
    from tests.helpers import ATOL, gen, naive, token_inputs, token_weights, video_mask


# ---------------------------------------------------------------------------- L1 sentence_nce


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_sentence_nce_matches_naive(symmetric, tau):
    g = gen(1)
    t, v = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    got = sentence_nce(t, v, tau=tau, symmetric=symmetric)
    want = naive.sentence_nce(t, v, tau=tau, symmetric=symmetric)
    assert got.shape == ()
    assert got.item() == pytest.approx(want, abs=ATOL, rel=1e-5)


def test_sentence_nce_is_text_to_video_by_default():
    # Video 0 is close to every text: text-to-video rows differ from video-to-text columns.
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    v = torch.tensor([[3.0, 3.0], [0.0, 1.0], [1.0, 0.0]])
    one_way = sentence_nce(t, v)
    both = sentence_nce(t, v, symmetric=True)
    assert one_way.item() == pytest.approx(naive.sentence_nce(t, v), abs=ATOL)
    assert abs(one_way.item() - both.item()) > 1e-3


@pytest.mark.parametrize("symmetric", [False, True])
def test_sentence_nce_gradcheck(symmetric):
    g = gen(2)
    t = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    # float64 end to end: the loss must not squeeze the gradient through float32
    assert torch.autograd.gradcheck(
        lambda a, b: sentence_nce(a, b, tau=0.7, symmetric=symmetric), (t, v)
    )


def test_sentence_nce_single_pair_is_zero():
    loss = sentence_nce(torch.randn(1, 4), torch.randn(1, 4))
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    "t_shape, v_shape, match",
    [
        ((4, 8), (5, 8), r"\(4, 8\).*\(5, 8\)"),
        ((4, 8), (4, 6), r"\(4, 8\).*\(4, 6\)"),
        ((4, 3, 8), (4, 8), r"2-D \(B, d\).*\(4, 3, 8\)"),
    ],
)
def test_sentence_nce_bad_shapes(t_shape, v_shape, match):
    with pytest.raises(ValueError, match=match):
        sentence_nce(torch.randn(t_shape), torch.randn(v_shape))


def test_sentence_nce_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        sentence_nce(torch.randn(3, 2), torch.randn(3, 2), tau=0.0)


# ---------------------------------------------------------------------------- L2 token_nce


@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_token_nce_matches_naive(tau):
    g = gen(9)
    B, n = 6, 7
    scores = torch.randn(B, n, B, generator=g)
    w = token_weights(B, n, g)
    got = token_nce(scores, w, tau=tau)
    assert got.item() == pytest.approx(naive.token_nce(scores, w, tau=tau), abs=ATOL, rel=1e-5)


def test_token_nce_text_without_tokens_adds_nothing():
    g = gen(10)
    B, n = 4, 5
    scores = torch.randn(B, n, B, generator=g)
    w = token_weights(B, n, g)
    assert (w[1] == 0).all()
    scores2 = scores.clone()
    scores2[1] = torch.randn(n, B, generator=g) * 50  # text 1's scores change...
    assert token_nce(scores, w).item() == token_nce(scores2, w).item()  # ...nothing moves
    # and the denominator counts texts with tokens only (3 of 4), as the naive twin does
    assert token_nce(scores, w).item() == pytest.approx(naive.token_nce(scores, w), abs=ATOL)


def test_token_nce_padding_may_hold_inf():
    g = gen(11)
    B, n = 4, 6
    scores = torch.randn(B, n, B, generator=g)
    w = token_weights(B, n, g)
    clean = token_nce(scores, w)
    dirty = scores.clone().requires_grad_(False)
    dirty[w == 0] = float("inf")
    dirty[:, 0, :] = float("-inf")  # [CLS] row, weight 0
    dirty = dirty.requires_grad_(True)
    loss = token_nce(dirty, w)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(clean.item(), abs=1e-6)
    loss.backward()
    assert torch.isfinite(dirty.grad).all()
    assert (dirty.grad[w == 0] == 0).all()


def test_token_nce_no_tokens_at_all_is_connected_zero():
    scores = torch.randn(3, 4, 3, requires_grad=True)
    w = torch.zeros(3, 4, requires_grad=True)
    loss = token_nce(scores, w)
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_token_nce_gradcheck():
    g = gen(12)
    B, n = 3, 4
    scores = torch.randn(B, n, B, generator=g, dtype=torch.float64, requires_grad=True)
    w = token_weights(B, n, g).double()  # with zeros: a zero weight switches a token off
    assert torch.autograd.gradcheck(lambda s: token_nce(s, w, tau=0.5), (scores,))
    # in the weights L2 is linear wherever no weight crosses 0, so check it with w > 0
    w_pos = (torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda ww: token_nce(scores.detach(), ww), (w_pos,))


def test_token_nce_end_to_end_from_encoder_outputs():
    """Padded frames (one-frame clip) and padded tokens, through token_video_scores: no NaN."""
    g = gen(13)
    B, n, m, d = 5, 6, 7, 8
    text, video, mask = token_inputs(B, n, m, d, g, requires_grad=True)
    w = token_weights(B, n, g)
    loss = token_nce(token_video_scores(text, video, mask), w, tau=0.1)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(text.grad).all() and torch.isfinite(video.grad).all()


def test_token_nce_bad_weight_shape_message():
    with pytest.raises(
        ValueError,
        match=r"token_weights has shape \(4, 7\) but token_scores is \(4, 9, 4\): "
        r"weights need one entry per token",
    ):
        token_nce(torch.randn(4, 9, 4), torch.rand(4, 7))


def test_token_nce_needs_square_scores():
    with pytest.raises(ValueError, match=r"\(4, 9, 5\).*\(B, n, B\)"):
        token_nce(torch.randn(4, 9, 5), torch.rand(4, 9))


def test_token_nce_rejects_negative_weights():
    w = torch.rand(3, 4)
    w[0, 1] = -0.5
    with pytest.raises(ValueError, match=">= 0"):
        token_nce(torch.randn(3, 4, 3), w)


def test_token_nce_rejects_inf_on_weighted_token():
    s = torch.randn(3, 4, 3)
    s[0, 1, 2] = float("inf")
    w = torch.zeros(3, 4)
    w[0, 1] = 1.0
    with pytest.raises(ValueError, match="nonzero weight"):
        token_nce(s, w)


# ---------------------------------------------------------------------------- L3 fusion_nce


def test_fusion_nce_matches_naive():
    g = gen(14)
    logits = torch.randn(10, 4, generator=g) * 3
    assert fusion_nce(logits).item() == pytest.approx(naive.fusion_nce(logits), abs=ATOL)


def test_fusion_nce_positive_is_column_zero():
    good = torch.tensor([[10.0, 0.0, 0.0]])
    bad = torch.tensor([[0.0, 10.0, 0.0]])
    assert fusion_nce(good).item() < 1e-3
    assert fusion_nce(bad).item() > 9.0


def test_fusion_nce_gradcheck():
    logits = torch.randn(4, 3, generator=gen(15), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fusion_nce, (logits,))


@pytest.mark.parametrize(
    "shape, match", [((8,), r"2-D \(A, 1 \+ k\).*\(8,\)"), ((8, 1), r"\(8, 1\).*k >= 1")]
)
def test_fusion_nce_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        fusion_nce(torch.randn(shape))


def test_fusion_nce_nan_raises():
    with pytest.raises(ValueError, match="NaN"):
        fusion_nce(torch.tensor([[1.0, float("nan")]]))


# ---------------------------------------------------------------------------- bf16 autocast


def test_losses_under_bf16_autocast_close_to_float32():
    g = gen(16)
    B, n, m, d = 8, 6, 5, 16
    tg = torch.nn.functional.normalize(torch.randn(B, d, generator=g), dim=-1)
    vg = torch.nn.functional.normalize(torch.randn(B, d, generator=g), dim=-1)
    tt = torch.nn.functional.normalize(torch.randn(B, n, d, generator=g), dim=-1)
    vt = torch.nn.functional.normalize(torch.randn(B, m, d, generator=g), dim=-1)
    mask = video_mask(B, m, g)
    w = token_weights(B, n, g)
    logits = torch.randn(2 * B, 9, generator=g)

    def all_losses():
        return [
            sentence_nce(tg, vg, tau=0.1),
            sentence_nce(tg, vg, tau=0.1, symmetric=True),
            token_nce(token_video_scores(tt, vt, mask), w, tau=0.1),
            fusion_nce(logits),
        ]

    ref = all_losses()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = all_losses()
        assert token_video_scores(tt, vt, mask).dtype == torch.bfloat16  # autocast did act
    for r, lo in zip(ref, low, strict=True):
        assert lo.dtype == torch.float32
        assert torch.isfinite(lo)
        assert lo.item() == pytest.approx(r.item(), rel=5e-2)


# ---------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_losses_on_cuda_match_cpu():
    g = gen(17)
    B, n, m, d = 6, 5, 4, 8
    args = dict(
        tg=torch.randn(B, d, generator=g),
        vg=torch.randn(B, d, generator=g),
        tt=torch.randn(B, n, d, generator=g),
        vt=torch.randn(B, m, d, generator=g),
    )
    mask, w, logits = (
        video_mask(B, m, g),
        token_weights(B, n, g),
        torch.randn(2 * B, 4, generator=g),
    )

    def run(dev):
        a = {k: v.to(dev) for k, v in args.items()}
        s = token_video_scores(a["tt"], a["vt"], mask.to(dev))
        return [
            sentence_nce(a["tg"], a["vg"], symmetric=True),
            token_nce(s, w.to(dev)),
            fusion_nce(logits.to(dev)),
        ]

    for c, gpu in zip(run("cpu"), run("cuda"), strict=True):
        assert gpu.device.type == "cuda"
        assert gpu.item() == pytest.approx(c.item(), rel=1e-3, abs=1e-4)


# ---------------------------------------------------------------------------- overfit


def test_overfit_drives_all_three_losses_to_zero():
    """Free embeddings + a tiny bilinear fusion stand-in: each loss must reach ~0 (its minimum).

    The CS231n "overfit a tiny batch" check: if a loss had the wrong sign, the wrong positive
    index or a broken mask, Adam could not drive it to 0.
    """
    torch.manual_seed(0)
    B, n, m, d, tau = 8, 5, 4, 16, 0.1
    g = gen(18)
    mask = video_mask(B, m, g)
    w = token_weights(B, n, g)
    w[1, 2] = 1.0  # give every text a token so that L2 covers the whole batch
    text_global = torch.nn.Parameter(torch.randn(B, d))
    video_global = torch.nn.Parameter(torch.randn(B, d))
    text_tokens = torch.nn.Parameter(torch.randn(B, n, d))
    video_tokens = torch.nn.Parameter(torch.randn(B, m, d))
    fusion = torch.nn.Bilinear(d, d, 1)  # s3(i, j) = t_i^T W v_j + b, stand-in for f_m
    opt = torch.optim.Adam(
        [text_global, video_global, text_tokens, video_tokens, *fusion.parameters()], lr=0.05
    )
    vft = torch.stack([torch.roll(torch.arange(B), -s) for s in (1, 2, 3)], dim=1)  # (B, 3)

    def losses():
        norm = torch.nn.functional.normalize
        l1 = sentence_nce(norm(text_global, dim=-1), norm(video_global, dim=-1), tau=tau)
        s = token_video_scores(norm(text_tokens, dim=-1), norm(video_tokens, dim=-1), mask)
        l2 = token_nce(s, w, tau=tau)
        # L3 over text anchors and video anchors, positive in column 0
        t_idx = torch.cat(
            [torch.arange(B)[:, None].expand(B, 4), torch.cat([torch.arange(B)[:, None], vft], 1)]
        )
        v_idx = torch.cat(
            [torch.cat([torch.arange(B)[:, None], vft], 1), torch.arange(B)[:, None].expand(B, 4)]
        )
        logits = fusion(text_global[t_idx.reshape(-1)], video_global[v_idx.reshape(-1)])
        l3 = fusion_nce(logits.view(2 * B, 4))
        return l1, l2, l3

    start = [x.item() for x in losses()]
    for _ in range(200):
        opt.zero_grad()
        sum(losses()).backward()
        opt.step()
    end = [x.item() for x in losses()]
    assert all(s > 0.5 for s in start), start  # the test starts far from the minimum
    assert all(e < 0.05 for e in end), end
