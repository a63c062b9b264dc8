"""Words to ids: spaCy's rule-based tokenizer and a word-level vocabulary.

The paper feeds BERT word pieces (docs/method.md §1). The kit trains a small text encoder from
scratch, so a word-level vocabulary is enough, and spaCy's English tokenizer needs no download
(`spacy.blank("en")` is rules only). The tokens here are the same tokens the full English
pipeline tags in `pos.py`, so one POS tag lines up with one id. Like BERT, every encoded text is
`[CLS] w1 .. wk [SEP]`: the encoder reads its sentence summary off [CLS] (L1, L3).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = (PAD, UNK, CLS, SEP)  # ids 0, 1, 2, 3
PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3

_EXAMPLE = "'The red ball spins.'"


@lru_cache(maxsize=1)
def _blank_english():
    """spaCy's English tokenizer alone: rules, no model weights, loaded once per process."""
    import spacy

    return spacy.blank("en")


def check_caption_text(caption: object) -> str:
    """Return `caption` if it is a non-blank string, else raise ValueError saying what to give."""
    if not isinstance(caption, str):
        raise ValueError(
            f"caption must be a string, got {type(caption).__name__} ({caption!r}): "
            f"give a sentence such as {_EXAMPLE}"
        )
    if not caption.strip():
        raise ValueError(f"caption is empty ({caption!r}): give a sentence such as {_EXAMPLE}")
    return caption


# Tokens read back from a tag cache (`text.tagging`): a caption found here is not re-tokenized,
# so a machine without spaCy (a GPU box) can encode captions that a CPU machine tokenized.
_KNOWN_TOKENS: dict[str, tuple[str, ...]] = {}
# The tag cache named by this variable is read on the first unknown caption (its "tokens").
CACHE_ENV = "TACO_TAG_CACHE"
_ENV_CACHES_READ: set[str] = set()


def _tokens_from_env_cache() -> None:
    """Load the tokens stored in the $TACO_TAG_CACHE file, once per path (no spaCy needed)."""
    path = os.environ.get(CACHE_ENV)
    if not path or path in _ENV_CACHES_READ:
        return
    _ENV_CACHES_READ.add(path)
    try:
        tokens = json.loads(Path(path).read_text(encoding="utf-8")).get("tokens", {})
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(tokens, dict):
        remember_tokens({
            c: t for c, t in tokens.items()
            if isinstance(c, str) and isinstance(t, list) and t
            and all(isinstance(w, str) and w for w in t)
        })  # fmt: skip


def remember_tokens(tokens_by_caption: dict[str, Sequence[str]]) -> None:
    """Register captions' tokens (as `tokenize` gave them on a machine with spaCy)."""
    for caption, tokens in tokens_by_caption.items():
        _KNOWN_TOKENS[caption] = tuple(tokens)


def tokenize(caption: str) -> list[str]:
    """Lowercased spaCy tokens of `caption`, e.g. 'The red ball spins.' -> the red ball spins .

    Whitespace tokens (spaCy keeps one for a double space or a newline) are dropped: they carry
    no meaning and `pos.tag_captions` drops them too, so tags stay aligned with these tokens.
    Case is folded *after* tokenizing, so the split is the one spaCy makes on the original text.
    Captions whose tokens came from a tag cache (`remember_tokens`, or the file named by the
    environment variable TACO_TAG_CACHE) skip spaCy.
    """
    check_caption_text(caption)
    known = _KNOWN_TOKENS.get(caption)
    if known is None and os.environ.get(CACHE_ENV):
        _tokens_from_env_cache()
        known = _KNOWN_TOKENS.get(caption)
    if known is not None:
        return list(known)
    return [t.lower_ for t in _blank_english()(caption) if not t.is_space]


class Vocab:
    """Word <-> id table with the specials [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3.

    Words are lowercased. Ids after the specials follow decreasing frequency (ties
    alphabetical), so the same captions always give the same ids.
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(
                f"a Vocab list must start with the specials {list(SPECIALS)}, "
                f"got {words[: len(SPECIALS)]}: build one with Vocab.build(...) or Vocab.from_list"
            )
        if len(set(words)) != len(words):
            dupes = sorted(w for w, c in Counter(words).items() if c > 1)
            raise ValueError(f"a Vocab list must not repeat words, but {dupes[:5]} repeat")
        self.itos: list[str] = words
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str] | str], min_count: int = 1) -> Vocab:
        """Vocabulary of every word seen at least `min_count` times.

        `token_lists` holds token lists (from `tokenize`) or raw captions (tokenized here).
        Rarer words become [UNK] at encoding time.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts: Counter[str] = Counter()
        for item in token_lists:
            tokens = tokenize(item) if isinstance(item, str) else item
            counts.update(t.lower() for t in tokens)
        kept = [w for w, c in counts.items() if c >= min_count and w not in SPECIALS]
        kept.sort(key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.stoi

    def __repr__(self) -> str:
        return f"Vocab({len(self)} entries: {len(SPECIALS)} specials + {len(self) - 4} words)"

    def encode(self, tokens: Sequence[str] | str, max_tokens: int = 32) -> list[int]:
        """`[CLS] w1 .. wk [SEP]` as ids, at most `max_tokens` long (words cut from the end).

        Unknown words map to [UNK]. A raw caption string is tokenized first.
        """
        if isinstance(tokens, (bytes, bytearray)):
            raise ValueError(
                f"encode got bytes ({bytes(tokens[:20])!r}...), not text: decode them first, "
                "e.g. vocab.encode(data.decode('utf-8'))"
            )
        if tokens is None or not isinstance(tokens, (str, Sequence)):
            raise ValueError(
                f"encode takes a caption (str) or a list of words, not {type(tokens).__name__}: "
                f"e.g. vocab.encode({_EXAMPLE})"
            )
        if isinstance(tokens, str):
            tokens = tokenize(tokens)
        bad = [w for w in tokens if not isinstance(w, str)]
        if bad:
            raise ValueError(
                f"encode got a list holding {type(bad[0]).__name__} {bad[0]!r}: every word must "
                "be a str (pass the caption string itself to have it tokenized)"
            )
        if len(tokens) == 0:
            raise ValueError(f"caption is empty (no tokens): give a sentence such as {_EXAMPLE}")
        if max_tokens < 3:
            raise ValueError(
                f"max_tokens={max_tokens} leaves no room for a word: [CLS] and [SEP] take 2, "
                "so use max_tokens >= 3 (the paper uses 30)"
            )
        words = list(tokens)[: max_tokens - 2]
        ids = [self.stoi.get(w.lower(), UNK_ID) for w in words]
        return [CLS_ID, *ids, SEP_ID]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> list[str]:
        """Ids back to words; with `skip_special`, [PAD]/[CLS]/[SEP] are left out ([UNK] stays)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside this vocabulary (0..{len(self.itos) - 1})")
            if skip_special and i in (PAD_ID, CLS_ID, SEP_ID):
                continue
            out.append(self.itos[i])
        return out

    def unknown(self, tokens: Sequence[str] | str) -> list[str]:
        """The words of `tokens` that would become [UNK], in order, each once."""
        if isinstance(tokens, str):
            tokens = tokenize(tokens)
        seen: dict[str, None] = {}
        for t in tokens:
            w = t.lower()
            if w not in self.stoi:
                seen.setdefault(w, None)
        return list(seen)

    def to_list(self) -> list[str]:
        """Plain strings, so a checkpoint can store the vocabulary under weights_only=True."""
        return list(self.itos)

    @classmethod
    def from_list(cls, words: Sequence[str]) -> Vocab:
        return cls(words)
