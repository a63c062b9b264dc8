"""Which spaCy components the tagger may drop (issue 11): only those that provably cannot
change UPOS. Checked on 285 varied sentences shipped in tests/data/english_sentences.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

from taco_lite.text.tagging import _UNUSED_COMPONENTS, _english_pipelines, load_nlp  # noqa: E402

SENTENCES = [
    line.strip()
    for line in (Path(__file__).parent / "data" / "english_sentences.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.fixture(scope="module")
def pipeline_name() -> str:
    if spacy.util.is_package("en_core_web_sm"):
        return "en_core_web_sm"
    found = _english_pipelines()
    if not found:
        pytest.skip("no English spaCy pipeline installed")
    return found[0]


def upos(nlp) -> list[list[str]]:
    return [[t.pos_ for t in doc] for doc in nlp.pipe(SENTENCES)]


def test_the_sentences_are_many_and_varied():
    assert len(SENTENCES) >= 250 and len(set(SENTENCES)) == len(SENTENCES)
    assert sum(s.endswith("?") for s in SENTENCES) >= 20  # questions
    assert sum(s.endswith("!") for s in SENTENCES) >= 5  # exclamations / imperatives


def test_excluded_components_leave_every_tag_unchanged(pipeline_name):
    full = spacy.load(pipeline_name)
    kit = load_nlp(pipeline_name)
    assert "parser" in kit.pipe_names and "attribute_ruler" in kit.pipe_names
    assert not set(_UNUSED_COMPONENTS) & set(kit.pipe_names)
    order = full.pipe_names
    for name in _UNUSED_COMPONENTS:  # all run after the last component that sets UPOS
        if name in order:
            assert order.index(name) > order.index("attribute_ruler"), order
    want, got = upos(full), upos(kit)
    diffs = [(s, w, g) for s, w, g in zip(SENTENCES, want, got, strict=True) if w != g]
    assert not diffs, diffs[:5]


def test_dropping_the_parser_would_change_tags(pipeline_name):
    """Why the parser stays: the attribute_ruler's dependency-based rules need it."""
    full = spacy.load(pipeline_name)
    no_parser = spacy.load(pipeline_name, exclude=["parser", *_UNUSED_COMPONENTS])
    want, got = upos(full), upos(no_parser)
    changed = sum(w != g for w, g in zip(want, got, strict=True))
    assert changed >= 10, changed
