"""Exercise feedback for the notebooks: relative errors, gradient checks and diagnostic probes.

Why a module: a learner who sees "wrong answer" learns little. Each `check_*` function runs
the learner's function next to the package's reference (TACO_SPEC §8) on small inputs, and on
inputs crafted to expose one common mistake each (ignoring a mask, the wrong softmax axis, a
forgotten temperature, the positive among the negatives, weights that are not renormalised,
NaN on all-zero weights). It prints one line per probe and, if any probe fails, raises
`CheckFailed` (an AssertionError, so nbgrader counts the grade cell as failed) whose message
says *what* is wrong and what to try.

`NotImplementedError` from an unfinished exercise is never caught: it propagates, so that an
untouched notebook fails its grade cells with that one error only. Downstream cells use
`use_or_reference`, which *does* catch it and falls back to the package's reference so the rest
of the notebook still runs.

The pattern is CS231n's: a relative error with the target stated ("expect < 1e-6").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

TOL = 1e-6  # relative error accepted against the reference, in float64

__all__ = [
    "TOL",
    "CheckFailed",
    "CheckReport",
    "rel_error",
    "reference",
    "use_or_reference",
    "call_or_reference",
    "check_video_global",
    "loss_fns_with_fallback",
    "check_segments_with_noun",
    "check_gold_clip_frames",
    "check_interest_mask",
    "check_idf_table",
    "check_token_weights",
    "check_sentence_nce",
    "check_token_video_scores",
    "check_token_nce",
    "check_pair_scores",
    "check_hard_negatives",
    "check_fusion_nce",
    "check_train_step",
    "check_recall_at_k",
    "overfit_one_batch",
]


class CheckFailed(AssertionError):
    """A check found a mistake; the message lists every failed probe with a hint."""


def rel_error(x: Any, y: Any) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise (CS231n's relative error).

    Accepts tensors, numpy arrays, lists and numbers. Different shapes or a NaN give inf, so a
    comparison `rel_error(a, b) < tol` is False whenever the two cannot be equal.
    """
    a = torch.as_tensor(_plain(x), dtype=torch.float64)
    b = torch.as_tensor(_plain(y), dtype=torch.float64)
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    if torch.isnan(a).any() or torch.isnan(b).any():
        return math.inf
    same = a == b  # equal infinities count as equal
    diff = torch.where(same, 0.0, (a - b).abs())
    denom = torch.where(same, 1.0, (a.abs() + b.abs()).clamp_min(1e-8))
    err = (diff / denom).max()
    return float(err) if torch.isfinite(err) else math.inf


