"""Extra worlds next to a base world: bigger eval splits and fresh training clips per epoch.

The shipped world (`data/world`) has about 400 val and 400 test pairs. With N = 406 one run's
R@1 has a standard error of 1.3-1.8 points, as large as the effect TACo claims (+0.9 to +1.7
R@1). And its 2,170 training pairs are seen 9-26 times by a preset, so the model memorises
them. The world is procedural, so neither limit is real: this module generates more of it.

An *extra world* uses the base world's knobs (grammar, distractors, noise, twins, ...) and its
held-out (noun, verb) pairs, so nothing that comp tests compositionally leaks into training or
into an extra val/test split. Its seed is derived from (base seed, role, index) with
`numpy.random.SeedSequence`, so it is deterministic and independent of every other extra
world and of the base world; every clip also gets its own 62-bit noise seed, so no extra clip
repeats a base clip. Only seeds are ever stored: frames render on demand, `data/` stays small.

    from taco_lite.world import load_world
    from taco_lite.world.extra import eval_world, train_world
    base = load_world()
    val_big = eval_world(base, "val", num_clips=800)     # all its segments in split "val"
    fresh = train_world(base, seed=0, epoch=3)           # epoch 3's training clips
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .generate import generate_world
from .types import World

ROLES = {"train": 1, "val": 2, "test": 3, "comp": 4}
_FRACS = {  # (val_frac, test_frac, comp_frac) that put every clip in the role's split
    "train": (0.0, 0.0, 0.0),
    "val": (1.0, 0.0, 0.0),
    "test": (0.0, 1.0, 0.0),
    "comp": (0.0, 0.0, 1.0),
}


def extra_seed(base_seed: int, role: str, index: int) -> int:
    """World seed for extra world `index` of `role` next to base world `base_seed` (uint32).

    SeedSequence mixes the three numbers, so nearby indices give unrelated streams and no
    (role, index) reproduces another's (or, but for a 2^-32 accident, the base seed itself).
    """
    if role not in ROLES:
        raise ValueError(f"role is {role!r} but must be one of {sorted(ROLES)}")
    if base_seed < 0 or index < 0:
        raise ValueError(f"base_seed and index must be >= 0, got {base_seed}, {index}")
    ss = np.random.SeedSequence([int(base_seed), ROLES[role], int(index)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def extra_world(base: World, role: str, num_clips: int, index: int = 0) -> World:
    """A world with `base`'s knobs and held-out pairs whose clips all go to split `role`.

    role "comp" builds every clip around a held-out pair; clips of tasks that no held-out pair
    fits fall back to split "train" there (as in `generate_script`), so use `.split("comp")`.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips is {num_clips} but an extra world needs at least 1 clip")
    if role not in _FRACS:
        raise ValueError(f"role is {role!r} but must be one of {sorted(_FRACS)}")
    val_frac, test_frac, comp_frac = _FRACS[role]
    cfg = dataclasses.replace(
        base.config,
        seed=extra_seed(base.config.seed, role, index),
        num_clips=int(num_clips),
        val_frac=val_frac,
        test_frac=test_frac,
        comp_frac=comp_frac,
    )
    return generate_world(cfg, heldout=list(base.heldout_pairs))


def eval_world(base: World, split: str, num_clips: int, index: int = 0) -> World:
    """An extra "val", "test" or "comp" split: `extra_world(base, split, ...)`."""
    if split not in ("val", "test", "comp"):
        raise ValueError(f"split is {split!r}; an extra eval world is 'val', 'test' or 'comp'")
    return extra_world(base, split, num_clips, index)


def train_world(base: World, seed: int, epoch: int, num_clips: int | None = None) -> World:
    """Fresh training clips for one epoch of a run with training seed `seed` (split "train").

    Deterministic in (base seed, seed, epoch). `num_clips` defaults to the base world's number
    of train clips, so an epoch holds about as many pairs as the base train split.
    """
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    if num_clips is None:
        num_clips = sum(1 for c in base.clips if c.split == "train")
    index = int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])
    return extra_world(base, "train", num_clips, index)


__all__ = ["ROLES", "eval_world", "extra_seed", "extra_world", "train_world"]
