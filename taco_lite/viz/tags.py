"""Tagged captions drawn with spaCy's displaCy: every word's UPOS tag, and the tokens of interest.

Notebook 01 shows what the token-level loss L2 (paper Eq. 4, docs/method.md §3) looks at. displaCy
draws two pictures of one tagged caption, both from *manual* data, so no parser is needed (the
kit's pipeline has none, see `text.tagging.load_nlp`):

- `tag_row(tokens, tags)`: displaCy's "dep" style with no arcs, the UPOS tag under each word;
- `interest_spans(tokens, tags, interest, weights)`: displaCy's "ent" style, each token of
  interest highlighted and labelled with its tag and, when given, its weight w[i, p] of Eq. 4.

Words are the kit's tokens (`text.tokenize`: lower case, punctuation split off) joined by single
spaces, which is exactly what the model reads. `render_tagged` returns the HTML of both (a
string): in Jupyter, `IPython.display.HTML(render_tagged(...))` shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# one colour per UPOS tag of interest; any other tag of interest gets OTHER_COLOUR
TAG_COLOURS = {"NOUN": "#9ecae1", "VERB": "#fdae6b", "ADJ": "#a1d99b", "DET": "#d9d9d9",
               "ADP": "#d9d9d9", "PROPN": "#bcbddc"}  # fmt: skip
OTHER_COLOUR = "#fde0dd"


def _check(tokens: Sequence[str], *others: tuple[str, Sequence[Any] | None]) -> None:
    if len(tokens) == 0:
        raise ValueError("no tokens to draw: tokenize a non-empty caption first")
    for name, seq in others:
        if seq is not None and len(seq) != len(tokens):
            raise ValueError(
                f"{len(tokens)} tokens but {len(seq)} {name}: give one per token "
                "(tags from text.pos.tag_captions line up with text.tokenize)"
            )


def tag_row(tokens: Sequence[str], tags: Sequence[str]) -> dict[str, Any]:
    """displaCy "dep" manual data: one word per token with its UPOS tag under it, no arcs."""
    _check(tokens, ("tags", tags))
    return {"words": [{"text": w, "tag": t} for w, t in zip(tokens, tags, strict=True)],
            "arcs": []}  # fmt: skip


def interest_spans(
    tokens: Sequence[str],
    tags: Sequence[str],
    interest: Sequence[bool],
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """displaCy "ent" manual data: the tokens joined by spaces, one span per token of interest.

    A span's label is the token's tag, plus its weight when `weights` is given (e.g.
    "NOUN 0.41"). Tokens outside P_i (Eq. 4) are plain text.
    """
    _check(tokens, ("tags", tags), ("interest flags", interest), ("weights", weights))
    text, ents, pos = [], [], 0
    for k, word in enumerate(tokens):
        if k:
            pos += 1  # the space before this word
        if interest[k]:
            label = tags[k] if weights is None else f"{tags[k]} {weights[k]:.2f}"
            ents.append({"start": pos, "end": pos + len(word), "label": label})
        text.append(word)
        pos += len(word)
    return {"text": " ".join(text), "ents": ents, "title": None}


def _colours(spans: dict[str, Any]) -> dict[str, str]:
    out = {}
    for e in spans["ents"]:
        tag = e["label"].split(" ")[0]
        out[e["label"]] = TAG_COLOURS.get(tag, OTHER_COLOUR)
    return out


def render_tagged(
    tokens: Sequence[str],
    tags: Sequence[str],
    interest: Sequence[bool],
    weights: Sequence[float] | None = None,
    show_tags: bool = True,
) -> str:
    """HTML of one tagged caption: the tag row (if `show_tags`), then the tokens of interest.

    A caption without any token of interest is drawn as plain text with a note, since L2
    ignores it.
    """
    from spacy import displacy

    spans = interest_spans(tokens, tags, interest, weights)
    parts = []
    if show_tags:
        parts.append(
            displacy.render(tag_row(tokens, tags), style="dep", manual=True, jupyter=False,
                            options={"compact": True, "distance": 90, "offset_x": 30})
        )  # fmt: skip
    opts = {"ents": sorted({e["label"] for e in spans["ents"]}), "colors": _colours(spans)}
    parts.append(displacy.render(spans, style="ent", manual=True, jupyter=False, options=opts))
    if not spans["ents"]:
        parts.append("<p><i>no token of interest: L2 ignores this caption</i></p>")
    return "\n".join(parts)
