"""Tests of the generated world (taco_lite.world): fast, on a tiny world, except one test that
checks the shipped data/world against its manifest."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taco_lite.world import (
    REGENERATE,
    TASKS,
    VERBS,
    WorldConfig,
    WorldFileError,
    default_world_path,
    generate_world,
    load_world,
    save_world,
)
from taco_lite.world.io import MANIFEST_FILE, SCRIPT_FILE, read_manifest

TINY = WorldConfig(seed=3, num_clips=30, twin_frac=0.4, comp_frac=0.2)
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "world"


@pytest.fixture(scope="module")
def world():
    return generate_world(TINY)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, world):
    return save_world(world, tmp_path_factory.mktemp("w") / "world")


def script_bytes(w) -> bytes:
    return json.dumps(w.script, sort_keys=True).encode()


# ------------------------------------------------------------------ determinism and seeds


def test_same_seed_same_bytes(world):
    again = generate_world(TINY)
    assert script_bytes(again) == script_bytes(world)
    for c in (0, 7, 29):
        assert again.clip_frames(c).tobytes() == world.clip_frames(c).tobytes()


def test_different_seed_different_bytes(world):
    other = generate_world(WorldConfig(seed=4, num_clips=30, twin_frac=0.4, comp_frac=0.2))
    assert script_bytes(other) != script_bytes(world)
    assert other.clip_frames(0).tobytes() != world.clip_frames(0).tobytes()


@pytest.mark.parametrize("seed", ["3", 2.5, None, True])
def test_bad_seed_type_raises(seed):
    with pytest.raises(TypeError, match="seed must be an int"):
        WorldConfig(seed=seed)


def test_negative_seed_raises():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        WorldConfig(seed=-1)


def test_numpy_int_seed_is_accepted():
    assert WorldConfig(seed=np.int64(5)).seed == 5


# ------------------------------------------------------------------ structure


def test_clip_structure(world):
    verbs = list(VERBS)
    for clip in world.clips:
        steps = TASKS[clip.task]
        assert 2 <= len(clip.seg_ids) <= 4 and len(clip.seg_ids) == len(steps)
        assert len(clip.frame_labels) == clip.num_frames
        covered = set()
        for k, sid in enumerate(clip.seg_ids):
            seg = world.segments[sid]
            assert seg.clip_id == clip.clip_id and seg.step == k and seg.split == clip.split
            assert 6 <= seg.num_frames <= 10 and 0 <= seg.start < seg.end <= clip.num_frames
            events = world.segment_script(sid)["events"]
            assert events[0]["verb"] == steps[k], "a step's first event has the task's verb"
            assert sorted(seg.verbs) == sorted(ev["verb"] for ev in events)
            objects = world.segment_script(sid)["objects"]
            for ev in events:
                o = objects[ev["obj"]]
                for f in range(o["ws"], o["we"]):
                    covered.add(seg.start + f)
                    assert clip.frame_labels[seg.start + f] == 1 + verbs.index(ev["verb"])
        for f, label in enumerate(clip.frame_labels):
            if f not in covered:
                assert label == 0, (
                    f"frame {f} of clip {clip.clip_id} has no event but label {label}"
                )
        if clip.seg_ids:
            assert world.segments[clip.seg_ids[0]].start >= 0
    gaps = [
        world.segments[b].start - world.segments[a].end
        for c in world.clips
        for a, b in zip(c.seg_ids, c.seg_ids[1:], strict=False)
    ]
    assert min(gaps) >= 0 and max(gaps) > 0, "background frames must sometimes sit between steps"


def test_frames_shape_and_dtype(world):
    f = world.segment_frames(5)
    seg = world.segments[5]
    assert f.dtype == np.uint8 and f.shape == (seg.num_frames, 32, 32, 3)
    assert world.clip_frames(seg.clip_id).shape[0] == world.clips[seg.clip_id].num_frames
    with pytest.raises(IndexError, match="out of range"):
        world.segment_frames(len(world.segments))


def test_gold_frames(world):
    partial = 0
    for seg in world.segments:
        assert len(seg.words) == len(seg.gold_pos) == len(seg.gold_frames)
        objects = world.segment_script(seg.seg_id)["objects"]
        refs = world.segment_script(seg.seg_id)["refs"]
        for word, pos, frames, ref in zip(
            seg.words, seg.gold_pos, seg.gold_frames, refs, strict=True
        ):
            if pos in ("NOUN", "VERB"):
                assert frames, f"{word!r} in {seg.caption!r} has no gold frames"
                assert frames == sorted(set(frames))
                assert 0 <= frames[0] and frames[-1] < seg.num_frames
                partial += len(frames) < seg.num_frames
            else:
                assert frames == [], f"{word!r} ({pos}) should have no gold frames"
            if pos == "VERB":  # the actor is on screen while it acts
                o = objects[ref[1]]
                assert set(frames) <= set(range(o["t0"], o["t1"]))
    assert partial > 0, "noun/verb grounding must not always be every frame"


def test_nouns_are_visible_in_their_gold_frames():
    """Without noise, an object's gold frames differ from the same scene without it."""
    from taco_lite.world.render import render_clip

    w = generate_world(WorldConfig(seed=1, num_clips=4, noise=0))
    for seg in w.segments:
        objects = w.segment_script(seg.seg_id)["objects"]
        for ref, frames in zip(w.segment_script(seg.seg_id)["refs"], seg.gold_frames, strict=True):
            if ref is None or ref[0] != "obj":
                continue
            full = render_clip(seg.num_frames, [(0, objects)], 0, 0)
            rest = [o for i, o in enumerate(objects) if i != ref[1]]
            without = render_clip(seg.num_frames, [(0, rest)], 0, 0)
            changed = np.any(full != without, axis=(1, 2, 3))
            assert changed[frames].all()
            outside = [f for f in range(seg.num_frames) if f not in frames]
            assert not changed[outside].any()


