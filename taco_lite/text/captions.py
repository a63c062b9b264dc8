"""Checks of a caption a student types in a widget or notebook, before it reaches the model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from taco_lite.text.interest import DEFAULT_POS_TAGS, interest_mask, parse_pos_tags
from taco_lite.text.tagging import tag_captions
from taco_lite.text.tokenizer import Vocab, check_caption_text, tokenize


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
