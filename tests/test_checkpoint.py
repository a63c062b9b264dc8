"""Checkpoints: atomic, plain (weights_only), versioned, and loud when damaged."""

from __future__ import annotations

import os

import pytest
import torch

import taco_lite.runtime.checkpoint as ckpt
from taco_lite.batch import synthetic_batch
from taco_lite.config import PRESETS, ModelConfig, TrainConfig
from taco_lite.model import TacoModel
from taco_lite.runtime.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_model,
    restore_training_state,
    save_checkpoint,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(16)]


def tiny(seed: int = 0) -> tuple[TacoModel, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = TacoModel(ModelConfig(d=16, heads=2, vocab_size=20, frame_size=16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = synthetic_batch(B=2, vocab_size=20, frame_size=16)
    model.embed(batch).text_global.sum().backward()
    opt.step()  # gives Adam some state to save
    return model, opt


def test_round_trip_and_weights_only(tmp_path):
    model, opt = tiny()
    path = save_checkpoint(
        tmp_path / "a.pt",
        model,
        opt,
        None,
        step=7,
        train_cfg=TrainConfig(steps=9),
        vocab=VOCAB,
        extra={"note": "hi", "history": [{"step": 1, "L1": 0.5}]},
    )
    raw = torch.load(path, weights_only=True)  # plain contents only
    assert raw["format_version"] == FORMAT_VERSION and raw["step"] == 7
    assert raw["vocab"] == VOCAB and raw["train_cfg"]["steps"] == 9
    assert isinstance(raw["taco_lite_version"], str)
    assert "torch" in raw["rng"]

    loaded, vocab, (mcfg, tcfg) = load_model(path)
    assert vocab == VOCAB and mcfg == model.cfg and tcfg.steps == 9
    batch = synthetic_batch(B=3, vocab_size=20, frame_size=16)
    model.eval()
    torch.testing.assert_close(loaded.embed(batch).text_tokens, model.embed(batch).text_tokens)


def test_restore_puts_optimizer_and_rng_back(tmp_path):
    model, opt = tiny()
    torch.manual_seed(123)
    path = save_checkpoint(tmp_path / "b.pt", model, opt, step=3)
    expected = torch.rand(4)  # what the RNG gives right after the save
    other, other_opt = tiny(seed=5)
    step = restore_training_state(load_checkpoint(path), other, other_opt)
    assert step == 3
    torch.testing.assert_close(torch.rand(4), expected)
    want, got = opt.state_dict()["state"], other_opt.state_dict()["state"]
    assert want and set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key]["exp_avg"], want[key]["exp_avg"])


def test_crash_mid_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    model, opt = tiny()
    path = save_checkpoint(tmp_path / "last.pt", model, opt, step=1)
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:  # leave a half-written file behind, then "crash"
            fh.truncate(os.path.getsize(f) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, step=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_other_format_version_is_refused(tmp_path):
    model, _ = tiny()
    path = save_checkpoint(tmp_path / "old.pt", model)
    state = torch.load(path, weights_only=True)
    state["format_version"] = FORMAT_VERSION + 1
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert f"format {FORMAT_VERSION + 1}" in msg and f"reads format {FORMAT_VERSION}" in msg
    assert "python -m taco_lite.train" in msg and "old.pt" in msg


def test_truncated_file_is_named_and_explained(tmp_path):
    model, _ = tiny()
    path = save_checkpoint(tmp_path / "cut.pt", model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"cut\.pt.*(truncated|corrupt).*retrain"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_slim_checkpoint_refuses_exact_resume(tmp_path):
    model, opt = tiny()
    path = save_checkpoint(tmp_path / "slim.pt", model, step=4, with_rng=False)
    with pytest.raises(CheckpointError, match="no optimiser state"):
        restore_training_state(load_checkpoint(path), model, opt)


def test_default_model_checkpoint_is_under_5_mb(tmp_path):
    mcfg, tcfg = PRESETS["default"].configs()
    mcfg.vocab_size = 1000
    model = TacoModel(mcfg)
    words = [f"w{i}" for i in range(1000)]
    path = save_checkpoint(tmp_path / "model.pt", model, None, None, 1, mcfg, tcfg, words)
    assert path.stat().st_size < 5 * 2**20


# ------------------------------------------------------------------------------ issue 11


def test_flipped_tensor_byte_fails_the_checksum(tmp_path):
    model, opt = tiny()
    path = save_checkpoint(tmp_path / "flip.pt", model, opt, step=2)
    state = torch.load(path, weights_only=True)
    name = next(iter(state["model"]))
    raw = state["model"][name].view(-1).view(torch.uint8)  # the tensor's bytes, in place
    raw[3] ^= 0x10  # one flipped bit, the stored checksum left as it was
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"flip\.pt fails its checksum"):
        load_checkpoint(path)


def test_nan_or_inf_weights_are_refused(tmp_path):
    model, _ = tiny()
    with torch.no_grad():
        next(model.parameters())[0].fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", model)
    with pytest.raises(CheckpointError, match="NaN or inf weights .*diverged.*learning rate"):
        load_model(path)


def test_other_model_config_names_the_fields(tmp_path):
    model, opt = tiny()
    path = save_checkpoint(tmp_path / "d16.pt", model, opt, step=1)
    other = TacoModel(ModelConfig(d=32, heads=2, vocab_size=30, frame_size=16, max_tokens=40))
    with pytest.raises(CheckpointError) as err:
        restore_training_state(load_checkpoint(path), other)
    msg = str(err.value)
    for diff in ("d: checkpoint 16, here 32", "max_tokens: checkpoint 32, here 40"):
        assert diff in msg, msg
    assert "vocab_size: checkpoint 20, here 30" in msg and "load_model(path)" in msg
    assert "size mismatch" not in msg


class _Payload:
    def __reduce__(self):
        return (print, ("this ran at load time",))


def test_unsafe_pickle_is_called_unsafe(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": FORMAT_VERSION, "model": _Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt is unsafe") as err:
        load_checkpoint(path)
    assert "corrupt" not in str(err.value)


def test_stale_temp_files_are_removed_and_mode_follows_umask(tmp_path):
    model, _ = tiny()
    stale = tmp_path / ".last.pt.dead1234.tmp"  # what a writer killed mid-save leaves
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".model.pt.keep5678.tmp"  # another file's temp: not ours to delete
    other.write_bytes(b"x")
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "last.pt", model)
        assert (path.stat().st_mode & 0o777) == 0o644  # shareable on a multi-user hub
        os.umask(0o077)
        private = save_checkpoint(tmp_path / "private.pt", model)
        assert (private.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)
    assert not stale.exists() and other.exists()
