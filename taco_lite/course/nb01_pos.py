"""Feedback for notebook 01 (POS tags, idf): tokens of interest and their weights w[i, p] (Eq. 4)."""

from __future__ import annotations

import math
from collections.abc import Callable

from taco_lite.course.feedback import CheckReport, Part, _call, _expect, _expect_equal

__all__ = ["check_interest_mask", "check_idf_table", "check_token_weights"]


def check_interest_mask(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
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
        mistakes = [
            ([t in {"NOUN", "VERB"} for t in tags],
             "you hard-coded NOUN and VERB: test `tag in pos_tags` instead"),
        ]  # fmt: skip
        hint = (
            f"expected one bool per token ({len(tags)}), got {len(got_list)}"
            if isinstance(got_list, list) and len(got_list) != len(tags)
            else f"expected {want}, got {got_list}"
        )
        ok_line = f"{sum(want)} of {len(tags)} tokens"
        _expect_equal(report, probe, got_list, want, ok_line, hint, mistakes)
    return report.finish(verbose, part)


def check_idf_table(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
    """Exercise 01.2: `fn(token_lists) -> dict word -> idf` (docs/method.md §3, with the floor)."""
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
            D = len(docs)
            counts: dict[str, int] = {}
            for doc in docs:
                for t in doc:
                    counts[t] = counts.get(t, 0) + 1
            df = {k: sum(k in doc for doc in docs) for k in words}
            mistakes = [
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
            hint = "compare with idf = max(log(|D| / (1 + df)), IDF_FLOOR)"
            _expect(report, probe, g, w, hint, mistakes)
    return report.finish(verbose, part)


def check_token_weights(fn: Callable, verbose: bool = True, part: Part = None) -> CheckReport:
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
        raw = [idf[t] if tag in nv else 0.0 for t, tag in zip(tokens, tags, strict=True)]
        flat = [1.0 / 3 if tag in nv else 0.0 for tag in tags]
        everything = [idf[t] / sum(idf[x] for x in tokens) for t in tokens]
        mistakes = [
            (raw, "not renormalised: divide each text's weights by their sum, so they sum to 1"),
            (flat, "the weights ignore idf: use idf[token] for tokens of interest"),
            (everything, "every token got a weight: only tokens of interest (tag in pos_tags) do"),
        ]
        _expect(report, probe, g, want, f"expected {[round(x, 4) for x in want]}", mistakes)
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
        _expect(report, probe, g, want, "use the pos_tags argument, not a fixed set of tags")
    return report.finish(verbose, part)
