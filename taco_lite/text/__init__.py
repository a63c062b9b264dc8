"""Text: the tokenizer and vocabulary, spaCy POS tags, tokens of interest and idf (docs/method.md §3)."""

from taco_lite.text.tokenizer import (
    CLS,
    CLS_ID,
    PAD,
    PAD_ID,
    SEP,
    SEP_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    Vocab,
    check_caption_text,
    tokenize,
)

__all__ = [
    "PAD",
    "UNK",
    "CLS",
    "SEP",
    "SPECIALS",
    "PAD_ID",
    "UNK_ID",
    "CLS_ID",
    "SEP_ID",
    "check_caption_text",
    "tokenize",
    "Vocab",
]
