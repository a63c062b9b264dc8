"""Fresh training pairs per epoch (data.EndlessTrainSet) and the loop's logged pair counts."""

from __future__ import annotations

import pytest

from taco_lite.config import ModelConfig, TrainConfig
from taco_lite.data import WorldDataset
from taco_lite.data.endless import EndlessTrainSet
from taco_lite.text import Vocab, tokenize
from taco_lite.text.pos import idf_table
from taco_lite.train import train
from taco_lite.world import WorldConfig, generate_world


@pytest.fixture(scope="module")
def base():
    return generate_world(WorldConfig(seed=0, num_clips=40))


@pytest.fixture(scope="module")
def text(base):
    tokens = [tokenize(base.segments[i].caption) for i in base.split("train")]
    return Vocab.build(tokens), idf_table(tokens)


def _endless(base, text, **kw):
    vocab, idf = text
    kw = {"tagger": "gold", "pairs_per_epoch": 24, "prefetch": False, **kw}
    return EndlessTrainSet(base, vocab, idf, **kw)


def _fingerprint(ds):
    return [(tuple(it["text_ids"].tolist()), int(it["frames"].sum())) for it in ds.items]


def test_epochs_are_fresh_fixed_size_and_deterministic(base, text):
    a, b = _endless(base, text), _endless(base, text, prefetch=True)
    e0, e1 = a.for_epoch(0), a.for_epoch(1)
    assert len(e0) == len(e1) == len(a) == 24
    assert _fingerprint(e0) == _fingerprint(b.for_epoch(0))  # (seed, epoch) fixes the data
    assert _fingerprint(b.for_epoch(1)) == _fingerprint(e1)  # also when prefetched
    assert _fingerprint(e0) != _fingerprint(e1)
    assert _fingerprint(_endless(base, text, seed=1).for_epoch(0)) != _fingerprint(e0)
    vocab, idf = text
    shipped = WorldDataset(
        base, "train", vocab, idf, tags=[base.segments[i].gold_pos for i in base.split("train")]
    )
    frames = {int(it["frames"].sum()) for it in shipped.items}
    assert not frames & {f for _, f in _fingerprint(e0)}  # new clips, not the base's
    b.close()


def test_bad_arguments(base, text):
    with pytest.raises(ValueError, match="tagger"):
        _endless(base, text, tagger="nltk")
    with pytest.raises(ValueError, match="epoch"):
        _endless(base, text).for_epoch(-1)


def _tiny_run(train_set, vocab, tmp_path):
    mcfg = ModelConfig(d=32, heads=4, text_layers=1, fusion_layers=1, dropout=0.0)
    tcfg = TrainConfig(
        losses="L1+L2", batch_size=8, steps=7, warmup_steps=1, progress=False,
        ckpt_dir=str(tmp_path), device="cpu",
    )  # fmt: skip
    return train(mcfg, tcfg, datasets={"train": train_set}, vocab=vocab.to_list())


def test_logged_pair_views(base, text, tmp_path):
    vocab, idf = text
    endless = _endless(base, text)
    res = _tiny_run(endless, vocab, tmp_path / "e")
    assert res.extra["pair_views"] == {"pairs": 56, "views": 56, "max": 1, "mean": 1.0}
    finite = endless.for_epoch(0)  # one fixed set of 24 pairs: 3 steps per epoch, 7 steps
    res = _tiny_run(finite, vocab, tmp_path / "f")
    views = res.extra["pair_views"]
    assert (views["pairs"], views["views"], views["max"]) == (24, 56, 3)
    assert 0.0 <= res.extra["data_share"] <= 1.0
