"""load_or_train: the shipped checkpoint when it fits, else a short run that leaves nothing behind."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from test_train import VOCAB, synthetic_items

from taco_lite.config import PRESETS
from taco_lite.model import TacoModel
from taco_lite.runtime.checkpoint import save_checkpoint
from taco_lite.text import Vocab
from taco_lite.train import pretrained
from taco_lite.train.pretrained import load_or_train, tiny_configs


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("taco_nb_*")}


def test_fast_mode_trains_and_removes_its_folder():
    before = _leftovers()
    logs: list[str] = []
    model = load_or_train(
        {"train": synthetic_items(32, frame_size=32)},
        Vocab.from_list(VOCAB),
        fast=True,
        log=logs.append,
    )
    assert isinstance(model, TacoModel) and not model.training
    assert logs and logs[-1].startswith("trained 25 steps")
    assert not _leftovers() - before, "the temporary run folder was left behind"


def test_a_matching_checkpoint_is_loaded_and_another_vocabulary_is_not(tmp_path, monkeypatch):
    mcfg, tcfg = tiny_configs()
    model = TacoModel(mcfg)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, train_cfg=tcfg, vocab=VOCAB)
    logs: list[str] = []
    loaded = load_or_train({"train": []}, Vocab.from_list(VOCAB), checkpoint=path, log=logs.append)
    assert logs == [f"loaded {path}"]
    assert all(
        (a == b).all()
        for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True)
    )
    other = Vocab.from_list([*VOCAB, "extra"])
    logs.clear()
    items = synthetic_items(32, frame_size=32)
    tiny = dataclasses.replace(PRESETS["fast"], model=mcfg, train=tcfg)  # keep the fallback quick
    monkeypatch.setattr(pretrained, "PRESETS", {"fast": tiny})
    load_or_train({"train": items}, other, checkpoint=path, log=logs.append)
    assert logs[0] == f"{path} was trained on another vocabulary; training a new model instead"
    assert logs[-1].startswith("trained")
