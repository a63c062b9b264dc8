"""One TACo step, the training loop, exact resume and the CLI (on synthetic data: fast)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import taco_lite.cascade as cascade
import taco_lite.losses as losses
import taco_lite.train.cli as train_cli
from taco_lite.batch import synthetic_batch
from taco_lite.config import ModelConfig, TrainConfig
from taco_lite.data import collate
from taco_lite.model import TacoModel
from taco_lite.train import main, train
from taco_lite.train.schedule import epoch_batches, warmup_then_linear
from taco_lite.train.step import LossFns, check_k_neg, taco_step

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(26)]


def synthetic_items(N: int, seed: int = 0, frame_size: int = 16) -> list[dict]:
    """N items in `data.collate`'s format, cut out of one synthetic batch."""
    big = synthetic_batch(B=N, n=8, m=6, vocab_size=len(VOCAB), frame_size=frame_size, seed=seed)
    items = []
    for i in range(N):
        n_i, m_i = int(big.text_mask[i].sum()), int(big.video_mask[i].sum())
        items.append(
            {
                "text_ids": big.text_ids[i, :n_i],
                "token_interest": big.token_interest[i, :n_i],
                "token_weights": big.token_weights[i, :n_i],
                "pos_ids": big.pos_ids[i, :n_i],
                "frames": (big.frames[i, :m_i] * 255).to(torch.uint8),
                "gold_frames": big.gold_frames[i, :n_i, :m_i],
                "seg_id": i,
                "caption_id": i,
            }
        )
    return items


def tiny_model_cfg(**kw) -> ModelConfig:
    base = dict(
        d=32,
        heads=4,
        vocab_size=len(VOCAB),
        frame_size=16,
        text_layers=1,
        video_layers=1,
        fusion_layers=1,
    )
    base.update(kw)
    return ModelConfig(**base)


def tiny_train_cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(
        batch_size=8,
        k_neg=3,
        steps=6,
        warmup_steps=2,
        lr=1e-3,
        ckpt_dir=str(tmp_path / "run"),
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------ one step


def test_step_full_taco_reports_all_terms():
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg())
    batch = collate(synthetic_items(8))
    tcfg = TrainConfig(batch_size=8, k_neg=3)
    out = taco_step(model, batch, tcfg)
    for t in (out.L1, out.L2, out.L3):
        assert t is not None and torch.isfinite(t) and t.requires_grad
    want = out.L1 + 0.5 * out.L2 + out.L3
    torch.testing.assert_close(out.total, want)
    assert 0.0 <= out.fusion_acc <= 1.0
    assert out.fusion_pairs == 2 * 8 * (3 + 1)  # 2B(K'+1), not B^2
    assert out.videos_for_text.shape == (8, 3)
    assert not (out.videos_for_text == torch.arange(8)[:, None]).any()  # never the positive


@pytest.mark.parametrize(
    "losses_, negatives, present",
    [
        ("L3", "cascade", {"L3"}),
        ("L3", "random", {"L3"}),
        ("L1+L3", "random", {"L1", "L3"}),
        ("L1", "cascade", {"L1"}),
        ("L1+L2", "cascade", {"L1", "L2"}),
    ],
)
def test_step_loss_subsets(losses_, negatives, present):
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg())
    batch = collate(synthetic_items(8))
    tcfg = TrainConfig(batch_size=8, k_neg=3, losses=losses_, negatives=negatives)
    out = taco_step(model, batch, tcfg, generator=torch.Generator().manual_seed(0))
    for name in ("L1", "L2", "L3"):
        assert (getattr(out, name) is not None) == (name in present), name
    assert (out.fusion_acc is not None) == ("L3" in present)
    out.total.backward()  # every enabled combination is trainable
    assert torch.isfinite(out.total)


