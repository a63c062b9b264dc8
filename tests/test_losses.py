"""Tests for taco_lite.losses: L1, token scores, L2, L3 against loop twins, grads, edge cases."""

from __future__ import annotations

import pytest
import torch

from taco_lite.losses import (
    fusion_nce,
    sentence_nce,
    token_nce,
    token_video_scores,
    token_video_scores_chunked,
    token_video_scores_lowmem,
)

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    import naive
except ImportError:  # tests/ is a package
    from tests import naive

ATOL = 1e-5


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _video_mask(B: int, m: int, g: torch.Generator) -> torch.Tensor:
    """Random lengths in [1, m], video 0 full and video 1 a single frame (mostly padding)."""
    lengths = torch.randint(1, m + 1, (B,), generator=g)
    lengths[0] = m
    lengths[1] = 1
    return torch.arange(m)[None, :] < lengths[:, None]  # (B, m)


def _token_weights(B: int, n: int, g: torch.Generator) -> torch.Tensor:
    """idf-like weights: rows sum to 1, text 1 has no token of interest, some tokens are 0."""
    w = torch.rand(B, n, generator=g) * (torch.rand(B, n, generator=g) < 0.6)
    w[:, 0] = 0.0  # [CLS]
    w[0, 1] = 0.7  # text 0 surely has a token
    w[1] = 0.0  # a text without tokens of interest
    return w / w.sum(1, keepdim=True).clamp_min(1e-12)


# ---------------------------------------------------------------------------- L1 sentence_nce


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_sentence_nce_matches_naive(symmetric, tau):
    g = _gen(1)
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
    g = _gen(2)
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


# ------------------------------------------------------------------ token_video_scores


def test_token_video_scores_matches_naive_with_padding():
    g = _gen(3)
    B, n, m, d = 5, 4, 6, 3
    text = torch.randn(B, n, d, generator=g)
    video = torch.randn(B, m, d, generator=g)
    mask = _video_mask(B, m, g)
    video[~mask] = 100.0  # padded frames hold large values: they must never win the max
    got = token_video_scores(text, video, mask)
    assert got.shape == (B, n, B)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(
        got, naive.token_video_scores(text, video, mask).float(), atol=ATOL, rtol=0
    )


def test_token_video_scores_one_valid_frame_is_plain_dot():
    g = _gen(4)
    text, video = torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, 2] = True  # every video has exactly frame 2
    got = token_video_scores(text, video, mask)
    want = torch.einsum("ipd,jd->ipj", text, video[:, 2])
    torch.testing.assert_close(got, want)


def test_token_video_scores_rectangular():
    g = _gen(5)
    text, video = torch.randn(3, 2, 4, generator=g), torch.randn(5, 3, 4, generator=g)
    mask = _video_mask(5, 3, g)
    got = token_video_scores(text, video, mask)
    assert got.shape == (3, 2, 5)
    torch.testing.assert_close(
        got, naive.token_video_scores(text, video, mask).float(), atol=ATOL, rtol=0
    )


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 100])
def test_token_video_scores_chunked_matches(chunk_size, dtype, tol):
    g = _gen(6)
    B, n, m, d = 7, 5, 6, 64
    text = torch.randn(B, n, d, generator=g, dtype=dtype)
    video = torch.randn(B, m, d, generator=g, dtype=dtype)
    mask = _video_mask(B, m, g)
    full = token_video_scores(text, video, mask)
    chunked = token_video_scores_chunked(text, video, mask, chunk_size=chunk_size)
    assert chunked.shape == full.shape
    # equal up to the last-bit rounding of differently shaped GEMMs (see the docstring)
    torch.testing.assert_close(chunked, full, rtol=tol, atol=tol * d)


def test_token_video_scores_chunked_is_exact_when_chunks_cover_the_batch():
    g = _gen(6)
    text, video = torch.randn(5, 3, 8, generator=g), torch.randn(5, 4, 8, generator=g)
    mask = _video_mask(5, 4, g)
    full = token_video_scores(text, video, mask)
    assert torch.equal(token_video_scores_chunked(text, video, mask, chunk_size=5), full)
    assert torch.equal(token_video_scores_chunked(text, video, mask, chunk_size=64), full)


def test_token_video_scores_chunked_bad_chunk():
    g = _gen(6)
    text, video = torch.randn(2, 2, 3, generator=g), torch.randn(2, 2, 3, generator=g)
    with pytest.raises(ValueError, match="chunk_size"):
        token_video_scores_chunked(text, video, torch.ones(2, 2, dtype=torch.bool), chunk_size=0)


