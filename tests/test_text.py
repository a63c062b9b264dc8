"""text.py: spaCy tokenization and the word-level Vocab."""

import pytest

from taco_lite.text import CLS_ID, PAD_ID, SEP_ID, UNK_ID, Vocab, tokenize


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("The red ball spins.") == ["the", "red", "ball", "spins", "."]
    assert tokenize("It doesn't roll!") == ["it", "does", "n't", "roll", "!"]


def test_tokenize_drops_whitespace_tokens():
    assert tokenize("the  ball\nrolls") == ["the", "ball", "rolls"]


def test_tokenize_matches_the_full_pipeline_tokenizer():
    from taco_lite.text.pos import load_nlp

    try:
        nlp = load_nlp()
    except OSError:
        pytest.skip("no English spaCy pipeline installed")
    for cap in ["Cut the onion, then fry it.", "The cup's handle breaks (twice)."]:
        assert tokenize(cap) == [t.lower_ for t in nlp.make_doc(cap) if not t.is_space]


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_caption_raises_with_an_example(bad):
    with pytest.raises(ValueError, match="caption is empty.*such as"):
        tokenize(bad)


def test_non_string_caption_raises():
    with pytest.raises(ValueError, match="must be a string"):
        tokenize(None)  # type: ignore[arg-type]


def test_vocab_specials_and_frequency_order():
    v = Vocab.build(["The ball rolls.", "the cup rolls", "a ball"])
    assert v.itos[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3)
    # ball, rolls, the appear twice (alphabetical among ties), then the rest
    assert v.itos[4:7] == ["ball", "rolls", "the"]
    assert set(v.itos[7:]) == {".", "cup", "a"}
    assert len(v) == 10


def test_min_count_drops_rare_words():
    v = Vocab.build([["a", "b"], ["a", "c"]], min_count=2)
    assert v.itos[4:] == ["a"]
    assert v.encode(["a", "b"], 8) == [CLS_ID, v.stoi["a"], UNK_ID, SEP_ID]


def test_encode_wraps_maps_unknown_and_lowercases():
    v = Vocab.build([["the", "ball", "rolls"]])
    ids = v.encode(["The", "zebra", "rolls"], max_tokens=10)
    assert ids == [CLS_ID, v.stoi["the"], UNK_ID, v.stoi["rolls"], SEP_ID]
    assert v.decode(ids) == ["[CLS]", "the", "[UNK]", "rolls", "[SEP]"]
    assert v.decode(ids + [PAD_ID], skip_special=True) == ["the", "[UNK]", "rolls"]


def test_encode_truncates_words_to_fit():
    v = Vocab.build([list("abcdef")])
    ids = v.encode(list("abcdef"), max_tokens=5)
    assert len(ids) == 5
    assert ids[0] == CLS_ID and ids[-1] == SEP_ID
    assert v.decode(ids[1:-1]) == ["a", "b", "c"]


def test_encode_errors():
    v = Vocab.build([["a"]])
    with pytest.raises(ValueError, match="empty"):
        v.encode([], 8)
    with pytest.raises(ValueError, match="max_tokens >= 3"):
        v.encode(["a"], 2)
    with pytest.raises(ValueError, match="outside"):
        v.decode([99])


def test_unknown_lists_each_unknown_word_once_in_order():
    v = Vocab.build([["the", "ball"]])
    assert v.unknown(["The", "kayak", "ball", "zebra", "kayak"]) == ["kayak", "zebra"]
    assert v.unknown("the ball") == []


def test_round_trip_through_plain_strings():
    v = Vocab.build(["The red ball spins.", "A cup falls."])
    w = Vocab.from_list(v.to_list())
    assert all(isinstance(s, str) for s in v.to_list())
    assert w.itos == v.itos and w.encode("a red cup", 8) == v.encode("a red cup", 8)


def test_from_list_rejects_missing_specials_and_duplicates():
    with pytest.raises(ValueError, match="specials"):
        Vocab.from_list(["ball", "cup"])
    with pytest.raises(ValueError, match="repeat"):
        Vocab.from_list(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"])