def _plain(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return x


@dataclass
class CheckReport:
    """What one `check_*` call found: one line per probe, and the failures with their hints."""

    name: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def ok(self, line: str) -> None:
        self.lines.append(f"  ok    {line}")

    def fail(self, line: str, hint: str) -> None:
        self.lines.append(f"  FAIL  {line}")
        self.failures.append(f"{line}\n        -> {hint}")

    def __str__(self) -> str:
        head = f"{self.name}: {'all checks passed' if self.passed else 'some checks FAILED'}"
        return "\n".join([head, *self.lines])

    def finish(self, verbose: bool) -> CheckReport:
        if verbose:
            print(self)
        if self.failures:
            raise CheckFailed(
                f"{self.name} failed {len(self.failures)} check(s):\n- "
                + "\n- ".join(self.failures)
            )
        return self


def _call(report: CheckReport, probe: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run the learner's fn; NotImplementedError propagates, any other error becomes a failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:  # the learner's code: report it, keep probing
        report.fail(probe, f"your function raised {type(e).__name__}: {e}")
        return None


def _close(report: CheckReport, probe: str, got: Any, want: Any, tol: float = TOL) -> bool:
    err = rel_error(got, want)
    if err < tol:
        report.ok(f"{probe}: relative error {err:.1e} (expect < {tol:.0e})")
        return True
    return False


def _diagnose(got: Any, candidates: Sequence[tuple[Any, str]], default: str) -> str:
    """The hint of the first known mistake whose output equals `got`, else `default`."""
    for value, hint in candidates:
        if value is not None and rel_error(got, value) < 1e-6:
            return hint
    return default


def _shape_of(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return str(tuple(x.shape))
    return type(x).__name__


def _is_tensor(report: CheckReport, probe: str, got: Any, shape: tuple[int, ...]) -> bool:
    if not isinstance(got, torch.Tensor):
        report.fail(
            probe,
            f"expected a torch.Tensor of shape {shape} but got {type(got).__name__}: "
            "return the tensor itself (no .item(), no .tolist())",
        )
        return False
    if tuple(got.shape) != shape:
        report.fail(probe, f"expected shape {shape} but got {_shape_of(got)}")
        return False
    return True


def _gradcheck(report: CheckReport, fn: Callable, inputs: tuple, probe: str = "gradcheck") -> None:
    """Compare autograd's gradients with finite differences (float64 inputs)."""
    try:
        ok = torch.autograd.gradcheck(
            fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False
        )
    except NotImplementedError:
        raise
    except Exception as e:
        ok = False
        detail = f"{type(e).__name__}: {e}"
    else:
        detail = "autograd's gradient differs from finite differences"
    if ok:
        report.ok(f"{probe}: gradients match finite differences")
    else:
        report.fail(
            probe,
            f"{detail.splitlines()[0]}. Keep the computation in torch end to end: no .item(), "
            ".detach(), .numpy() or float() inside, and no in-place edits of the inputs",
        )


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------- fallbacks


_REFERENCE_HOME = {
    "sentence_nce": "losses",
    "token_video_scores": "losses",
    "token_nce": "losses",
    "fusion_nce": "losses",
    "pair_scores": "cascade",
    "hard_negatives": "cascade",
}


def reference(name: str) -> Callable:
    """The kit's own version of exercise `name` (what a fallback uses; what the checks compare to)."""
    import importlib

    if name in _REFERENCE_HOME:
        return getattr(importlib.import_module(f"taco_lite.{_REFERENCE_HOME[name]}"), name)
    others: dict[str, Callable] = {
        "segments_with_noun": _ref_segments_with_noun,
        "gold_clip_frames": _ref_gold_clip_frames,
        "interest_mask": _ref_interest_mask,
        "idf_table": _ref_idf_table,
        "token_weights": _ref_token_weights,
        "video_global": _ref_video_global,
        "train_step": _reference_step,
        "recall_at_k": _ref_recall_at_k,
    }
    if name not in others:
        known = sorted([*_REFERENCE_HOME, *others])
        raise ValueError(f"no reference for {name!r}; known exercises: {known}")
    return others[name]


def _reference(name: str) -> Callable:
    return reference(name)


def call_or_reference(fn: Callable, name: str, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), or the reference's result with a note if fn is not implemented yet.

    For cells that use one result of an exercise (world look-ups, weights of one caption).
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        print(
            f"note: your {name} is not implemented yet - using the reference "
            "so the rest of the notebook runs"
        )
        return reference(name)(*args, **kwargs)


def _ref_interest_mask(tags: Sequence[str], pos_tags: Any) -> list[bool]:
    from taco_lite.text.pos import interest_mask

    return interest_mask(tags, frozenset(pos_tags))


def _ref_idf_table(token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    from taco_lite.text.pos import idf_table

    return dict(idf_table(token_lists))


def _ref_token_weights(
    tokens: Sequence[str], tags: Sequence[str], idf: Any, pos_tags: Any
) -> list[float]:
    from taco_lite.text.pos import token_weights

    return token_weights(tokens, tags, idf, frozenset(pos_tags))


def _ref_video_global(video_tokens: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    from taco_lite.model import TacoModel

    return TacoModel.global_video(video_tokens, video_mask)


def _ref_recall_at_k(sim: torch.Tensor, k: int) -> float:
    from taco_lite.metrics import retrieval_metrics

    return retrieval_metrics(sim)[f"R{k}"]


def _probe_args(name: str) -> tuple:
    """Tiny valid inputs for each contract function (to see whether it is implemented)."""
    g = _gen(0)
    B, n, m, d = 3, 4, 2, 5
    if name == "sentence_nce":
        return torch.randn(B, d, generator=g), torch.randn(B, d, generator=g)
    if name == "token_video_scores":
        return (
            torch.randn(B, n, d, generator=g),
            torch.randn(B, m, d, generator=g),
            torch.ones(B, m, dtype=torch.bool),
        )
    if name == "token_nce":
        return torch.randn(B, n, B, generator=g), torch.full((B, n), 1.0 / n)
    if name == "pair_scores":
        return (
            torch.randn(B, B, generator=g),
            torch.randn(B, n, B, generator=g),
            torch.ones(B, n, dtype=torch.bool),
        )
    if name == "hard_negatives":
        return torch.randn(B, B, generator=g), 1
    if name == "fusion_nce":
        return (torch.randn(2 * B, 3, generator=g),)
    raise ValueError(f"no probe inputs for {name!r}")


def use_or_reference(fn: Callable | None, name: str, verbose: bool = True) -> Callable:
    """The learner's `fn` if it runs, else the package's reference `name`, with a note.

    Why: later cells build on earlier exercises. An unfinished exercise (NotImplementedError)
    must not stop the rest of the notebook, so they get the reference and a printed note.
    A function that runs but raises another error also falls back, with the error shown.
    """
    reference = _reference(name)
    if fn is None:
        return reference
    try:
        fn(*_probe_args(name))
    except NotImplementedError:
        if verbose:
            print(
                f"note: your {name} is not implemented yet - using the reference "
                f"taco_lite.{_REFERENCE_HOME[name]}.{name} so the rest of the notebook runs"
            )
        return reference
    except Exception as e:
        if verbose:
            print(
                f"note: your {name} raised {type(e).__name__}: {e}\n"
                f"      using the reference taco_lite.{_REFERENCE_HOME[name]}.{name} instead"
            )
        return reference
    if verbose:
        print(f"using your {name}")
    return fn


def loss_fns_with_fallback(verbose: bool = True, **fns: Callable | None) -> Any:
    """A `train.LossFns` of the learner's functions, each replaced by the reference if unfinished.

    Example: `loss_fns_with_fallback(sentence_nce=my_sentence_nce, token_nce=my_token_nce)`.
    """
    from taco_lite.train.step import LossFns

    chosen = {name: use_or_reference(fn, name, verbose) for name, fn in fns.items()}
    return LossFns(**chosen)


# ------------------------------------------------------------------------ 00: the toy world


def _ref_segments_with_noun(world: Any, noun: str, split: str) -> list[int]:
    return [i for i in world.split(split) if noun in world.segments[i].nouns]


def _ref_gold_clip_frames(world: Any, seg_id: int, word: str) -> list[int]:
    seg = world.segments[seg_id]
    out: set[int] = set()
    for w, frames in zip(seg.words, seg.gold_frames, strict=True):
        if w.lower() == word.lower():
            out.update(seg.start + f for f in frames)
    return sorted(out)


def check_segments_with_noun(fn: Callable, world: Any, verbose: bool = True) -> CheckReport:
    """Exercise 00.1: `fn(world, noun, split) -> list[int]` of segment ids naming `noun`."""
    report = CheckReport("segments_with_noun")
    for noun, split in (("ball", "train"), ("star", "test"), ("cube", "val")):
        probe = f"{noun!r} in {split!r}"
        got = _call(report, probe, fn, world, noun, split)
        if got is None:
            continue
        want = _ref_segments_with_noun(world, noun, split)
        got_list = sorted(int(i) for i in got)
        if got_list == want:
            report.ok(f"{probe}: {len(want)} segments, all correct")
            continue
        everywhere = sorted(
            i for i in range(len(world.segments)) if noun in world.segments[i].nouns
        )
        by_caption = [i for i in world.split(split) if noun in world.segments[i].caption.split()]
        if got_list == everywhere:
            hint = "you searched every split: keep only world.split(split)"
        elif got_list == sorted(by_caption):
            hint = (
                "you searched the caption text; use segment.nouns (canonical nouns): a caption "
                "may say 'balls' or a synonym"
            )
        else:
            hint = (
                f"expected {len(want)} segment ids, got {len(got_list)}; first expected: {want[:5]}"
            )
        report.fail(probe, hint)
    return report.finish(verbose)


def check_gold_clip_frames(fn: Callable, world: Any, verbose: bool = True) -> CheckReport:
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
        if got is None:
            continue
        want = _ref_gold_clip_frames(world, seg_id, word)
        got_list = sorted(int(f) for f in got)
        if got_list == want:
            report.ok(f"{probe}: frames {want}")
            continue
        relative = sorted(f - seg.start for f in want)
        hint = (
            "these are frames relative to the segment; add segment.start to get clip frames"
            if got_list == relative
            else f"expected {want}, got {got_list}"
        )
        report.fail(probe, hint)
    if tried == 0:
        report.fail("probes", "no probe segment has a grounded word; is this the shipped world?")
    return report.finish(verbose)


# ---------------------------------------------------------------------------- 01: POS, idf


def check_interest_mask(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 01.1: `fn(tags, pos_tags) -> list[bool]`, True where the tag is in pos_tags."""
    report = CheckReport("interest_mask")
    tags = ["DET", "ADJ", "NOUN", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
    cases = [
        ({"NOUN", "VERB"}, "NOUN and VERB"),
        ({"DET", "ADP"}, "DET and ADP (Table 4)"),
        (set(), "an empty set"),
    ]
    for pos_tags, label in cases:
        probe = f"pos_tags = {label}"
        got = _call(report, probe, fn, list(tags), set(pos_tags))
        if got is None:
            continue
        want = [t in pos_tags for t in tags]
        got_list = [bool(x) for x in got] if hasattr(got, "__iter__") else got
        if got_list == want:
            report.ok(f"{probe}: {sum(want)} of {len(tags)} tokens")
        elif got_list == [t in {"NOUN", "VERB"} for t in tags]:
            report.fail(probe, "you hard-coded NOUN and VERB: test `tag in pos_tags` instead")
        elif isinstance(got_list, list) and len(got_list) != len(tags):
            report.fail(probe, f"expected one bool per token ({len(tags)}), got {len(got_list)}")
        else:
            report.fail(probe, f"expected {want}, got {got_list}")
    return report.finish(verbose)


def check_idf_table(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 01.2: `fn(token_lists) -> dict word -> idf` (TACO_SPEC §3, with the floor)."""
    from taco_lite.text.pos import IDF_FLOOR, idf_table

    report = CheckReport("idf_table")
    docs = [
        ["the", "red", "ball", "spins", "the", "ball"],
        ["the", "blue", "cube", "falls"],
        ["a", "red", "cube", "spins"],
        ["the", "ball", "falls"],
        ["the", "star", "grows"],
    ]
    probe = "five captions"
    got = _call(report, probe, fn, [list(d) for d in docs])
    if got is not None:
        want = dict(idf_table(docs))
        if not isinstance(got, dict) or set(got) != set(want):
            missing = sorted(set(want) - set(got)) if isinstance(got, dict) else "all"
            report.fail(probe, f"expected one entry per distinct word; missing {missing}")
        else:
            words = sorted(want)
            g, w = [float(got[k]) for k in words], [want[k] for k in words]
            if not _close(report, probe, g, w):
                D = len(docs)
                counts: dict[str, int] = {}
                for doc in docs:
                    for t in doc:
                        counts[t] = counts.get(t, 0) + 1
                df = {k: sum(k in doc for doc in docs) for k in words}
                cands = [
                    ([max(math.log(D / (1 + counts[k])), IDF_FLOOR) for k in words],
                     "you counted occurrences; df counts *captions* holding the word (use a set per caption)"),
                    ([math.log(D / (1 + df[k])) for k in words],
                     f"no floor: 'the' is in 4 of 5 captions, log(5/5) = 0 and a word in every "
                     f"caption would go negative. Use max(idf, IDF_FLOOR) with IDF_FLOOR = {IDF_FLOOR}"),
                    ([max(math.log(D / df[k]), IDF_FLOOR) for k in words],
                     "the denominator is 1 + df(word), not df(word)"),
                    ([max(math.log10(D / (1 + df[k])), IDF_FLOOR) for k in words],
                     "use the natural log (math.log), not log10"),
                ]  # fmt: skip
                report.fail(
                    probe,
                    _diagnose(g, cands, "compare with idf = max(log(|D| / (1 + df)), IDF_FLOOR)"),
                )
    return report.finish(verbose)


def check_token_weights(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 01.3: `fn(tokens, tags, idf, pos_tags) -> list[float]`, w[i, p] of Eq. 4."""
    from taco_lite.text.pos import token_weights

    report = CheckReport("token_weights")
    idf = {"the": 0.1, "red": 1.2, "ball": 0.7, "spins": 1.5, "on": 0.3, "table": 2.0, ".": 0.01}
    tokens = ["the", "red", "ball", "spins", "on", "the", "table", "."]
    tags = ["DET", "ADJ", "NOUN", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
    nv = {"NOUN", "VERB"}
    probe = "a caption with nouns and a verb"
    got = _call(report, probe, fn, list(tokens), list(tags), dict(idf), set(nv))
    if got is not None:
        want = token_weights(tokens, tags, idf, nv)
        g = [float(x) for x in got] if hasattr(got, "__iter__") else got
        if not _close(report, probe, g, want):
            raw = [idf[t] if tag in nv else 0.0 for t, tag in zip(tokens, tags, strict=True)]
            flat = [1.0 / 3 if tag in nv else 0.0 for tag in tags]
            everything = [idf[t] / sum(idf[x] for x in tokens) for t in tokens]
            cands = [
                (
                    raw,
                    "not renormalised: divide each text's weights by their sum, so they sum to 1",
                ),
                (flat, "the weights ignore idf: use idf[token] for tokens of interest"),
                (
                    everything,
                    "every token got a weight: only tokens of interest (tag in pos_tags) do",
                ),
            ]
            report.fail(probe, _diagnose(g, cands, f"expected {[round(x, 4) for x in want]}"))
    probe = "a caption without tokens of interest"
    got = _call(report, probe, fn, ["the", "red", "."], ["DET", "ADJ", "PUNCT"], dict(idf), set(nv))
    if got is not None:
        g = [float(x) for x in got]
        if any(math.isnan(x) for x in g):
            report.fail(probe, "NaN on all-zero weights: 0 / 0. Return all zeros when the sum is 0")
        elif g == [0.0, 0.0, 0.0]:
            report.ok(f"{probe}: all zeros, no NaN")
        else:
            report.fail(probe, f"expected [0.0, 0.0, 0.0], got {g}")
    probe = "pos_tags = {'DET', 'ADP'}"
    got = _call(report, probe, fn, list(tokens), list(tags), dict(idf), {"DET", "ADP"})
    if got is not None:
        want = token_weights(tokens, tags, idf, {"DET", "ADP"})
        g = [float(x) for x in got]
        if not _close(report, probe, g, want):
            report.fail(probe, "use the pos_tags argument, not a fixed set of tags")
    return report.finish(verbose)


# ------------------------------------------------------------------------------- 02: L1


def _ce_rows(logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, torch.arange(logits.shape[0]))


def check_sentence_nce(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 02.1: `fn(text_global, video_global, tau=1.0, symmetric=False) -> scalar` (Eq. 3)."""
    from taco_lite.losses import sentence_nce

    report = CheckReport("sentence_nce")
    g = _gen(2)
    t, v = (
        torch.randn(5, 8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    tau = 0.5
    probe = "L1 against the reference (B=5, tau=0.5)"
    got = _call(report, probe, fn, t, v, tau=tau)
    if got is not None and _is_tensor(report, probe, got, ()):
        if not _close(report, probe, got, sentence_nce(t, v, tau=tau)):
            sim = t @ v.T
            cands = [
                (_ce_rows(sim.T / tau),
                 "softmax over the wrong axis: for each text i, Eq. 3 normalises over the videos j "
                 "(rows of text_global @ video_global.T, dim=1); you normalised over texts (video-to-text)"),
                (_ce_rows(sim), "your loss ignores tau: divide the similarities by tau before the softmax"),
                (_ce_rows(sim * tau), "you multiplied by tau; Eq. 3 divides the similarities by tau"),
                (_ce_rows(sim / tau) * 5, "you summed over the texts; Eq. 3 takes the mean over i"),
                (-_ce_rows(sim / tau), "the sign is flipped: the loss is -log softmax (positive)"),
                (0.5 * (_ce_rows(sim / tau) + _ce_rows(sim.T / tau)),
                 "you averaged both directions although symmetric=False: Eq. 3 is text-to-video only"),
                (F.cross_entropy(sim / tau, torch.zeros(5, dtype=torch.long)),
                 "the positive of text i is video i (the diagonal), not column 0"),
            ]  # fmt: skip
            report.fail(
                probe,
                _diagnose(got, cands, "compare with mean_i -log softmax_j(s1(i, :) / tau)[i]"),
            )
    probe = "symmetric=True"
    got = _call(report, probe, fn, t, v, tau=tau, symmetric=True)
    if got is not None and _is_tensor(report, probe, got, ()):
        if not _close(report, probe, got, sentence_nce(t, v, tau=tau, symmetric=True)):
            report.fail(
                probe,
                "symmetric=True should average the text-to-video and video-to-text losses (0.5 each)",
            )
    probe = "large similarities (|s1| ~ 1e4): stays finite"
    big_t, big_v = 100 * t, 100 * v
    got = _call(report, probe, fn, big_t, big_v, tau=1.0)
    if got is not None:
        if (
            isinstance(got, torch.Tensor)
            and bool(torch.isfinite(got).all())
            and _close(report, probe, got, sentence_nce(big_t, big_v))
        ):
            pass
        else:
            report.fail(
                probe,
                "overflow: exp of large similarities gives inf/NaN. Use F.log_softmax or "
                "F.cross_entropy (they subtract the max first) instead of log(softmax(...))",
            )
    small = (t[:3, :4].clone().requires_grad_(), v[:3, :4].clone().requires_grad_())
    _gradcheck(report, lambda a, b: fn(a, b, tau=0.7), small)
    return report.finish(verbose)


def check_video_global(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 02.2: `fn(video_tokens (B, m, d), video_mask (B, m)) -> x_bar (B, d)` (§2)."""
    report = CheckReport("video_global")
    g = _gen(12)
    B, m, d = 3, 5, 4
    x = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    want = _ref_video_global(x, mask)
    probe = "masked mean against the reference (B=3, m=5, padded videos)"
    got = _call(report, probe, fn, x, mask)
    if got is not None and _is_tensor(report, probe, got, (B, d)):
        if not _close(report, probe, got, want):
            cands = [
                (x.mean(1), "padded frames were averaged in: average over valid frames only (video_mask)"),
                ((x * mask[:, :, None]).sum(1) / m, "you divided by m; divide by the number of valid frames of each video"),
                ((x * mask[:, :, None]).sum(1), "you summed; x_bar is the *mean* over valid frames"),
            ]  # fmt: skip
            report.fail(
                probe, _diagnose(got, cands, "compare with (x * mask).sum(1) / mask.sum(1)")
            )
    probe = "padded frames hold huge values: result unchanged"
    noisy = x.clone()
    noisy[~mask] = 1e6
    got = _call(report, probe, fn, noisy, mask)
    if got is not None and isinstance(got, torch.Tensor):
        if not _close(report, probe, got, want):
            report.fail(
                probe,
                "your mean ignores video_mask: padded frames changed the result. Select "
                "them away with torch.where(mask[..., None], x, 0) before summing",
            )
    _gradcheck(report, lambda a: fn(a, mask), (x.clone().requires_grad_(),))
    return report.finish(verbose)


# ------------------------------------------------------------------------------- 03: L2


def _tvs_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    B, n, m, d = 3, 4, 5, 6  # all different, so a permuted output shows
    text = torch.randn(B, n, d, generator=g, dtype=torch.float64)
    video = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    return text, video, mask


def check_token_video_scores(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 03.1: `fn(text_tokens, video_tokens, video_mask) -> token_scores (B, n, B)`."""
    from taco_lite.losses import token_video_scores

    report = CheckReport("token_video_scores")
    text, video, mask = _tvs_inputs(3)
    B, n = text.shape[:2]
    probe = "s(i, p, j) against the reference (B=3, n=4, m=5, padded videos)"
    got = _call(report, probe, fn, text, video, mask)
    if got is not None and _is_tensor(report, probe, got, (B, n, B)):
        if not _close(report, probe, got, token_video_scores(text, video, mask)):
            raw = torch.einsum("ipd,jkd->ipjk", text, video)  # (B, n, B, m)
            w = mask[None, None].double()
            cands = [
                (raw.amax(-1), "your scores ignore video_mask: padded frames changed the result. "
                               "Fill padded frames with -inf before the max over frames"),
                ((raw * w).sum(-1) / w.sum(-1), "you averaged over frames; s(i, p, j) is the *max* over valid frames"),
                ((raw * w).sum(-1), "you summed over frames; s(i, p, j) is the *max* over valid frames"),
                (raw.masked_fill(~mask[None, None], float("-inf")).amax(-1).transpose(0, 2),
                 "text and video are swapped: out[i, p, j] is token p of text i against video j"),
            ]  # fmt: skip
            report.fail(
                probe,
                _diagnose(
                    got,
                    cands,
                    "compare with max over valid k of text_tokens[i, p] . video_tokens[j, k]",
                ),
            )
    elif got is not None and isinstance(got, torch.Tensor) and got.shape == (B, B, n):
        report.fail(
            probe, "axes in the wrong order: return (B, n, B), token p of text i against video j"
        )
    probe = "padded frames hold huge values: result unchanged"
    noisy = video.clone()
    noisy[~mask] = 1e3
    got = _call(report, probe, fn, text, noisy, mask)
    if got is not None and isinstance(got, torch.Tensor):
        if _close(report, probe, got, token_video_scores(text, video, mask)):
            pass
        else:
            report.fail(
                probe,
                "your loss ignores video_mask: padded frames changed the result. "
                "Use scores.masked_fill(~video_mask[None, None], float('-inf')) before the max",
            )
    probe = "all real scores negative: padding must not win with 0"
    neg_text = -text.abs()
    pos_video = video.abs().masked_fill(~mask[:, :, None], 0.0)
    got = _call(report, probe, fn, neg_text, pos_video, mask)
    if got is not None and isinstance(got, torch.Tensor):
        want = token_video_scores(neg_text, pos_video, mask)
        if not _close(report, probe, got, want):
            zeroed = torch.einsum("ipd,jkd->ipjk", neg_text, pos_video).amax(-1)
            report.fail(
                probe,
                _diagnose(
                    got,
                    [
                        (
                            zeroed,
                            "padded frames score 0, and 0 beats every negative real score: mask with -inf, "
                            "not by multiplying with the mask",
                        )
                    ],
                    "compare with the reference on negative scores",
                ),
            )
    small = _tvs_inputs(4)
    inputs = (
        small[0][:, :2, :3].clone().requires_grad_(),
        small[1][:, :, :3].clone().requires_grad_(),
    )
    _gradcheck(report, lambda a, b: fn(a, b, small[2]), inputs)
    return report.finish(verbose)


def _tnce_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    B, n = 4, 5
    scores = torch.randn(B, n, B, generator=g, dtype=torch.float64)
    raw = torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1
    keep = torch.tensor(
        [[0, 1, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=torch.bool
    )
    w = torch.where(keep, raw, 0.0)
    return scores, w / w.sum(1, keepdim=True)


def check_token_nce(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 03.2: `fn(token_scores, token_weights, tau=1.0) -> scalar` (L2, Eq. 4)."""
    from taco_lite.losses import token_nce

    report = CheckReport("token_nce")
    scores, w = _tnce_inputs(5)
    B, n = w.shape
    tau = 0.5
    probe = "L2 against the reference (B=4, n=5, tau=0.5)"
    got = _call(report, probe, fn, scores, w, tau=tau)
    if got is not None and _is_tensor(report, probe, got, ()):
        if not _close(report, probe, got, token_nce(scores, w, tau=tau)):
            idx = torch.arange(B)

            def l2(logp: torch.Tensor, weights: torch.Tensor, denom: float) -> torch.Tensor:
                return -(weights * logp[idx, :, idx]).sum() / denom

            uniform = (w > 0).double() / (w > 0).sum(1, keepdim=True)
            cands = [
                (l2(F.log_softmax(scores / tau, dim=0), w, B),
                 "softmax over the wrong axis: over texts (dim=0) instead of videos j (dim=2)"),
                (l2(F.log_softmax(scores / tau, dim=1), w, B),
                 "softmax over the wrong axis: over tokens (dim=1) instead of videos j (dim=2)"),
                (l2(F.log_softmax(scores, dim=2), w, B), "your loss ignores tau: divide token_scores by tau"),
                (l2(F.log_softmax(scores * tau, dim=2), w, B), "you multiplied by tau; Eq. 4 divides by tau"),
                (l2(F.log_softmax(scores / tau, dim=2), w, 1), "you summed over texts; divide by the number of texts with a token of interest"),
                (l2(F.log_softmax(scores / tau, dim=2), w, B * n), "you divided by B * n; divide by the number of texts with a token of interest"),
                (l2(F.log_softmax(scores / tau, dim=2), uniform, B), "the idf weights are ignored: weigh each token's loss by token_weights[i, p]"),
                (l2(F.log_softmax(scores / tau, dim=2), torch.ones_like(w), B),
                 "every token counts, padding and specials too: weigh each token's loss by token_weights[i, p]"),
            ]  # fmt: skip
            report.fail(
                probe,
                _diagnose(
                    got,
                    cands,
                    "compare with sum_i,p w[i,p] (-log softmax_j(s(i,p,:)/tau)[i]) / #texts with tokens",
                ),
            )
    probe = "one text without tokens of interest"
    w2 = w.clone()
    w2[1] = 0.0
    got = _call(report, probe, fn, scores, w2, tau=tau)
    if got is not None and isinstance(got, torch.Tensor):
        want = token_nce(scores, w2, tau=tau)
        if not _close(report, probe, got, want):
            hint = _diagnose(got, [(want * 3 / 4, "you divided by B; divide by the number of texts with "
                                                  "at least one token of interest (here 3 of 4)")],
                             "a text with all-zero weights adds nothing and is not counted")  # fmt: skip
            if not bool(torch.isfinite(got).all()):
                hint = (
                    "NaN on all-zero weights: a text without tokens of interest must add 0, not 0/0"
                )
            report.fail(probe, hint)
    probe = "no text has a token of interest: exactly 0, no NaN"
    got = _call(report, probe, fn, scores, torch.zeros_like(w), tau=tau)
    if got is not None and isinstance(got, torch.Tensor):
        if bool(torch.isfinite(got).all()) and float(got) == 0.0:
            report.ok(f"{probe}: {float(got)}")
        else:
            report.fail(
                probe,
                f"got {float(got)}: NaN on all-zero weights. Divide by the number of texts "
                "with a token of interest clamped to at least 1 (.clamp_min(1))",
            )
    probe = "padded tokens hold -inf scores with weight 0: no NaN"
    s3 = scores.clone()
    s3[:, 0, :] = float("-inf")  # [CLS] position: weight 0 everywhere
    got = _call(report, probe, fn, s3, w, tau=tau)
    if got is not None and isinstance(got, torch.Tensor):
        if bool(torch.isfinite(got).all()) and _close(
            report, probe, got, token_nce(scores, w, tau=tau)
        ):
            pass
        else:
            report.fail(
                probe,
                "0 * inf = NaN: a token with weight 0 may hold any score. Replace the scores of "
                "weight-0 tokens (torch.where(token_weights > 0, ...)) before the log-softmax",
            )
    small_s, small_w = _tnce_inputs(6)
    _gradcheck(report, lambda s: fn(s, small_w, tau=0.7), (small_s.clone().requires_grad_(),))
    return report.finish(verbose)


# ------------------------------------------------------------------- 04: cascade and L3


def check_pair_scores(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 04.1: `fn(sim_global, token_scores, token_mask) -> pair_scores (B, B)`."""
    from taco_lite.cascade import pair_scores

    report = CheckReport("pair_scores")
    g = _gen(7)
    B, n = 4, 6
    sim = torch.randn(B, B, generator=g, dtype=torch.float64)
    tok = torch.randn(B, n, B, generator=g, dtype=torch.float64)
    mask = torch.rand(B, n, generator=g) < 0.5
    mask[:, 1] = True
    # the package computes in float32; the float64 formula is the reference here
    want = sim + torch.where(mask[:, :, None], tok, 0.0).sum(dim=1)  # (B, B)
    assert rel_error(want, pair_scores(sim, tok, mask)) < 1e-5
    probe = "a(i, j) against the reference (B=4, n=6)"
    got = _call(report, probe, fn, sim, tok, mask)
    if got is not None and _is_tensor(report, probe, got, (B, B)):
        if not _close(report, probe, got, want):
            masked = torch.where(mask[:, :, None], tok, 0.0)
            cands = [
                (sim + tok.sum(1), "tokens outside token_mask were added: sum only over tokens of interest P_i"),
                (masked.sum(1), "s1 is missing: a(i, j) = s1(i, j) + sum over P_i of s(i, p, j)"),
                (sim + masked.sum(1) / mask.sum(1, keepdim=True), "you averaged the token scores; the paper's sum is unweighted and not averaged"),
                (sim + masked.sum(1).T, "the token sum is transposed: row i is text i, column j video j"),
            ]  # fmt: skip
            report.fail(
                probe,
                _diagnose(got, cands, "compare with sim_global + (token_scores * mask).sum over p"),
            )
    probe = "tokens outside the mask hold huge values: result unchanged"
    noisy = tok.clone()
    noisy[~mask] = float("inf")
    got = _call(report, probe, fn, sim, noisy, mask)
    if got is not None and isinstance(got, torch.Tensor):
        if not _close(report, probe, got, want):
            report.fail(
                probe,
                "tokens outside token_mask leaked in (inf * 0 = NaN when multiplying by the "
                "mask): select with torch.where(token_mask[:, :, None], token_scores, 0)",
            )
    return report.finish(verbose)


def check_hard_negatives(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 04.2: `fn(pair_scores, k) -> (videos_for_text, texts_for_video)`, (B, k) each."""
    from taco_lite.cascade import hard_negatives

    report = CheckReport("hard_negatives")
    g = _gen(8)
    B, k = 6, 3
    a = torch.randn(B, B, generator=g, dtype=torch.float64)
    probe = f"top-{k} negatives against the reference (B={B})"
    got = _call(report, probe, fn, a, k)
    if got is not None:
        if not (isinstance(got, tuple | list) and len(got) == 2):
            report.fail(probe, "return a tuple (videos_for_text, texts_for_video)")
        else:
            vft, tfv = got
            want_v, want_t = hard_negatives(a, k)
            ok_shapes = _is_tensor(report, probe + " videos_for_text", vft, (B, k)) and _is_tensor(
                report, probe + " texts_for_video", tfv, (B, k)
            )
            if ok_shapes:
                if vft.dtype != torch.long or tfv.dtype != torch.long:
                    report.fail(
                        probe, "return LongTensors of indices (topk(...).indices is already long)"
                    )
                diag_v = bool((vft == torch.arange(B)[:, None]).any())
                diag_t = bool((tfv == torch.arange(B)[:, None]).any())
                if torch.equal(vft, want_v) and torch.equal(tfv, want_t):
                    report.ok(f"{probe}: identical indices, best first")
                elif diag_v or diag_t:
                    report.fail(
                        probe,
                        "the positive is among the negatives: exclude the diagonal (i == j), "
                        "e.g. fill it with -inf before topk",
                    )
                elif torch.equal(tfv, _rows_topk(a, k)):
                    report.fail(
                        probe,
                        "texts_for_video[j] must rank the texts i of column j (use pair_scores.T), "
                        "not row j",
                    )
                elif torch.equal(vft, _rows_topk(-a, k)):
                    report.fail(
                        probe,
                        "you picked the lowest scores: hard negatives are the *highest* a(i, j)",
                    )
                elif torch.equal(vft.sort(1).values, want_v.sort(1).values) and torch.equal(
                    tfv.sort(1).values, want_t.sort(1).values
                ):
                    report.fail(
                        probe, "right negatives, wrong order: return them best first (descending a)"
                    )
                else:
                    report.fail(
                        probe,
                        f"expected videos_for_text[0] = {want_v[0].tolist()}, got {vft[0].tolist()}",
                    )
    probe = "positives score highest (diagonal = 1e6): still excluded"
    a2 = a.clone()
    a2.fill_diagonal_(1e6)
    got = _call(report, probe, fn, a2, B - 1)
    if got is not None and isinstance(got, tuple | list) and len(got) == 2:
        vft, tfv = got
        if (
            isinstance(vft, torch.Tensor)
            and isinstance(tfv, torch.Tensor)
            and vft.shape == (B, B - 1)
        ):
            bad = bool(
                (vft == torch.arange(B)[:, None]).any() or (tfv == torch.arange(B)[:, None]).any()
            )
            if bad:
                report.fail(
                    probe, "the positive is among the negatives: exclude the diagonal before topk"
                )
            else:
                report.ok(f"{probe}: k = B-1 = {B - 1}, the positive never returned")
        else:
            report.fail(probe, f"with k = B-1 expected shape {(B, B - 1)}, got {_shape_of(vft)}")
    return report.finish(verbose)


def _rows_topk(a: torch.Tensor, k: int) -> torch.Tensor:
    """Row-wise top-k with the diagonal excluded (helper of the diagnosis)."""
    masked = a.clone()
    masked.fill_diagonal_(float("-inf"))
    return masked.topk(k, dim=1).indices


def check_fusion_nce(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 04.3: `fn(logits (A, 1 + k)) -> scalar`, positive in column 0 (L3, Eqs. 5-6)."""
    from taco_lite.losses import fusion_nce

    report = CheckReport("fusion_nce")
    g = _gen(9)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    probe = "L3 against the reference (A=6 anchors, k=3)"
    got = _call(report, probe, fn, logits)
    if got is not None and _is_tensor(report, probe, got, ()):
        if not _close(report, probe, got, fusion_nce(logits)):
            A = logits.shape[0]
            cands = [
                (F.cross_entropy(logits, torch.full((A,), 3)), "the positive is column 0, not the last column"),
                (F.cross_entropy(logits, torch.arange(A) % 4), "the positive is column 0 of every row, not the diagonal"),
                (F.cross_entropy(logits, torch.zeros(A, dtype=torch.long)) * A, "you summed over anchors; L3 is the mean"),
                (-F.cross_entropy(logits, torch.zeros(A, dtype=torch.long)), "the sign is flipped: -log softmax is positive"),
                (F.cross_entropy(logits.T, torch.zeros(4, dtype=torch.long)), "softmax over the wrong axis: each row (anchor) is one softmax"),
            ]  # fmt: skip
            report.fail(
                probe, _diagnose(got, cands, "compare with mean over rows of -log softmax(row)[0]")
            )
    probe = "large logits (~1e4): stays finite"
    got = _call(report, probe, fn, 1e4 * logits)
    if got is not None:
        if not (isinstance(got, torch.Tensor) and bool(torch.isfinite(got).all())
                and _close(report, probe, got, fusion_nce(1e4 * logits))):  # fmt: skip
            report.fail(
                probe, "overflow: use F.log_softmax or F.cross_entropy, not log(softmax(...))"
            )
    _gradcheck(report, fn, (logits[:3].clone().requires_grad_(),))
    return report.finish(verbose)


# --------------------------------------------------------------------------- 05: training


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run the tiny training probes on one thread, then restore the caller's setting.

    Why: on these toy sizes (d = 16, B = 4) every op is tiny and thread hand-offs dominate; on a
    busy 2-core machine 40 steps took 60 s with 2 threads and 0.3 s with 1 (measured).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tiny_setup(seed: int = 0) -> tuple[Any, Any, Any]:
    """A tiny deterministic model, batch and config (dropout 0) for training-step probes."""
    from taco_lite.batch import synthetic_batch
    from taco_lite.config import ModelConfig, TrainConfig
    from taco_lite.model import TacoModel

    mcfg = ModelConfig(d=16, heads=2, text_layers=1, video_layers=1, fusion_layers=1, dropout=0.0,
                       vocab_size=20, frame_size=16, max_frames=8, max_tokens=8)  # fmt: skip
    tcfg = TrainConfig(
        batch_size=4, k_neg=2, steps=10, warmup_steps=0, lr=1e-2, device="cpu", progress=False
    )
    torch.manual_seed(seed)
    model = TacoModel(mcfg)
    batch = synthetic_batch(B=4, n=6, m=4, vocab_size=20, frame_size=16, seed=seed)
    return model, batch, tcfg


def _reference_step(model: Any, batch: Any, tcfg: Any, fns: Any, optimizer: Any) -> float:
    from taco_lite.train.step import taco_step

    optimizer.zero_grad(set_to_none=True)
    out = taco_step(model, batch, tcfg, fns)
    out.total.backward()
    optimizer.step()
    return float(out.total.detach())


def check_train_step(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 05.1: `fn(model, batch, tcfg, fns, optimizer) -> float`, one optimiser step."""
    with _one_thread():
        return _check_train_step(fn, verbose)


def _check_train_step(fn: Callable, verbose: bool) -> CheckReport:
    import copy

    from taco_lite.train.step import LossFns

    report = CheckReport("train_step")
    model, batch, tcfg = _tiny_setup(0)
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(twin.parameters(), lr=0.1)
    for p in model.parameters():  # stale gradients: a step that forgets zero_grad adds them in
        p.grad = torch.full_like(p, 0.5)
    probe = "one step from the same start as the reference (stale gradients present)"
    got = _call(report, probe, fn, model, batch, tcfg, LossFns(), opt)
    if got is not None:
        want = _reference_step(twin, batch, tcfg, LossFns(), opt_ref)
        loss_ok = isinstance(got, int | float | torch.Tensor) and rel_error(float(got), want) < 1e-5
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        params_ref = torch.cat([p.detach().flatten() for p in twin.parameters()])
        start = torch.cat([p.detach().flatten() for p in _tiny_setup(0)[0].parameters()])
        err = rel_error(params, params_ref)
        if err < 1e-5 and loss_ok:
            report.ok(f"{probe}: parameters relative error {err:.1e} (expect < 1e-5)")
        elif rel_error(params, start) == 0.0:
            report.fail(
                probe, "the parameters did not change: call optimizer.step() after backward()"
            )
        elif err >= 1e-5:
            report.fail(
                probe,
                "the update differs from the reference: call optimizer.zero_grad() before "
                "backward(), or old gradients are added in",
            )
        else:
            report.fail(
                probe,
                f"return the total loss as a float (before the step): expected {want:.4f}, got {got}",
            )
    return report.finish(verbose)


def overfit_one_batch(
    step_fn: Callable, fns: Any = None, steps: int = 40, lr: float = 3e-3, seed: int = 0
) -> list[float]:
    """Train the tiny model on one synthetic batch with `step_fn`; returns the loss per step.

    The classic sanity check (CS231n): a correct step must drive the loss of a single small
    batch far down. If it does not, the model, the losses or the step are broken.
    """
    from taco_lite.train.step import LossFns

    with _one_thread():
        model, batch, tcfg = _tiny_setup(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        fns = fns if fns is not None else LossFns()
        return [float(step_fn(model, batch, tcfg, fns, opt)) for _ in range(steps)]


def check_recall_at_k(fn: Callable, verbose: bool = True) -> CheckReport:
    """Exercise 05.2: `fn(sim, k) -> float`, R@k in percent (rows = queries, gt on the diagonal)."""
    from taco_lite.metrics import retrieval_metrics

    report = CheckReport("recall_at_k")
    g = _gen(11)
    sim = torch.randn(20, 20, generator=g, dtype=torch.float64)
    sim += 1.5 * torch.eye(20, dtype=torch.float64)
    for k in (1, 5, 10):
        probe = f"R@{k} on a random 20 x 20 matrix"
        got = _call(report, probe, fn, sim, k)
        if got is None:
            continue
        want = retrieval_metrics(sim)[f"R{k}"]
        if _close(report, probe, float(got), want):
            continue
        cols = retrieval_metrics(sim.T.contiguous())[f"R{k}"]
        cands = [
            (want / 100, "return a percentage (0-100), not a fraction"),
            (cols, "rows are the queries: rank the ground truth sim[i, i] within row i"),
        ]
        report.fail(
            probe, _diagnose(float(got), cands, f"expected {want:.2f}, got {float(got):.2f}")
        )
    probe = "ties with the ground truth count in its favour"
    ties = torch.zeros(6, 6, dtype=torch.float64)
    ties[0, 1] = 1.0  # query 0: one strictly higher candidate -> rank 2
    got = _call(report, probe, fn, ties, 1)
    if got is not None:
        want = retrieval_metrics(ties)["R1"]
        if not _close(report, probe, float(got), want):
            report.fail(
                probe,
                "rank = 1 + number of candidates scoring *strictly* higher than the ground "
                f"truth (TACO_SPEC §6): expected {want:.2f}, got {float(got):.2f}",
            )
    return report.finish(verbose)