def test_words_match_spacy_tokenizer(world):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    for seg in world.segments:
        assert [t.text for t in nlp(seg.caption)] == seg.words
        assert seg.caption[0].isupper() and seg.caption.endswith(".")


def test_tagger_agreement_on_nouns_and_verbs(world):
    spacy = pytest.importorskip("spacy")
    from taco_lite.world.agreement import SPACY_MODEL, tagger_agreement

    try:
        nlp = spacy.load(SPACY_MODEL)
    except OSError:
        pytest.skip(f"spaCy pipeline {SPACY_MODEL} is not installed")
    res = tagger_agreement(world, nlp=nlp)
    assert res["tokenization_mismatches"] == 0
    assert res["NOUN"] >= 0.97 and res["VERB"] >= 0.97, res


# ------------------------------------------------------------------ splits and twins


def _pairs(world, seg_id):
    """Every (noun, verb) acted out on screen, distractors included."""
    return {(o["shape"], o["verb"]) for o in world.segment_script(seg_id)["objects"] if o["verb"]}


def test_splits_are_disjoint_and_complete(world):
    ids = {s: set(world.split(s)) for s in ("train", "val", "test", "comp")}
    assert sum(map(len, ids.values())) == len(world.segments)
    assert set().union(*ids.values()) == set(range(len(world.segments)))
    for name, seg_ids in ids.items():
        assert seg_ids, f"split {name} is empty"
        clips = {world.segments[i].clip_id for i in seg_ids}
        for c in clips:  # splits are by clip
            assert set(world.clips[c].seg_ids) <= seg_ids
    with pytest.raises(KeyError, match="unknown split"):
        world.split("dev")


def test_heldout_pairs_only_in_comp(world):
    held = set(world.heldout_pairs)
    n_pairs = len(VERBS) * len(world.vocabulary["nouns"])
    assert 0.10 <= len(held) / n_pairs <= 0.15
    for name in ("train", "val", "test"):
        for i in world.split(name):
            leaked = _pairs(world, i) & held
            assert not leaked, f"held-out pair {leaked} in {name} segment {i}"
    for c in {world.segments[i].clip_id for i in world.split("comp")}:
        mentioned = {
            (ev["noun"], ev["verb"])
            for i in world.clips[c].seg_ids
            for ev in world.segment_script(i)["events"]
        }
        assert mentioned & held, f"comp clip {c} holds no held-out pair"


def test_twins_differ_in_exactly_one_noun_or_verb(world):
    twins = [s for s in world.segments if s.twin_of is not None]
    assert len(twins) >= 5
    for seg in twins:
        src = world.segments[seg.twin_of]
        assert src.split == seg.split and src.seg_id < seg.seg_id
        assert len(seg.words) == len(src.words)
        diff = [i for i, (a, b) in enumerate(zip(seg.words, src.words, strict=True)) if a != b]
        assert len(diff) == 1, (seg.caption, src.caption)
        assert seg.gold_pos[diff[0]] in ("NOUN", "VERB")
        a = world.segment_script(seg.seg_id)["objects"]
        b = world.segment_script(src.seg_id)["objects"]
        changed = [
            (x["shape"] != y["shape"]) + (x["verb"] != y["verb"]) for x, y in zip(a, b, strict=True)
        ]
        assert sum(changed) == 1, "the scene changes in exactly one object's shape or verb"


# ------------------------------------------------------------------ save, load, errors


def test_save_load_roundtrip(world, saved):
    back = load_world(saved, verify_frames=True)
    assert script_bytes(back) == script_bytes(world)
    assert back.segments == world.segments and back.clips == world.clips
    assert read_manifest(saved)["counts"]["segments"] == len(world.segments)


def test_save_is_byte_identical(world, saved, tmp_path):
    again = save_world(world, tmp_path / "again", frames_sha256=False)
    assert (again / SCRIPT_FILE).read_bytes() == (saved / SCRIPT_FILE).read_bytes()


def _copy(saved, tmp_path) -> Path:
    dst = tmp_path / "world"
    shutil.copytree(saved, dst)
    return dst


