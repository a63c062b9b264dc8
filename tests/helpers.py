"""Random inputs shared by the maths tests (test_losses, test_token_scores, test_cascade).

Every builder takes a `torch.Generator` and draws in a fixed order, so a test's inputs depend
only on its seed. `naive` (the loop twins) is re-exported so that a test needs one import:

    try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
        from helpers import ATOL, gen, naive
    except ImportError:  # tests/ is a package
        from tests.helpers import ATOL, gen, naive
"""

from __future__ import annotations

import torch

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    import naive
except ImportError:  # tests/ is a package
    from tests import naive

__all__ = ["ATOL", "gen", "naive", "pair_inputs", "token_inputs", "token_weights", "video_mask"]

ATOL = 1e-5  # vectorised vs naive loop twins, float32


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def video_mask(B: int, m: int, g: torch.Generator) -> torch.Tensor:
    """Random lengths in [1, m], video 0 full and video 1 a single frame (mostly padding)."""
    lengths = torch.randint(1, m + 1, (B,), generator=g)
    lengths[0] = m
    lengths[1] = 1
    return torch.arange(m)[None, :] < lengths[:, None]  # (B, m)


def token_weights(B: int, n: int, g: torch.Generator) -> torch.Tensor:
    """idf-like weights: rows sum to 1, text 1 has no token of interest, some tokens are 0."""
    w = torch.rand(B, n, generator=g) * (torch.rand(B, n, generator=g) < 0.6)
    w[:, 0] = 0.0  # [CLS]
    w[0, 1] = 0.7  # text 0 surely has a token
    w[1] = 0.0  # a text without tokens of interest
    return w / w.sum(1, keepdim=True).clamp_min(1e-12)  # (B, n)


def token_inputs(
    B: int,
    n: int,
    m: int,
    d: int,
    g: torch.Generator,
    dtype: torch.dtype = torch.float32,
    requires_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder outputs for Eq. 4: text (B, n, d), video (B, m, d) and `video_mask` (B, m)."""
    text = torch.randn(B, n, d, generator=g, dtype=dtype, requires_grad=requires_grad)
    video = torch.randn(B, m, d, generator=g, dtype=dtype, requires_grad=requires_grad)
    return text, video, video_mask(B, m, g)


def pair_inputs(B: int, n: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Cascade sampling inputs: s1 (B, B), token scores (B, n, B), token mask (B, n)."""
    sim = torch.randn(B, B, generator=g)
    tok = torch.randn(B, n, B, generator=g)
    return sim, tok, torch.rand(B, n, generator=g) < 0.5
