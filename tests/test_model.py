"""The three encoders (docs/method.md §1) and the configs that size them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from taco_lite.batch import synthetic_batch
from taco_lite.config import (
    PRESETS,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from taco_lite.model import TacoModel, count_parameters


def small_cfg(**kw) -> ModelConfig:
    base = dict(d=32, heads=4, vocab_size=20, frame_size=16, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def fused(model: TacoModel, batch) -> torch.Tensor:
    emb = model.embed(batch)
    return model.fuse(emb.text_tokens, batch.text_mask, emb.video_tokens, batch.video_mask)


# ------------------------------------------------------------------------------ shapes


def test_shapes_pixels():
    torch.manual_seed(0)
    model = TacoModel(small_cfg()).eval()
    batch = synthetic_batch(B=4, n=7, m=5, vocab_size=20, frame_size=16)
    emb = model.embed(batch)
    assert emb.text_tokens.shape == (4, 7, 32)
    assert emb.video_tokens.shape == (4, 5, 32)
    assert emb.text_global.shape == (4, 32)
    assert emb.video_global.shape == (4, 32)
    assert fused(model, batch).shape == (4,)


def test_shapes_features():
    torch.manual_seed(0)
    cfg = small_cfg(video_input="features", feature_dim=12, max_frames=48)
    model = TacoModel(cfg).eval()
    batch = synthetic_batch(B=3, n=6, m=40, vocab_size=20, feature_dim=12)
    assert model.encode_video(batch.frames, batch.video_mask).shape == (3, 40, 32)
    assert fused(model, batch).shape == (3,)


def test_fuse_scores_pairs_not_a_matrix():
    """fuse(A texts, A videos) -> A scores, one per row pair; A may differ from the batch."""
    torch.manual_seed(0)
    model = TacoModel(small_cfg()).eval()
    batch = synthetic_batch(B=4, vocab_size=20, frame_size=16)
    emb = model.embed(batch)
    ti = torch.tensor([0, 0, 1, 2, 3, 3])
    vi = torch.tensor([0, 1, 1, 0, 2, 3])
    logits = model.fuse(
        emb.text_tokens[ti], batch.text_mask[ti], emb.video_tokens[vi], batch.video_mask[vi]
    )
    assert logits.shape == (6,)
    one = model.fuse(
        emb.text_tokens[3:4], batch.text_mask[3:4], emb.video_tokens[2:3], batch.video_mask[2:3]
    )
    torch.testing.assert_close(logits[4:5], one, atol=1e-5, rtol=1e-5)


def test_global_video_is_masked_mean_and_global_text_is_cls():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = TacoModel.global_video(tokens, mask)
    torch.testing.assert_close(out, torch.stack([tokens[0, :2].mean(0), tokens[1, 0]]))
    torch.testing.assert_close(TacoModel.global_text(tokens), tokens[:, 0])


# ------------------------------------------------------------------------------ masks


def test_padding_never_changes_real_outputs():
    """Garbage in padded frames and [PAD] slots must not move any real token or the score."""
    torch.manual_seed(0)
    model = TacoModel(small_cfg()).eval()
    batch = synthetic_batch(B=4, n=7, m=5, vocab_size=20, frame_size=16, seed=3)
    assert not batch.video_mask.all() and not batch.text_mask.all()  # padding is exercised
    noisy = dataclasses.replace(batch)
    noisy.frames = torch.where(
        batch.video_mask[:, :, None, None, None], batch.frames, torch.rand_like(batch.frames)
    )
    noisy.text_ids = torch.where(
        batch.text_mask, batch.text_ids, torch.full_like(batch.text_ids, 9)
    )
    a, b = model.embed(batch), model.embed(noisy)
    for name in ("text_tokens", "video_tokens", "text_global", "video_global"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(fused(model, batch), fused(model, noisy), atol=1e-5, rtol=1e-5)
    # padded outputs are exactly zero
    assert (a.video_tokens[~batch.video_mask] == 0).all()
    assert (a.text_tokens[~batch.text_mask] == 0).all()


def test_extra_padding_columns_do_not_change_outputs():
    """Padding the whole batch further (a longer caption elsewhere) keeps every score."""
    torch.manual_seed(0)
    model = TacoModel(small_cfg()).eval()
    batch = synthetic_batch(B=3, n=6, m=4, vocab_size=20, frame_size=16, seed=1)
    wide = dataclasses.replace(batch)
    wide.text_ids = torch.cat([batch.text_ids, torch.zeros(3, 2, dtype=torch.long)], 1)
    wide.text_mask = torch.cat([batch.text_mask, torch.zeros(3, 2, dtype=torch.bool)], 1)
    wide.frames = torch.cat([batch.frames, torch.rand(3, 3, 3, 16, 16)], 1)
    wide.video_mask = torch.cat([batch.video_mask, torch.zeros(3, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(fused(model, batch), fused(model, wide), atol=1e-5, rtol=1e-5)


def test_real_tokens_do_change_outputs():
    """The other side of the mask test: the model is not blind to its real input."""
    torch.manual_seed(0)
    model = TacoModel(small_cfg()).eval()
    batch = synthetic_batch(B=2, vocab_size=20, frame_size=16)
    other = dataclasses.replace(batch)
    other.frames = batch.frames.clone()
    other.frames[:, 0] = torch.rand_like(other.frames[:, 0])
    assert not torch.allclose(model.embed(batch).video_global, model.embed(other).video_global)


def test_normalize_switch():
    torch.manual_seed(0)
    batch = synthetic_batch(B=3, vocab_size=20, frame_size=16)
    emb = TacoModel(small_cfg(normalize=True)).eval().embed(batch)
    torch.testing.assert_close(emb.text_global.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(emb.video_global.norm(dim=-1), torch.ones(3))
    raw = TacoModel(small_cfg(normalize=False, tau1=1.0, tau2=1.0)).eval().embed(batch)
    assert not torch.allclose(raw.text_global.norm(dim=-1), torch.ones(3))


# ------------------------------------------------------------------------------ bf16


def test_bf16_autocast_on_cpu_is_finite_and_trains():
    torch.manual_seed(0)
    model = TacoModel(small_cfg(dropout=0.1)).train()
    batch = synthetic_batch(B=4, vocab_size=20, frame_size=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = model.embed(batch)
        logits = model.fuse(emb.text_tokens, batch.text_mask, emb.video_tokens, batch.video_mask)
        loss = logits.float().pow(2).mean() + (emb.text_global @ emb.video_global.T).float().mean()
    assert torch.isfinite(logits.float()).all()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------------------ errors


def test_errors_speak_to_the_learner():
    model = TacoModel(small_cfg(max_frames=4))
    batch = synthetic_batch(B=2, n=5, m=5, vocab_size=20, frame_size=16)
    with pytest.raises(ValueError, match="max_frames=4"):
        model.encode_video(batch.frames, batch.video_mask)
    with pytest.raises(ValueError, match="vocab_size is 10"):
        TacoModel(small_cfg(vocab_size=10)).encode_text(
            torch.tensor([[2, 15, 3]]), torch.ones(1, 3, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="one bool"):
        model.encode_text(batch.text_ids, batch.text_mask[:, :3])
    with pytest.raises(ValueError, match="expects"):
        model.encode_video(batch.frames[:, :, 0, 0], batch.video_mask)  # features to a CNN


def test_default_model_fits_a_small_checkpoint():
    mcfg, _ = PRESETS["default"].configs()
    mcfg.vocab_size = 1000
    assert count_parameters(TacoModel(mcfg)) * 4 < 5 * 2**20  # float32 weights under 5 MB


# ------------------------------------------------------------------------------ configs


def test_config_validation():
    with pytest.raises(ValueError, match="losses is 'L2'"):
        TrainConfig(losses="L2")
    with pytest.raises(ValueError, match="only 7 negatives"):
        TrainConfig(batch_size=8, k_neg=8)
    TrainConfig(batch_size=8, k_neg=8, losses="L1")  # no L3, no negatives needed
    with pytest.raises(ValueError, match="device is 'gpu'"):
        TrainConfig(device="gpu")
    with pytest.raises(ValueError, match="negatives is"):
        TrainConfig(negatives="hard")
    with pytest.raises(ValueError, match="feature_dim"):
        ModelConfig(video_input="features")
    with pytest.raises(ValueError, match="multiple of heads"):
        ModelConfig(d=30, heads=4)
    with pytest.raises(ValueError, match="temperatures"):
        ModelConfig(tau1=0.0)


def test_config_dict_round_trip():
    mcfg, tcfg = PRESETS["sweep"].configs()
    for cfg in (mcfg, tcfg):
        data = config_to_dict(cfg)
        assert all(isinstance(v, (int, float, str, bool, type(None))) for v in data.values())
        assert config_from_dict(type(cfg), data) == cfg
    with pytest.raises(ValueError, match="no field"):
        config_from_dict(ModelConfig, {**config_to_dict(mcfg), "width": 3})


def test_presets_are_valid_and_independent_copies():
    assert set(PRESETS) == {"fast", "sweep", "default", "gpu"}
    m1, t1 = PRESETS["fast"].configs()
    t1.steps = 1
    assert PRESETS["fast"].train.steps != 1
    assert PRESETS["gpu"].train.amp and PRESETS["gpu"].train.compile


# ------------------------------------------------------------------ fusion attention


@pytest.mark.parametrize("train_mode", [False, True])
def test_return_attention_keeps_the_scores_and_gives_row_stochastic_maps(train_mode):
    """fuse(..., return_attention=True) runs the same layers: the same s3, plus the weights."""
    torch.manual_seed(0)
    cfg = small_cfg(fusion_layers=2, heads=4)
    model = TacoModel(cfg).train(train_mode)  # dropout=0, so train mode is deterministic too
    batch = synthetic_batch(B=4, n=7, m=5, vocab_size=20, frame_size=16, seed=3)
    assert not batch.video_mask.all() and not batch.text_mask.all()  # padding is exercised
    emb = model.embed(batch)
    args = (emb.text_tokens, batch.text_mask, emb.video_tokens, batch.video_mask)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            plain = model.fuse(*args)
            scores, att = model.fuse(*args, return_attention=True)
        torch.testing.assert_close(scores, plain, atol=1e-6, rtol=1e-6)
    n, m = 7, 5
    assert att.shape == (2, 4, 4, n + m, n + m)  # (layers, A, heads, n + m, n + m)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, 4, n + m))
    keys = torch.cat([batch.text_mask, batch.video_mask], 1)  # (A, n + m)
    padded_keys = ~keys[None, :, None, None, :].expand_as(att)  # (layers, A, heads, L, L)
    assert (att[padded_keys] == 0).all()  # padded keys get no attention
    # the first layer's weights are softmax(q k^T / sqrt(d_head)) of its own projections
    block = model.fusion.layers.layers[0]
    y = emb.text_tokens + model.fusion.type_embed[0] + model.fusion.text_pos[:n]
    x = emb.video_tokens + model.fusion.type_embed[1] + model.fusion.video_pos[:m]
    h = block.norm1(torch.cat([y, x], 1))  # (A, L, d)
    q, k, _ = F_linear_qkv(block.self_attn, h)  # (A, heads, L, d_head) each
    logits = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)  # (A, heads, L, L)
    want = logits.masked_fill(~keys[:, None, None, :], float("-inf")).softmax(-1)
    torch.testing.assert_close(att[0].detach(), want.detach(), atol=1e-5, rtol=1e-5)


def F_linear_qkv(mha: torch.nn.MultiheadAttention, h: torch.Tensor):
    A, L, d = h.shape
    qkv = torch.nn.functional.linear(h, mha.in_proj_weight, mha.in_proj_bias)  # (A, L, 3d)
    H = mha.num_heads
    return [t.reshape(A, L, H, d // H).transpose(1, 2) for t in qkv.chunk(3, dim=-1)]


def test_return_attention_without_fusion_layers_is_empty():
    model = TacoModel(small_cfg(fusion_layers=0)).eval()
    batch = synthetic_batch(B=2, n=5, m=4, vocab_size=20, frame_size=16, seed=1)
    emb = model.embed(batch)
    scores, att = model.fuse(
        emb.text_tokens, batch.text_mask, emb.video_tokens, batch.video_mask, return_attention=True
    )
    assert scores.shape == (2,) and att.shape == (0, 2, 4, 9, 9)