def test_token_video_scores_gradcheck():
    g = _gen(7)
    text = torch.randn(3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    # random float64 values: ties in the max have probability ~0, so the max is differentiable
    assert torch.autograd.gradcheck(lambda a, b: token_video_scores(a, b, mask), (text, video))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_token_video_scores_lowmem_gradcheck(chunk_size):
    """The custom backward (argmax frames only) against finite differences, in float64."""
    g = _gen(7)
    text = torch.randn(3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(4, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    fn = lambda a, b: token_video_scores_lowmem(a, b, mask, chunk_size=chunk_size)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (text, video))


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_token_video_scores_lowmem_equals_the_vectorised_version(chunk_size):
    """Values identical to the chunked forward; gradients equal to the plain autograd ones."""
    g = _gen(9)
    B, n, m, d = 7, 5, 6, 16
    text = torch.randn(B, n, d, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(B, m, d, generator=g, dtype=torch.float64, requires_grad=True)
    mask = _video_mask(B, m, g)
    w = _token_weights(B, n, g).double()
    low = token_video_scores_lowmem(text, video, mask, chunk_size=chunk_size)  # (B, n, B)
    assert torch.equal(low, token_video_scores_chunked(text, video, mask, chunk_size=chunk_size))
    full = token_video_scores(text, video, mask)  # (B, n, B)
    torch.testing.assert_close(low, full, rtol=1e-14, atol=1e-13)
    got = torch.autograd.grad(token_nce(low, w, tau=0.1), (text, video))
    want = torch.autograd.grad(token_nce(full, w, tau=0.1), (text, video))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert video.grad is None  # autograd.grad, not backward: nothing accumulated


def test_token_video_scores_lowmem_saves_only_frame_indices():
    """What autograd keeps for the backward: the inputs and a (B, n, B) index, no (B, n, B, m)."""
    g = _gen(10)
    B, n, m, d = 6, 3, 40, 8
    text = torch.randn(B, n, d, generator=g, requires_grad=True)
    video = torch.randn(B, m, d, generator=g, requires_grad=True)
    out = token_video_scores_lowmem(text, video, torch.ones(B, m, dtype=torch.bool), 2)
    saved = out.grad_fn.saved_tensors
    assert [tuple(t.shape) for t in saved] == [(B, n, d), (B, m, d), (B, n, B)]
    assert saved[2].dtype == torch.int16 and int(saved[2].max()) < m
    with pytest.raises(ValueError, match="chunk_size"):
        token_video_scores_lowmem(text, video, torch.ones(B, m, dtype=torch.bool), chunk_size=0)


def test_token_video_scores_lowmem_padded_frames_get_no_gradient_and_autocast():
    g = _gen(8)
    text = torch.randn(4, 3, 8, generator=g, requires_grad=True)
    video = torch.randn(4, 3, 8, generator=g, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = token_video_scores_lowmem(text, video, mask, chunk_size=3)  # (4, 3, 4)
        assert s.dtype == torch.bfloat16  # autocast did act on the einsum
        token_nce(s, torch.ones(4, 3), tau=0.1).backward()
    assert text.grad.dtype == torch.float32 and video.grad.dtype == torch.float32
    assert (video.grad[~mask] == 0).all() and video.grad[mask].abs().sum() > 0


def test_token_video_scores_padded_frames_get_no_gradient():
    g = _gen(8)
    text = torch.randn(2, 3, 4, generator=g)
    video = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    token_video_scores(text, video, mask).sum().backward()
    assert (video.grad[~mask] == 0).all()
    assert video.grad[mask].abs().sum() > 0


def test_token_video_scores_empty_video_raises():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    with pytest.raises(ValueError, match=r"video\(s\) \[1\] have no valid frame"):
        token_video_scores(torch.randn(2, 3, 4), torch.randn(2, 3, 4), mask)


@pytest.mark.parametrize(
    "t_shape, v_shape, mask_shape, match",
    [
        ((2, 3, 4), (2, 5, 6), (2, 5), r"\(2, 3, 4\).*\(2, 5, 6\)"),
        ((2, 3, 4), (2, 5, 4), (2, 4), r"video_mask has shape \(2, 4\).*\(2, 5, 4\)"),
        ((2, 4), (2, 5, 4), (2, 5), r"3-D \(B, n, d\).*\(2, 4\)"),
    ],
)
def test_token_video_scores_bad_shapes(t_shape, v_shape, mask_shape, match):
    with pytest.raises(ValueError, match=match):
        token_video_scores(
            torch.randn(t_shape), torch.randn(v_shape), torch.ones(mask_shape, dtype=torch.bool)
        )


def test_token_video_scores_mask_must_be_bool():
    with pytest.raises(ValueError, match="bool"):
        token_video_scores(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.ones(2, 5))


# ---------------------------------------------------------------------------- L2 token_nce


@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_token_nce_matches_naive(tau):
    g = _gen(9)
    B, n = 6, 7
    scores = torch.randn(B, n, B, generator=g)
    w = _token_weights(B, n, g)
    got = token_nce(scores, w, tau=tau)
    assert got.item() == pytest.approx(naive.token_nce(scores, w, tau=tau), abs=ATOL, rel=1e-5)


def test_token_nce_text_without_tokens_adds_nothing():
    g = _gen(10)
    B, n = 4, 5
    scores = torch.randn(B, n, B, generator=g)
    w = _token_weights(B, n, g)
    assert (w[1] == 0).all()
    scores2 = scores.clone()
    scores2[1] = torch.randn(n, B, generator=g) * 50  # text 1's scores change...
    assert token_nce(scores, w).item() == token_nce(scores2, w).item()  # ...nothing moves
    # and the denominator counts texts with tokens only (3 of 4), as the naive twin does
    assert token_nce(scores, w).item() == pytest.approx(naive.token_nce(scores, w), abs=ATOL)


def test_token_nce_padding_may_hold_inf():
    g = _gen(11)
    B, n = 4, 6
    scores = torch.randn(B, n, B, generator=g)
    w = _token_weights(B, n, g)
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
    g = _gen(12)
    B, n = 3, 4
    scores = torch.randn(B, n, B, generator=g, dtype=torch.float64, requires_grad=True)
    w = _token_weights(B, n, g).double()  # with zeros: a zero weight switches a token off
    assert torch.autograd.gradcheck(lambda s: token_nce(s, w, tau=0.5), (scores,))
    # in the weights L2 is linear wherever no weight crosses 0, so check it with w > 0
    w_pos = (torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda ww: token_nce(scores.detach(), ww), (w_pos,))


def test_token_nce_end_to_end_from_encoder_outputs():
    """Padded frames (one-frame clip) and padded tokens, through token_video_scores: no NaN."""
    g = _gen(13)
    B, n, m, d = 5, 6, 7, 8
    text = torch.randn(B, n, d, generator=g, requires_grad=True)
    video = torch.randn(B, m, d, generator=g, requires_grad=True)
    mask = _video_mask(B, m, g)
    w = _token_weights(B, n, g)
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
    g = _gen(14)
    logits = torch.randn(10, 4, generator=g) * 3
    assert fusion_nce(logits).item() == pytest.approx(naive.fusion_nce(logits), abs=ATOL)


def test_fusion_nce_positive_is_column_zero():
    good = torch.tensor([[10.0, 0.0, 0.0]])
    bad = torch.tensor([[0.0, 10.0, 0.0]])
    assert fusion_nce(good).item() < 1e-3
    assert fusion_nce(bad).item() > 9.0


def test_fusion_nce_gradcheck():
    logits = torch.randn(4, 3, generator=_gen(15), dtype=torch.float64, requires_grad=True)
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
    g = _gen(16)
    B, n, m, d = 8, 6, 5, 16
    tg = torch.nn.functional.normalize(torch.randn(B, d, generator=g), dim=-1)
    vg = torch.nn.functional.normalize(torch.randn(B, d, generator=g), dim=-1)
    tt = torch.nn.functional.normalize(torch.randn(B, n, d, generator=g), dim=-1)
    vt = torch.nn.functional.normalize(torch.randn(B, m, d, generator=g), dim=-1)
    mask = _video_mask(B, m, g)
    w = _token_weights(B, n, g)
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
    g = _gen(17)
    B, n, m, d = 6, 5, 4, 8
    args = dict(
        tg=torch.randn(B, d, generator=g),
        vg=torch.randn(B, d, generator=g),
        tt=torch.randn(B, n, d, generator=g),
        vt=torch.randn(B, m, d, generator=g),
    )
    mask, w, logits = (
        _video_mask(B, m, g),
        _token_weights(B, n, g),
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
    g = _gen(18)
    mask = _video_mask(B, m, g)
    w = _token_weights(B, n, g)
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
