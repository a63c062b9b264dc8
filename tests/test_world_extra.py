"""Extra worlds: bigger eval splits and fresh training clips, deterministic and leak-free."""

import pytest

from taco_lite.world import WorldConfig, generate_world
from taco_lite.world.extra import eval_world, extra_seed, extra_world, train_world


@pytest.fixture(scope="module")
def base():
    return generate_world(WorldConfig(seed=0, num_clips=60))


def _events(world, split):
    return [
        (e["noun"], e["verb"])
        for i in world.split(split)
        for e in world.segment_script(i)["events"]
    ]


def test_seeds_are_distinct_and_deterministic():
    seeds = {extra_seed(0, r, i) for r in ("train", "val", "test", "comp") for i in range(50)}
    assert len(seeds) == 200 and 0 not in seeds
    assert extra_seed(0, "val", 3) == extra_seed(0, "val", 3) != extra_seed(1, "val", 3)
    with pytest.raises(ValueError, match="role"):
        extra_seed(0, "dev", 0)


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_world_puts_every_clip_in_its_split(base, split):
    w = eval_world(base, split, num_clips=30)
    assert len(w.split(split)) == len(w.segments) > 30
    assert w.heldout_pairs == base.heldout_pairs
    assert not set(_events(w, split)) & set(base.heldout_pairs)  # comp pairs never leak
    assert w.script == eval_world(base, split, num_clips=30).script  # deterministic
    assert w.script != eval_world(base, split, num_clips=30, index=1).script


def test_comp_world_tests_the_base_heldout_pairs(base):
    w = eval_world(base, "comp", num_clips=30)
    assert w.split("comp") and set(_events(w, "comp")) & set(base.heldout_pairs)


def test_train_world_depends_on_seed_and_epoch(base):
    a, b = train_world(base, seed=0, epoch=0), train_world(base, seed=0, epoch=1)
    assert a.script == train_world(base, seed=0, epoch=0).script
    assert a.config.seed != b.config.seed != train_world(base, seed=1, epoch=0).config.seed
    n_train_clips = sum(c.split == "train" for c in base.clips)
    assert len(a.clips) == n_train_clips and len(a.split("train")) == len(a.segments)
    assert not set(_events(a, "train")) & set(base.heldout_pairs)
    noise = {c.noise_seed for c in base.clips}
    assert not noise & {c.noise_seed for c in a.clips}  # no clip repeats a base clip


def test_knobs_follow_the_base_world():
    base = generate_world(WorldConfig(seed=3, num_clips=20, noise=0, twin_frac=0.5))
    w = extra_world(base, "val", num_clips=10)
    assert (w.config.noise, w.config.twin_frac) == (0, 0.5)
    with pytest.raises(ValueError, match="split"):
        eval_world(base, "train", 10)
    with pytest.raises(ValueError, match="num_clips"):
        extra_world(base, "val", 0)
