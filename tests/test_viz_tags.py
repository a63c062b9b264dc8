"""displaCy pictures of tagged captions (notebook 01): manual data lines up with the tokens."""

from __future__ import annotations

import pytest

from taco_lite.viz.tags import interest_spans, render_tagged, tag_row

TOKENS = ["the", "red", "ball", "spins", "."]
TAGS = ["DET", "ADJ", "NOUN", "VERB", "PUNCT"]
INTEREST = [False, False, True, True, False]


def test_spans_cover_exactly_the_tokens_of_interest():
    spans = interest_spans(TOKENS, TAGS, INTEREST, [0.0, 0.0, 0.4, 0.6, 0.0])
    assert spans["text"] == "the red ball spins ."
    assert [spans["text"][e["start"] : e["end"]] for e in spans["ents"]] == ["ball", "spins"]
    assert [e["label"] for e in spans["ents"]] == ["NOUN 0.40", "VERB 0.60"]
    assert [e["label"] for e in interest_spans(TOKENS, TAGS, INTEREST)["ents"]] == ["NOUN", "VERB"]


def test_tag_row_and_html():
    row = tag_row(TOKENS, TAGS)
    assert [w["tag"] for w in row["words"]] == TAGS and row["arcs"] == []
    html = render_tagged(TOKENS, TAGS, INTEREST, [0.0, 0.0, 0.4, 0.6, 0.0])
    assert html.count("<svg") == 1 and "NOUN 0.40" in html and "spins" in html
    assert "<svg" not in render_tagged(TOKENS, TAGS, INTEREST, show_tags=False)
    empty = render_tagged(TOKENS, TAGS, [False] * 5)
    assert "L2 ignores this caption" in empty


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="5 tokens but 4 tags"):
        tag_row(TOKENS, TAGS[:4])
    with pytest.raises(ValueError, match="weights"):
        interest_spans(TOKENS, TAGS, INTEREST, [1.0])
    with pytest.raises(ValueError, match="no tokens"):
        interest_spans([], [], [])
