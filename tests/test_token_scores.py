"""Tests for taco_lite.losses' token-video scores (Eq. 4's max over frames): the plain,
chunked and low-memory versions against loop twins, gradients, padding and bad input."""

from __future__ import annotations

import pytest
import torch

from taco_lite.losses import (
    token_nce,
    token_video_scores,
    token_video_scores_chunked,
    token_video_scores_lowmem,
)

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from helpers import ATOL, gen, naive, token_inputs, token_weights, video_mask
except ImportError:  # tests/ is a package
    from tests.helpers import ATOL, gen, naive, token_inputs, token_weights, video_mask


# ------------------------------------------------------------------ token_video_scores


def test_token_video_scores_matches_naive_with_padding():
    g = gen(3)
    B, n, m, d = 5, 4, 6, 3
    text, video, mask = token_inputs(B, n, m, d, g)
    video[~mask] = 100.0  # padded frames hold large values: they must never win the max
    got = token_video_scores(text, video, mask)
    assert got.shape == (B, n, B)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(
        got, naive.token_video_scores(text, video, mask).float(), atol=ATOL, rtol=0
    )


def test_token_video_scores_one_valid_frame_is_plain_dot():
    g = gen(4)
    text, video = torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, 2] = True  # every video has exactly frame 2
    got = token_video_scores(text, video, mask)
    want = torch.einsum("ipd,jd->ipj", text, video[:, 2])
    torch.testing.assert_close(got, want)


def test_token_video_scores_rectangular():
    g = gen(5)
    text, video = torch.randn(3, 2, 4, generator=g), torch.randn(5, 3, 4, generator=g)
    mask = video_mask(5, 3, g)
    got = token_video_scores(text, video, mask)
    assert got.shape == (3, 2, 5)
    torch.testing.assert_close(
        got, naive.token_video_scores(text, video, mask).float(), atol=ATOL, rtol=0
    )


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 100])
def test_token_video_scores_chunked_matches(chunk_size, dtype, tol):
    g = gen(6)
    B, n, m, d = 7, 5, 6, 64
    text, video, mask = token_inputs(B, n, m, d, g, dtype=dtype)
    full = token_video_scores(text, video, mask)
    chunked = token_video_scores_chunked(text, video, mask, chunk_size=chunk_size)
    assert chunked.shape == full.shape
    # equal up to the last-bit rounding of differently shaped GEMMs (see the docstring)
    torch.testing.assert_close(chunked, full, rtol=tol, atol=tol * d)


def test_token_video_scores_chunked_is_exact_when_chunks_cover_the_batch():
    g = gen(6)
    text, video = torch.randn(5, 3, 8, generator=g), torch.randn(5, 4, 8, generator=g)
    mask = video_mask(5, 4, g)
    full = token_video_scores(text, video, mask)
    assert torch.equal(token_video_scores_chunked(text, video, mask, chunk_size=5), full)
    assert torch.equal(token_video_scores_chunked(text, video, mask, chunk_size=64), full)


def test_token_video_scores_chunked_bad_chunk():
    g = gen(6)
    text, video = torch.randn(2, 2, 3, generator=g), torch.randn(2, 2, 3, generator=g)
    with pytest.raises(ValueError, match="chunk_size"):
        token_video_scores_chunked(text, video, torch.ones(2, 2, dtype=torch.bool), chunk_size=0)


def test_token_video_scores_gradcheck():
    g = gen(7)
    text = torch.randn(3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    # random float64 values: ties in the max have probability ~0, so the max is differentiable
    assert torch.autograd.gradcheck(lambda a, b: token_video_scores(a, b, mask), (text, video))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_token_video_scores_lowmem_gradcheck(chunk_size):
    """The custom backward (argmax frames only) against finite differences, in float64."""
    g = gen(7)
    text = torch.randn(3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(4, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    fn = lambda a, b: token_video_scores_lowmem(a, b, mask, chunk_size=chunk_size)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (text, video))


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_token_video_scores_lowmem_equals_the_vectorised_version(chunk_size):
    """Values identical to the chunked forward; gradients equal to the plain autograd ones."""
    g = gen(9)
    B, n, m, d = 7, 5, 6, 16
    text, video, mask = token_inputs(B, n, m, d, g, dtype=torch.float64, requires_grad=True)
    w = token_weights(B, n, g).double()
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
    g = gen(10)
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
    g = gen(8)
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
    g = gen(8)
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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_token_video_scores_lowmem_on_cuda_bounds_training_memory():
    """Issue 12: L2 fwd+bwd at B = 512 (n = 16, m = 32, d = 256) peaks <= 200 MB on the GPU."""
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    B, n, m, d = 512, 16, 32, 256
    text = torch.nn.functional.normalize(torch.randn(B, n, d, generator=g), dim=-1).to(dev)
    video = torch.nn.functional.normalize(torch.randn(B, m, d, generator=g), dim=-1).to(dev)
    text.requires_grad_(True)
    video.requires_grad_(True)
    mask = torch.ones(B, m, dtype=torch.bool, device=dev)
    w = (torch.rand(B, n, generator=g) < 0.3).float().to(dev)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    token_nce(token_video_scores_lowmem(text, video, mask, chunk_size=32), w, tau=0.07).backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    assert peak <= 200e6, f"peak {peak / 1e6:.0f} MB"
    low = (text.grad.clone(), video.grad.clone())
    text.grad = video.grad = None
    token_nce(token_video_scores(text, video, mask), w, tau=0.07).backward()
    torch.testing.assert_close(low[0], text.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(low[1], video.grad, rtol=1e-4, atol=1e-6)
