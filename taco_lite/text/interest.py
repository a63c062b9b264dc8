"""Tokens of interest and their idf weights: the w[i, p] of Eq. 4 (docs/method.md §3).

L2 only looks at tokens whose UPOS tag is in `pos_tags` (NOUN and VERB by default; Table 4
ablates the choice) and weighs each by its idf, built from the training captions, so that rare,
informative words count most.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from taco_lite.text.tagging import _UPOS_INDEX, UPOS
from taco_lite.text.tokenizer import tokenize

POS_PRESETS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "det+adp": frozenset({"DET", "ADP"}),
    "noun": frozenset({"NOUN"}),
    "verb": frozenset({"VERB"}),
    "noun+verb": frozenset({"NOUN", "VERB"}),
    "all": frozenset(UPOS[1:]),
}
DEFAULT_POS_TAGS: frozenset[str] = POS_PRESETS["noun+verb"]

IDF_FLOOR = 1e-3


def parse_pos_tags(spec: str | Iterable[str]) -> frozenset[str]:
    """Tokens-of-interest spec -> set of UPOS tags (Table 4's ablation rows).

    Accepts a preset ("noun+verb", "det+adp", "all", "none", ...), tags joined by commas, plus
    signs or spaces ("NOUN,VERB"), or an iterable of either; case does not matter.
    """
    parts: list[str] = []
    for item in [spec] if isinstance(spec, str) else spec:
        if not isinstance(item, str):
            raise ValueError(f"pos_tags entries must be strings, got {item!r}")
        if item.strip().lower() in POS_PRESETS:
            parts.append(item.strip().lower())
        else:
            parts.extend(p for p in re.split(r"[,+\s]+", item.strip()) if p)
    tags: set[str] = set()
    for p in parts:
        if p.lower() in POS_PRESETS:
            tags |= POS_PRESETS[p.lower()]
        elif p.upper() in _UPOS_INDEX and p.upper() != "NONE":
            tags.add(p.upper())
        else:
            raise ValueError(
                f"unknown POS tag {p!r} in pos_tags={spec!r}: use UPOS tags {UPOS[1:]} "
                f"or a preset {sorted(POS_PRESETS)}"
            )
    return frozenset(tags)


def interest_mask(
    tags: Sequence[str], pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS
) -> list[bool]:
    """True where a token's tag is in `pos_tags`: the set P_i of Eq. 4."""
    wanted = pos_tags if isinstance(pos_tags, frozenset) else parse_pos_tags(pos_tags)
    return [t in wanted for t in tags]


# ---------------------------------------------------------------- idf and weights


class IdfTable(dict):
    """word -> idf. A word never seen in training gets the idf of df = 0, log(|D|).

    `num_docs` is |D|. Lookups with `table[word]` are lowercased-key lookups; use
    `idf_table(...)` to build one.
    """

    def __init__(self, values: dict[str, float], num_docs: int):
        super().__init__(values)
        self.num_docs = num_docs
        self.oov = max(math.log(num_docs), IDF_FLOOR)

    def __missing__(self, word: str) -> float:
        return self.oov


def idf_table(token_lists: Iterable[Sequence[str] | str]) -> IdfTable:
    """idf(word) = max(log(|D| / (1 + df(word))), IDF_FLOOR) over the training captions (§3).

    df(word) counts the captions holding the word at least once; `token_lists` holds token lists
    or raw captions. Why the floor: the paper's formula is 0 when df = |D| - 1 and negative when
    a word is in every caption. A negative weight would *reward* the model for ranking that
    token's video lower, flipping the loss, and a text whose only tokens of interest are that
    common would be renormalised by a sum near 0. IDF_FLOOR = 1e-3 keeps every weight positive
    yet about 1000x below an informative word (idf ~ 1 or more), so common words still count
    for almost nothing, as idf intends. Unseen words get log(|D|) (df = 0), also floored.
    """
    docs = [tokenize(t) if isinstance(t, str) else list(t) for t in token_lists]
    if not docs:
        raise ValueError("idf_table needs at least one training caption, got none")
    df: Counter[str] = Counter()
    for tokens in docs:
        df.update({t.lower() for t in tokens})
    D = len(docs)
    return IdfTable({w: max(math.log(D / (1 + c)), IDF_FLOOR) for w, c in df.items()}, D)


def token_weights(
    tokens: Sequence[str],
    tags: Sequence[str],
    idf: dict[str, float],
    pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
) -> list[float]:
    """w[i, p] of Eq. 4 for one text: idf on tokens of interest, renormalised to sum 1.

    A text with no token of interest gets all zeros (it adds nothing to L2), never NaN.
    Specials and padding are not in `tokens`; `data.collate` gives them weight 0.
    """
    if len(tokens) != len(tags):
        raise ValueError(
            f"tokens has {len(tokens)} entries but tags has {len(tags)}: tag the same "
            "tokenization (pos.tag_captions aligns with text.tokenize)"
        )
    mask = interest_mask(tags, pos_tags)
    raw = []
    for tok, keep in zip(tokens, mask, strict=True):
        if not keep:
            raw.append(0.0)
            continue
        word = tok.lower()
        if word in idf:
            raw.append(float(idf[word]))
        elif isinstance(idf, IdfTable):
            raw.append(idf.oov)
        else:
            raise ValueError(
                f"{word!r} is not in the idf table: build the table with pos.idf_table(...), "
                "which gives unseen words log(|D|)"
            )
    if any(w < 0 or not math.isfinite(w) for w in raw):
        raise ValueError(f"idf values must be finite and >= 0, got {raw}")
    total = sum(raw)
    if total <= 0:
        return [0.0] * len(raw)
    return [w / total for w in raw]