def test_token_chunk_gives_the_same_step_with_the_lowmem_scores():
    """token_chunk > 0 swaps in losses.token_video_scores_lowmem: same losses and gradients."""
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg(dropout=0.0))
    batch = collate(synthetic_items(8))
    grads = []
    for chunk in (0, 3):
        model.zero_grad()
        tcfg = TrainConfig(batch_size=8, k_neg=3, token_chunk=chunk)
        out = taco_step(model, batch, tcfg)
        out.total.backward()
        grads.append((out, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (plain, g0), (low, g1) = grads
    torch.testing.assert_close(low.L2, plain.L2, rtol=1e-5, atol=1e-6)
    assert torch.equal(low.videos_for_text, plain.videos_for_text)
    for a, b in zip(g0, g1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="token_chunk"):
        TrainConfig(token_chunk=-1)


def test_cascade_needs_no_extra_encoder_pass_and_no_grad_in_sampler():
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg())
    calls = {"embed": 0}
    real_embed = model.embed

    def counting_embed(batch):
        calls["embed"] += 1
        return real_embed(batch)

    model.embed = counting_embed
    seen = {}

    def spying_pair_scores(sim_global, token_scores, token_mask):
        seen["grad"] = sim_global.requires_grad or token_scores.requires_grad
        return cascade.pair_scores(sim_global, token_scores, token_mask)

    tcfg = TrainConfig(batch_size=8, k_neg=3, losses="L1+L3")  # L2 off: scores still computed
    taco_step(model, collate(synthetic_items(8)), tcfg, LossFns(pair_scores=spying_pair_scores))
    assert calls["embed"] == 1
    assert seen["grad"] is False


def test_injected_loss_fns_are_called():
    counts: dict[str, int] = {}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return fn(*args, **kwargs)

        return wrapper

    names = ("sentence_nce", "token_video_scores", "token_nce", "fusion_nce")
    fns = LossFns(
        **{n: counted(n, getattr(losses, n)) for n in names},
        pair_scores=counted("pair_scores", cascade.pair_scores),
        hard_negatives=counted("hard_negatives", cascade.hard_negatives),
    )
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg())
    taco_step(model, collate(synthetic_items(8)), TrainConfig(batch_size=8, k_neg=3), fns)
    assert counts == {n: 1 for n in (*names, "pair_scores", "hard_negatives")}


def test_an_injected_wrong_loss_changes_the_result():
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg(dropout=0.0))
    batch = collate(synthetic_items(8))
    tcfg = TrainConfig(batch_size=8, k_neg=3, losses="L1")
    good = taco_step(model, batch, tcfg).L1
    bad = taco_step(model, batch, tcfg, LossFns(sentence_nce=lambda t, v, tau, symmetric: t.sum()))
    assert not torch.allclose(good, bad.L1)


def test_k_neg_larger_than_batch_is_a_clear_error():
    with pytest.raises(ValueError, match="only 3 negatives"):
        check_k_neg(4, 4)
    with pytest.raises(ValueError, match="k_neg=8"):
        TrainConfig(batch_size=8, k_neg=8)
    torch.manual_seed(0)
    model = TacoModel(tiny_model_cfg())
    small = collate(synthetic_items(4))  # a batch smaller than the config assumed
    with pytest.raises(ValueError, match="k_neg=5 but this batch has B=4"):
        taco_step(model, small, TrainConfig(batch_size=8, k_neg=5))


# ------------------------------------------------------------------------------ training


def test_overfit_eight_pairs_drives_all_three_losses_to_zero(tmp_path):
    """CS231n's sanity check: full TACo (L1+L2+L3, cascade) memorises 8 fixed pairs."""
    items = synthetic_items(8, seed=2)
    mcfg = tiny_model_cfg(d=64, dropout=0.0, text_layers=1, fusion_layers=1)
    tcfg = tiny_train_cfg(
        tmp_path, batch_size=8, k_neg=4, steps=150, warmup_steps=10, lr=3e-3, weight_decay=0.0
    )
    result = train(mcfg, tcfg, datasets={"train": items}, vocab=VOCAB)
    first, last = result.history[0], result.history[-1]
    assert first["L1"] > 1.0 and first["L3"] > 1.0
    assert last["L1"] < 0.05, last
    assert last["L2"] < 0.1, last
    assert last["L3"] < 0.05, last
    assert last["fusion_acc"] == 1.0


def test_history_log_and_checkpoints(tmp_path, capsys):
    seen = []
    tcfg = tiny_train_cfg(tmp_path, steps=5, ckpt_every=2, log_every=1)
    result = train(
        tiny_model_cfg(),
        tcfg,
        datasets={"train": synthetic_items(20)},
        vocab=VOCAB,
        log=seen.append,
    )
    assert [h["step"] for h in result.history] == [1, 2, 3, 4, 5]
    assert seen == result.history
    assert set(result.history[0]) >= {"step", "lr", "loss", "L1", "L2", "L3", "fusion_acc"}
    assert result.checkpoint.name == "last.pt" and result.checkpoint.exists()
    assert (tmp_path / "run" / "model.pt").exists()  # slim copy to ship
    assert result.model_cfg.vocab_size == len(VOCAB)
    assert capsys.readouterr().err == ""  # progress=False is silent


