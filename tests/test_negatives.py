"""evaluate.negatives: the share of cascade vs random negatives that share a word with the anchor."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from taco_lite.evaluate.negatives import negative_word_share


@pytest.fixture(scope="module")
def world_and_test():
    from taco_lite.data import build_datasets
    from taco_lite.text import pos
    from taco_lite.world import WorldConfig, generate_world

    try:
        pos.load_nlp()
    except OSError:
        pytest.skip("no English spaCy pipeline installed")
    world = generate_world(WorldConfig(seed=0, num_clips=40))
    datasets, _, _ = build_datasets(world, splits=("train",))
    return world, datasets["train"]


class WordOverlapModel(torch.nn.Module):
    """s1(i, j) = number of nouns and verbs captions i and j share; token scores 0."""

    def __init__(self, world):
        super().__init__()
        self.world = world
        self.vocab = sorted({w for s in world.segments for w in s.nouns + s.verbs})
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def embed(self, batch):
        B, n = batch.text_mask.shape
        m = batch.video_mask.shape[1]
        d = len(self.vocab)
        g = torch.zeros(B, d)
        for b, s in enumerate(batch.seg_ids.tolist()):
            seg = self.world.segments[s]
            for w in set(seg.nouns + seg.verbs):
                g[b, self.vocab.index(w)] = 1.0
        return SimpleNamespace(text_global=g, video_global=g, text_tokens=torch.zeros(B, n, d),
                               video_tokens=torch.zeros(B, m, d))  # fmt: skip


def test_cascade_negatives_share_more_words_when_the_score_is_word_overlap(world_and_test):
    world, data = world_and_test
    out = negative_word_share(WordOverlapModel(world), data, world, batch_size=16, k=3)
    assert out["batches"] == len(data) // 16 and out["negatives"] == out["batches"] * 16 * 3
    assert 0 <= out["random"] < out["cascade"] <= 100


def test_bad_sizes_are_refused(world_and_test):
    world, data = world_and_test
    with pytest.raises(ValueError, match="k <= batch_size - 1"):
        negative_word_share(WordOverlapModel(world), data, world, batch_size=4, k=4)
