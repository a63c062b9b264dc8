"""The val study's controlled changes: false-negative mask, detached L2 inputs, detached fusion."""

from __future__ import annotations

import torch

from taco_lite.config import ModelConfig
from taco_lite.losses import token_nce, token_video_scores
from taco_lite.model import TacoModel
from taco_lite.sweep.val_study import (
    MASKED_SCORE,
    _fuse_detached,
    _LastBatch,
    false_negative_mask,
    loss_fns,
)


def test_false_negative_mask_by_hand():
    # 0 = [PAD]; texts: [5 6], [6 7], [8 5]
    ids = torch.tensor([[5, 6], [6, 7], [8, 5]])
    mask = false_negative_mask(ids)
    assert mask.shape == (3, 2, 3)
    assert mask[0, 0].tolist() == [False, False, True]  # word 5 is also in text 2
    assert mask[0, 1].tolist() == [False, True, False]  # word 6 is also in text 1
    assert mask[1, 1].tolist() == [False, False, False]  # word 7 only in its own text
    assert not mask[torch.arange(3), :, torch.arange(3)].any()  # positives never masked


def test_fn_mask_removes_exactly_the_masked_negatives():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 2, 3, generator=g)
    weights = torch.ones(3, 2)
    ids = torch.tensor([[5, 6], [6, 7], [8, 5]])
    last = _LastBatch()
    last.text_ids = ids
    got = loss_fns("fn-mask", last).token_nce(scores, weights, tau=0.5)
    want = token_nce(scores.masked_fill(false_negative_mask(ids), MASKED_SCORE), weights, 0.5)
    assert torch.allclose(got, want) and not torch.allclose(got, token_nce(scores, weights, 0.5))
    assert last.calls == 1 and 0 < last.masked < 1


def test_detached_inputs_stop_l2_gradients():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(4, 5, 8, generator=g, requires_grad=True)
    v = torch.randn(4, 3, 8, generator=g, requires_grad=True)
    vm = torch.ones(4, 3, dtype=torch.bool)
    for mode, text_grad, video_grad in [
        ("detach-text", False, True),
        ("detach-video", True, False),
    ]:
        t.grad = v.grad = None
        scores = loss_fns(mode, _LastBatch()).token_video_scores(t, v, vm)
        assert torch.equal(scores, token_video_scores(t, v, vm))
        token_nce(scores, torch.ones(4, 5)).backward()
        assert (t.grad is not None) == text_grad and (v.grad is not None) == video_grad


def test_fuse_detached_trains_only_the_fusion_head():
    model = TacoModel(ModelConfig(d=8, heads=2, vocab_size=10))
    text = torch.randn(2, 4, 8, requires_grad=True)
    video = torch.randn(2, 3, 8, requires_grad=True)
    tm, vm = torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)
    with _fuse_detached(True):
        model.fuse(text, tm, video, vm).sum().backward()
    assert text.grad is None and video.grad is None
    model.fuse(text, tm, video, vm).sum().backward()  # restored afterwards
    assert text.grad is not None


def test_eval_every_splits_the_run_exactly_and_logs_a_curve(tmp_path):
    """`--eval-every` measures train/val R@1 mid-run via stop_at + resume; the end state is the
    unsplit run's (same ranks), and the pair views of the parts add up."""
    import json

    from taco_lite.data import build_datasets
    from taco_lite.sweep.val_study import run_experiment
    from taco_lite.world import WorldConfig, generate_world

    world = generate_world(WorldConfig(seed=0, num_clips=60))
    datasets, vocab, idf = build_datasets(world, splits=("train", "val"))
    data = {"base": world, "train": datasets["train"], "val": datasets["val"], "vocab": vocab,
            "idf": idf}  # fmt: skip
    B = 32
    steps = 3 * (len(datasets["train"]) // B)  # 3 epochs
    whole = run_experiment("L1", 0, steps, data, tmp_path / "a", 50, preset="fast")
    split = run_experiment("L1", 0, steps, data, tmp_path / "b", 50, preset="fast", eval_every=2)
    assert whole["curve"] == [] and [p["step"] for p in split["curve"]] == list(range(2, steps, 2))
    assert {"val_t2v_R1", "train_v2t_R1", "L1_last50"} <= set(split["curve"][0])
    assert split["val_t2v"] == whole["val_t2v"] and split["train_v2t"] == whole["train_v2t"]
    assert split["pair_views"] == whole["pair_views"]
    assert split["pair_views"]["max"] == 3 and split["pair_views"]["views"] == steps * B
    rec = json.loads((tmp_path / "b" / "results.jsonl").read_text().splitlines()[-1])
    assert rec["preset"] == "fast" and len(rec["curve"]) == len(split["curve"])


def test_frozen_frames_start_from_the_state_and_never_train():
    from taco_lite.sweep.val_modes import _frozen_frames

    cfg = ModelConfig(d=8, heads=2, vocab_size=10)
    state = {
        k: torch.full_like(v, 0.01)
        for k, v in TacoModel(cfg).video.frame_encoder.state_dict().items()
    }
    with _frozen_frames(state):
        model = TacoModel(cfg)
    assert all(torch.equal(v, state[k]) for k, v in model.video.frame_encoder.state_dict().items())
    assert not any(p.requires_grad for p in model.video.frame_encoder.parameters())
    assert all(p.requires_grad for p in model.text.parameters())
    frames = torch.randn(2, 3, 3, 32, 32)
    model.video(frames, torch.ones(2, 3, dtype=torch.bool)).sum().backward()
    assert all(p.grad is None for p in model.video.frame_encoder.parameters())
    assert model.video.pos.grad is not None  # the rest of f_v still trains
    fresh = TacoModel(cfg)  # restored afterwards
    assert all(p.requires_grad for p in fresh.video.frame_encoder.parameters())


def test_curves_table_and_figure_from_results(tmp_path):
    import json

    from taco_lite.sweep.curves import main as curves_main

    def m(r1):
        return {"R1": r1, "R5": r1, "R10": r1, "MedR": 1.0, "MnR": 1.0}

    rec = {"exp": "L1", "seed": 0, "steps": 4, "L1_last50": 0.5, "pair_views": {"max": 3},
           "val_t2v": m(2.0), "val_v2t": m(3.0), "train_t2v": m(9.0), "train_v2t": m(8.0),
           "curve": [{"step": 2, "L1_last50": 1.0, "val_t2v_R1": 1.0, "val_v2t_R1": 1.5,
                      "train_t2v_R1": 4.0, "train_v2t_R1": 3.5}]}  # fmt: skip
    flat = {**rec, "exp": "L1+L2", "curve": []}  # no curve: left out
    (tmp_path / "results.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(flat) + "\n")
    fig = tmp_path / "fig.png"
    table = curves_main(["--out", str(tmp_path), "--figure", str(fig)])
    assert "| L1 | 0 | 2 | 1.0 | 4.0 | 1.5 | 3.5 | 1.00 |" in table
    assert "| L1 | 0 | 4 | 2.0 | 9.0 | 3.0 | 8.0 | 0.50 |" in table and "L1+L2" not in table
    assert fig.stat().st_size > 1000