def test_schedule_and_batch_order():
    f = warmup_then_linear(4, 10)
    lrs = [f(s) for s in range(10)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert (
        lrs[4] == 1.0 and all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False)) and lrs[-1] > 0
    )
    e0, e0b, e1 = epoch_batches(20, 8, 0, 0), epoch_batches(20, 8, 0, 0), epoch_batches(20, 8, 0, 1)
    assert e0 == e0b and e0 != e1
    assert len(e0) == 2 and all(len(b) == 8 for b in e0)  # the partial batch is dropped
    assert len({i for b in e0 for i in b}) == 16


@pytest.mark.parametrize("negatives", ["cascade", "random"])
def test_resume_is_exact(tmp_path, negatives):
    """2N steps in one go == N steps, checkpoint, resume, N more (dropout on: RNG restored)."""
    items = {"train": synthetic_items(20)}  # 2 batches per epoch: resume crosses epochs
    mcfg = tiny_model_cfg(dropout=0.1)
    whole = train(
        mcfg,
        tiny_train_cfg(tmp_path / "a", steps=6, negatives=negatives),
        datasets=items,
        vocab=VOCAB,
    )
    tcfg = tiny_train_cfg(tmp_path / "b", steps=6, negatives=negatives)
    half = train(mcfg, tcfg, datasets=items, vocab=VOCAB, stop_at=3)
    assert len(half.history) == 3
    rest = train(mcfg, tcfg, datasets=items, vocab=VOCAB, resume=half.checkpoint)
    keys = ("loss", "L1", "L2", "L3", "fusion_acc", "lr")
    assert [[h[k] for k in keys] for h in rest.history] == [
        [h[k] for k in keys] for h in whole.history
    ]
    for a, b in zip(
        whole.model.state_dict().values(), rest.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_amp_bf16_training_on_cpu_is_finite(tmp_path):
    tcfg = tiny_train_cfg(tmp_path, steps=3, amp=True)
    result = train(tiny_model_cfg(), tcfg, datasets={"train": synthetic_items(16)}, vocab=VOCAB)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


@pytest.mark.slow
def test_compile_on_cpu_does_not_crash(tmp_path):
    tcfg = tiny_train_cfg(tmp_path, steps=2, compile=True)
    result = train(tiny_model_cfg(), tcfg, datasets={"train": synthetic_items(16)}, vocab=VOCAB)
    assert len(result.history) == 2


# ------------------------------------------------------------------------------ CLI


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--preset",
        "--losses",
        "--negatives",
        "--pos-tags",
        "--k-neg",
        "--no-amp",
        "--compile",
        "--resume",
        "--quiet",
        "--out",
    ):
        assert flag in text


def test_cli_tiny_run_and_k_neg_reaches_hard_negatives(tmp_path, monkeypatch, capsys):
    """`--k-neg 3` must arrive, unchanged, at cascade.hard_negatives."""
    items = synthetic_items(24)
    monkeypatch.setattr(
        train_cli,
        "load_world_datasets",
        lambda mcfg, tcfg, splits=("train", "test"): ({"train": items, "test": items[:12]}, VOCAB),
    )
    monkeypatch.setattr(
        train_cli,
        "PRESETS",
        {
            "fast": dataclasses.replace(
                train_cli.PRESETS["fast"],
                model=tiny_model_cfg(),
                train=TrainConfig(batch_size=8, k_neg=2),
            )
        },
    )
    ks = []
    real = cascade.hard_negatives

    def spy(pair_scores, k, caption_ids=None):
        ks.append(k)
        return real(pair_scores, k, caption_ids)

    monkeypatch.setattr(cascade, "hard_negatives", spy)
    out = tmp_path / "cli"
    summary = main(
        [
            "--preset",
            "fast",
            "--steps",
            "4",
            "--k-neg",
            "3",
            "--seed",
            "1",
            "--out",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert ks == [3, 3, 3, 3]
    assert summary["k_neg"] == 3 and summary["steps"] == 4
    assert 0.0 <= summary["test"]["t2v_R1"] <= 100.0 and summary["test"]["N"] == 12
    assert json.loads((out / "result.json").read_text())["k_neg"] == 3
    assert (out / "last.pt").exists()
    assert "R@1" in capsys.readouterr().out


def test_cli_rejects_bad_values():
    with pytest.raises(SystemExit):
        main(["--losses", "L2"])
    with pytest.raises(ValueError, match="k_neg=40"):
        main(["--preset", "fast", "--k-neg", "40", "--batch-size", "8", "--quiet"])
