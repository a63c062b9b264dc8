"""Training data that does not run out: fresh world clips for every epoch.

The shipped train split has about 2,170 pairs; a preset sees each of them 9-26 times and
the model memorises them (train s1 R@1 94 vs test 16). TACo itself trains on 1.2 M HowTo100M
clips and sees each about once. The toy world is procedural, so `EndlessTrainSet` generates
a new training world for every epoch (`world.extra.train_world`: same grammar and knobs, the
base world's held-out pairs kept out, deterministic in (seed, epoch)) and hands `train()` one
`WorldDataset` per epoch through `for_epoch(epoch)`. Every epoch has exactly
`pairs_per_epoch` pairs, so that steps per epoch, and with them resuming, stay fixed.

Vocabulary and idf come from the base world's train split, as for the finite set: the grammar
is closed, so no new word appears. Tags come from spaCy as everywhere else in the kit
(`tagger="spacy"`), or from the world's gold tags (`tagger="gold"`, which spaCy matches on
99.9% of tokens; see data/README.md) when spaCy's cost per epoch matters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from taco_lite.data.dataset import WorldDataset
from taco_lite.text import Vocab
from taco_lite.text.pos import DEFAULT_POS_TAGS, tag_captions
from taco_lite.world.extra import train_world

TAGGERS = ("spacy", "gold")


class EndlessTrainSet:
    """A training set whose pairs are new in every epoch; `for_epoch(e)` is a `WorldDataset`.

    base: the world whose knobs and held-out pairs to follow (not its clips).
    seed: the data seed; epoch e's clips are `train_world(base, seed, e)`.
    pairs_per_epoch: pairs per epoch (default: the base train split's size); the world of an
      epoch is generated a little larger and cut to this many segments.
    prefetch: build epoch e + 1 in a background thread while epoch e trains.
    """

    def __init__(
        self,
        base: Any,
        vocab: Vocab,
        idf: dict[str, float],
        seed: int = 0,
        pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
        max_tokens: int = 32,
        pairs_per_epoch: int | None = None,
        tagger: str = "spacy",
        prefetch: bool = True,
        nlp=None,
    ):
        if tagger not in TAGGERS:
            raise ValueError(f"tagger is {tagger!r} but must be one of {TAGGERS}")
        n_train = len(base.split("train"))
        self.pairs_per_epoch = int(pairs_per_epoch or n_train)
        if self.pairs_per_epoch < 1:
            raise ValueError(f"pairs_per_epoch is {pairs_per_epoch} but must be >= 1")
        self.base, self.vocab, self.idf, self.seed = base, vocab, idf, int(seed)
        self.pos_tags, self.max_tokens, self.tagger, self.nlp = pos_tags, max_tokens, tagger, nlp
        train_clips = max(1, sum(1 for c in base.clips if c.split == "train"))
        self._segs_per_clip = max(1.0, n_train / train_clips)
        self._pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
        self._futures: dict[int, Future] = {}
        self.build_seconds: dict[int, float] = {}  # epoch -> seconds spent building it

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def __repr__(self) -> str:
        return (
            f"EndlessTrainSet({self.pairs_per_epoch} fresh pairs per epoch, seed={self.seed}, "
            f"tagger={self.tagger!r})"
        )

    def world_for_epoch(self, epoch: int) -> Any:
        """The generated world of `epoch`, its train split cut to `pairs_per_epoch` segments."""
        clips = math.ceil(1.15 * self.pairs_per_epoch / self._segs_per_clip) + 4
        world = train_world(self.base, self.seed, epoch, num_clips=clips)
        while len(world.split("train")) < self.pairs_per_epoch:  # rare: grow, deterministically
            clips = math.ceil(clips * 1.5)
            world = train_world(self.base, self.seed, epoch, num_clips=clips)
        world.script["splits"]["train"] = world.split("train")[: self.pairs_per_epoch]
        return world

    def _build(self, epoch: int) -> WorldDataset:
        import time

        t0 = time.perf_counter()
        world = self.world_for_epoch(epoch)
        segs = [world.segments[i] for i in world.split("train")]
        if self.tagger == "gold":
            tags = [list(s.gold_pos) for s in segs]
        else:
            tags = tag_captions([s.caption for s in segs], nlp=self.nlp)
        ds = WorldDataset(
            world,
            "train",
            self.vocab,
            self.idf,
            self.pos_tags,
            tags=tags,
            max_tokens=self.max_tokens,
        )
        world._frames.clear()  # the dataset holds its own copies of the frames
        self.build_seconds[epoch] = time.perf_counter() - t0
        return ds

    def for_epoch(self, epoch: int) -> WorldDataset:
        """The pairs of `epoch` (built now, or taken from the prefetch thread)."""
        if epoch < 0:
            raise ValueError(f"epoch is {epoch} but must be >= 0")
        fut = self._futures.pop(epoch, None)
        ds = fut.result() if fut is not None else self._build(epoch)
        for old in [e for e in self._futures if e < epoch]:
            self._futures.pop(old).cancel()
        if self._pool is not None and epoch + 1 not in self._futures:
            self._futures[epoch + 1] = self._pool.submit(self._build, epoch + 1)
        return ds

    def close(self) -> None:
        """Stop the prefetch thread (a pending epoch is dropped)."""
        for fut in self._futures.values():
            fut.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["TAGGERS", "EndlessTrainSet"]