def _assert_helpful(exc: pytest.ExceptionInfo, filename: str) -> None:
    msg = str(exc.value)
    # the hint regenerates the folder that was read (not always data/world, issue 11)
    folder = msg.split(f"/{filename}")[0].split()[-1]
    # ... with the knobs the world was made with (issue 23), read from its manifest if any
    try:
        made = json.loads((Path(folder) / MANIFEST_FILE).read_text())["regenerate"]
    except (OSError, ValueError, KeyError):
        made = REGENERATE
    assert filename in msg and made.split(" --out ")[0] + f" --out {folder}" in msg, msg


def test_missing_world_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        load_world(tmp_path / "nowhere")
    _assert_helpful(exc, SCRIPT_FILE)


def test_missing_manifest(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError) as exc:
        load_world(d)
    _assert_helpful(exc, MANIFEST_FILE)
    assert load_world(d, verify=False).segments  # still usable without checks


def test_checksum_mismatch(saved, tmp_path):
    d = _copy(saved, tmp_path)
    script = json.loads(gzip.decompress((d / SCRIPT_FILE).read_bytes()))
    script["segments"][0]["caption"] = "The ball fell."
    (d / SCRIPT_FILE).write_bytes(gzip.compress(json.dumps(script).encode()))
    with pytest.raises(WorldFileError, match="does not match its manifest") as exc:
        load_world(d)
    _assert_helpful(exc, SCRIPT_FILE)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], "not a readable gzip"),  # truncated
        (lambda b: b"this is not gzip at all", "not a readable gzip"),
        (lambda b: gzip.compress(b"{not json"), "valid JSON"),
        (lambda b: gzip.compress(b'{"format_version": 99}'), "format version 99"),
        (lambda b: gzip.compress(b'{"format_version": 1}'), "missing parts"),
    ],
    ids=["truncated", "bad-gzip", "bad-json", "wrong-version", "incomplete"],
)
def test_corrupt_script(saved, tmp_path, damage, match):
    d = _copy(saved, tmp_path)
    (d / SCRIPT_FILE).write_bytes(damage((d / SCRIPT_FILE).read_bytes()))
    with pytest.raises(WorldFileError, match=match) as exc:
        load_world(d, verify=False)  # get past the checksum to the parsing errors
    _assert_helpful(exc, SCRIPT_FILE)
    with pytest.raises(WorldFileError, match="does not match its manifest"):
        load_world(d)  # with checks on, the checksum catches it first


def test_bad_manifest(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / MANIFEST_FILE).write_text("{oops")
    with pytest.raises(WorldFileError, match="not valid JSON") as exc:
        load_world(d)
    _assert_helpful(exc, MANIFEST_FILE)
    m = json.loads((saved / MANIFEST_FILE).read_text())
    (d / MANIFEST_FILE).write_text(json.dumps(dict(m, format_version=99)))
    with pytest.raises(WorldFileError, match="format version 99") as exc:
        load_world(d)
    _assert_helpful(exc, MANIFEST_FILE)


def test_frames_checksum_mismatch(saved, tmp_path):
    d = _copy(saved, tmp_path)
    m = json.loads((d / MANIFEST_FILE).read_text())
    (d / MANIFEST_FILE).write_text(json.dumps(dict(m, frames_sha256="0" * 64)))
    load_world(d)  # the script itself is fine
    with pytest.raises(WorldFileError, match="frames_sha256") as exc:
        load_world(d, verify_frames=True)
    _assert_helpful(exc, SCRIPT_FILE)


def test_default_path_env(monkeypatch, saved):
    monkeypatch.setenv("TACO_LITE_DATA", str(saved))
    assert default_world_path() == saved
    assert load_world().script == load_world(saved).script
    monkeypatch.setenv("TACO_LITE_DATA", str(saved.parent))  # a data folder holding world/
    assert default_world_path() == saved
    monkeypatch.delenv("TACO_LITE_DATA")
    assert default_world_path() == SHIPPED


# ------------------------------------------------------------------ shipped data, packaging


def test_shipped_world_matches_manifest():
    if not (SHIPPED / MANIFEST_FILE).exists():
        pytest.fail(f"data/world is missing; run `{REGENERATE}`")
    manifest = read_manifest(SHIPPED)
    world = load_world(SHIPPED, verify=True, verify_frames=True)  # both checksums
    assert manifest["counts"]["segments"] == len(world.segments)
    assert manifest["counts"]["frames"] == sum(c.num_frames for c in world.clips)
    for s in ("train", "val", "test", "comp"):
        assert manifest["counts"][f"segments_{s}"] == len(world.split(s))
    size = sum(f.stat().st_size for f in SHIPPED.parent.rglob("*") if f.is_file())
    assert size < 20 * 2**20


def test_world_does_not_import_torch():
    code = "import sys, taco_lite.world, taco_lite.world.agreement; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plot_clip(world):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from taco_lite.viz import plot_clip

    fig = plot_clip(world, 0)
    assert isinstance(fig, Figure)
    captions = [t.get_text() for t in fig.axes[0].texts]
    assert len(captions) == len(world.clips[0].seg_ids)
    assert world.segments[world.clips[0].seg_ids[0]].caption in captions[0]
    import matplotlib.pyplot as plt

    plt.close(fig)
