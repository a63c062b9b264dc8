"""Feedback for notebook 00 (the toy world): look-ups of segments and of gold frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taco_lite.course.feedback import CheckReport, Part, _call, _expect_equal
from taco_lite.course.references import _ref_gold_clip_frames, _ref_segments_with_noun

__all__ = ["check_segments_with_noun", "check_gold_clip_frames"]


def check_segments_with_noun(
    fn: Callable, world: Any, verbose: bool = True, part: Part = None
) -> CheckReport:
    """Exercise 00.1: `fn(world, noun, split) -> list[int]` of segment ids naming `noun`."""
    report = CheckReport("segments_with_noun")
    for noun, split in (("ball", "train"), ("star", "test"), ("cube", "val")):
        probe = f"{noun!r} in {split!r}"
        got = _call(report, probe, fn, world, noun, split)
        if got is None:
            continue
        want = _ref_segments_with_noun(world, noun, split)
        got_list = sorted(int(i) for i in got)
        everywhere = sorted(
            i for i in range(len(world.segments)) if noun in world.segments[i].nouns
        )
        by_caption = [i for i in world.split(split) if noun in world.segments[i].caption.split()]
        mistakes = [
            (everywhere, "you searched every split: keep only world.split(split)"),
            (sorted(by_caption), "you searched the caption text; use segment.nouns (canonical "
                                 "nouns): a caption may say 'balls' or a synonym"),
        ]  # fmt: skip
        ok_line = f"{len(want)} segments, all correct"
        hint = f"expected {len(want)} segment ids, got {len(got_list)}; first expected: {want[:5]}"
        _expect_equal(report, probe, got_list, want, ok_line, hint, mistakes)
    return report.finish(verbose, part)


def check_gold_clip_frames(
    fn: Callable, world: Any, verbose: bool = True, part: Part = None
) -> CheckReport:
    """Exercise 00.2: `fn(world, seg_id, word) -> list[int]`, the word's gold frames in clip time."""
    report = CheckReport("gold_clip_frames")
    tried = 0
    for seg_id in (0, 7, 31, 100):
        seg = world.segments[seg_id]
        word = next((w for w, f in zip(seg.words, seg.gold_frames, strict=True) if f), None)
        if word is None:
            continue
        tried += 1
        probe = f"segment {seg_id}, word {word!r}"
        got = _call(report, probe, fn, world, seg_id, word)
        if got is not None:
            want = _ref_gold_clip_frames(world, seg_id, word)
            got_list = sorted(int(f) for f in got)
            relative = sorted(f - seg.start for f in want)  # the frames within the segment
            hint = "these are frames relative to the segment; add segment.start to get clip frames"
            fallback = f"expected {want}, got {got_list}"
            _expect_equal(
                report, probe, got_list, want, f"frames {want}", fallback, [(relative, hint)]
            )
    if tried == 0:
        report.fail("probes", "no probe segment has a grounded word; is this the shipped world?")
    return report.finish(verbose, part)
