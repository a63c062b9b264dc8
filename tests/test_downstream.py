"""Downstream tasks: step localization (decoders, recall, scores), the segmentation probe, the
CrossTask / COIN adapters, and the `python -m taco_lite.downstream` command at tiny size."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from taco_lite.config import ModelConfig
from taco_lite.downstream.localize import (
    argmax_times,
    average_recall,
    chance_recall,
    encode_clip,
    evenly_spaced_times,
    fusion_similarity,
    gold_from_segments,
    ordered_times,
    sentence_similarity,
    step_hits,
    token_similarity,
    video_recall,
)
from taco_lite.downstream.real import (
    load_coin,
    load_crosstask,
    read_crosstask_annotation,
    read_crosstask_tasks,
)
from taco_lite.downstream.segment import frame_accuracy, train_probe
from taco_lite.model import TacoModel


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny probes run fastest on one thread. Scoped to this module and restored after it: a
    module-level set_num_threads(1) would run every later test single-threaded, which hides
    multi-thread non-determinism from the same-seed and resume tests (issue 11)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------ decoders


def brute_force_ordered(sim: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """Every strictly increasing assignment; the best total, ties -> lexicographically first."""
    T, S = sim.shape
    best: tuple[float, tuple[int, ...]] | None = None
    for times in itertools.combinations(range(T), S):  # increasing, in lexicographic order
        total = float(sum(sim[t, s] for s, t in enumerate(times)))
        if best is None or total > best[0]:
            best = (total, times)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_ordered_dp_matches_brute_force(seed, ties):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        T = int(rng.integers(1, 8))
        S = int(rng.integers(1, T + 1))
        # small integers make many exact ties; floats almost none
        sim = rng.integers(0, 3, (T, S)).astype(float) if ties else rng.normal(size=(T, S))
        total, times = brute_force_ordered(sim)
        got = ordered_times(sim)
        assert tuple(got.tolist()) == times, (sim, got, times)
        assert float(sum(sim[t, s] for s, t in enumerate(got))) == pytest.approx(total)


def test_ordered_dp_is_increasing_and_takes_torch():
    sim = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    times = ordered_times(sim)
    assert times.dtype == np.int64 and np.all(np.diff(times) > 0)
    assert tuple(times) == brute_force_ordered(sim.double().numpy())[1]
    # a constant matrix: every assignment ties, the earliest one wins
    assert ordered_times(np.zeros((6, 3))).tolist() == [0, 1, 2]


def test_ordered_dp_refuses_bad_input():
    with pytest.raises(ValueError, match="T >= S"):
        ordered_times(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        ordered_times(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"2-D \[T, S\]"):
        ordered_times(np.zeros(4))


def test_argmax_takes_the_earliest_frame_on_ties():
    sim = np.array([[0.0, 5.0], [3.0, 5.0], [3.0, 1.0]])
    assert argmax_times(sim).tolist() == [1, 0]
    # argmax ignores order: both steps may pick the same frame, the DP may not
    sim = np.array([[0.0, 0.0], [9.0, 9.0], [0.0, 1.0]])
    assert argmax_times(sim).tolist() == [1, 1]
    assert ordered_times(sim).tolist() == [1, 2]


def test_evenly_spaced_times():
    assert evenly_spaced_times(9, 3).tolist() == [1, 4, 7]
    assert evenly_spaced_times(3, 3).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------ recall


def test_recall_by_hand_including_a_zero_length_step():
    gold = gold_from_segments(10, starts=[0, 4, 7], ends=[4, 4, 10])  # step 1 has no frame
    assert gold.sum(0).tolist() == [4, 0, 3]
    hits = step_hits([3, 4, 7], gold)  # frame 4 is the end of step 0's segment, not inside
    assert hits.tolist() == [True, False, True]
    assert video_recall([3, 4, 7], gold) == pytest.approx(2 / 3)  # the empty step is a miss
    assert video_recall([3, 4, 7], gold, skip_absent=True) == pytest.approx(1.0)
    assert video_recall([4, 5, 6], gold) == 0.0  # [start, end): 4 is outside [0, 4)
    assert video_recall([0], np.zeros((3, 1), bool), skip_absent=True) is None
    assert chance_recall(gold) == pytest.approx((4 / 10 + 0 + 3 / 10) / 3)


def test_average_recall_is_per_video_then_per_task():
    g2 = gold_from_segments(4, [0, 2], [2, 4])
    videos = [
        ("a", [0, 2], g2),  # 2/2
        ("a", [0, 0], g2),  # 1/2
        ("a", [0, 1], g2),  # 1/2
        ("b", [2, 0], g2),  # 0/2
    ]
    out = average_recall(videos)
    assert out["per_task"]["a"] == pytest.approx(100 * (1 + 0.5 + 0.5) / 3)
    assert out["per_task"]["b"] == 0.0
    assert out["recall"] == pytest.approx((100 * 2 / 3 + 0) / 2)  # not 4/8 over all steps
    assert out["videos"] == 4
    # CrossTask's pooled formula leaves out steps that never happen
    g_absent = gold_from_segments(4, [0, 2], [2, 2])
    pooled = average_recall([("c", [0, 3], g_absent)])
    assert pooled["recall"] == pytest.approx(50.0) and pooled["recall_pooled"] == 100.0


def test_step_hits_checks_shapes():
    with pytest.raises(ValueError, match="one predicted frame per step"):
        step_hits([0, 1], np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="outside"):
        step_hits([0, 9], np.zeros((4, 2), bool))


# ------------------------------------------------------------------------------ scores


def tiny_model(max_frames: int = 4) -> TacoModel:
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, heads=2, text_layers=1, video_layers=1, fusion_layers=1,
                      max_frames=max_frames, vocab_size=20, video_input="features",
                      feature_dim=5, dropout=0.0)  # fmt: skip
    return TacoModel(cfg).eval()


def test_encode_clip_encodes_windows_of_max_frames():
    model = tiny_model(max_frames=4)
    feats = torch.randn(10, 5, generator=torch.Generator().manual_seed(1))
    tokens = encode_clip(model, feats, normalize=False)  # (10, d)
    assert tokens.shape == (10, 16)
    with torch.no_grad():
        for t0 in (0, 4, 8):
            w = feats[t0 : t0 + 4][None]
            ref = model.encode_video(w, torch.ones(w.shape[:2], dtype=torch.bool))[0]
            torch.testing.assert_close(tokens[t0 : t0 + 4], ref, atol=1e-5, rtol=0)
    unit = encode_clip(model, feats)  # the model normalises by default
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(10), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="max_frames=4"):
        encode_clip(model, feats, window=5)


def test_sentence_and_token_scores_match_loops():
    g = torch.Generator().manual_seed(2)
    S, n, T, d = 3, 6, 7, 4
    y, x = torch.randn(S, n, d, generator=g), torch.randn(T, d, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]]).bool()
    w = torch.zeros(S, n)
    w[0, 1], w[0, 3] = 0.25, 0.75
    w[1, 2] = 1.0  # caption 2 has no token of interest: uniform over its one word
    sent, tok = sentence_similarity(y, x), token_similarity(y, mask, w, x)
    for s in range(S):
        for t in range(T):
            assert sent[t, s] == pytest.approx(float(y[s, 0] @ x[t]), abs=1e-5)
    assert tok[:, 0] == pytest.approx((0.25 * y[0, 1] @ x.T + 0.75 * y[0, 3] @ x.T), abs=1e-5)
    assert tok[:, 1] == pytest.approx((y[1, 2] @ x.T), abs=1e-5)
    assert tok[:, 2] == pytest.approx((y[2, 1] @ x.T), abs=1e-5)  # word 1 only ([CLS] w [SEP])
    assert not torch.isnan(tok).any()
    with pytest.raises(ValueError, match="one entry per token"):
        token_similarity(y, mask, w[:, :4], x)


def test_fusion_scores_match_a_loop_over_windows():
    model = tiny_model(max_frames=8)
    g = torch.Generator().manual_seed(3)
    T, S, n, width = 6, 2, 5, 3
    x = torch.randn(T, 16, generator=g)
    y = torch.randn(S, n, 16, generator=g)
    mask = torch.ones(S, n, dtype=torch.bool)
    mask[1, 3:] = False
    sim = fusion_similarity(model, y, mask, x, width, chunk=4)
    assert sim.shape == (T, S)
    with torch.no_grad():
        for s in range(S):
            for t in range(T):
                lo, hi = max(0, t - width // 2), min(T, t - width // 2 + width)
                w = x[lo:hi][None]
                ref = model.fuse(y[s : s + 1], mask[s : s + 1], w, torch.ones(1, hi - lo).bool())
                assert float(sim[t, s]) == pytest.approx(float(ref), abs=1e-5)


# ------------------------------------------------------------------------------ probe


def test_probe_separates_separable_classes_and_not_shuffled_labels():
    g = torch.Generator().manual_seed(0)
    K, d, N = 4, 8, 800
    centres = 4.0 * torch.randn(K, d, generator=g)
    labels = torch.randint(0, K, (2 * N,), generator=g)
    feats = centres[labels] + 0.3 * torch.randn(2 * N, d, generator=g)
    probe = train_probe(feats[:N], labels[:N], K, steps=200)
    assert frame_accuracy(probe.predict(feats[N:]), labels[N:]) > 99.0
    shuffled = labels[torch.randperm(2 * N, generator=g)]
    probe = train_probe(feats[:N], shuffled[:N], K, steps=200)
    acc = frame_accuracy(probe.predict(feats[N:]), shuffled[N:])
    assert abs(acc - 100.0 / K) < 8.0, acc


def test_probe_checks_inputs():
    with pytest.raises(ValueError, match="one label per frame"):
        train_probe(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        train_probe(torch.full((2, 3), float("nan")), torch.zeros(2, dtype=torch.long))


# ------------------------------------------------------------------------------ CrossTask


TASKS_TXT = """1001
Make tea
http://example.com/tea
3
boil water,add tea,pour milk

1002
Jump
http://example.com/jump
2
run,jump
"""


def write_crosstask(root, rows="1,0.5,2.2\n3,4.0,5.0\n", T=8):
    (root / "annotations").mkdir(parents=True)
    (root / "features").mkdir()
    (root / "tasks_primary.txt").write_text(TASKS_TXT)
    (root / "annotations" / "1001_vidA.csv").write_text(rows)
    np.save(root / "features" / "vidA.npy", np.zeros((T, 4), np.float32))


def test_crosstask_adapter_reads_tasks_annotations_and_features(tmp_path):
    write_crosstask(tmp_path)
    tasks = read_crosstask_tasks(tmp_path / "tasks_primary.txt")
    assert tasks == {"1001": ["boil water", "add tea", "pour milk"], "1002": ["run", "jump"]}
    (video,) = load_crosstask(tmp_path)
    assert video.task == "1001" and video.video_id == "vidA"
    assert video.step_captions == tasks["1001"] and video.frames.shape == (8, 4)
    # rows [floor(start), ceil(end)): step 1 -> 0..2, step 3 -> 4, step 2 absent
    assert [np.flatnonzero(video.gold[:, s]).tolist() for s in range(3)] == [[0, 1, 2], [], [4]]
    gold2 = read_crosstask_annotation(tmp_path / "annotations" / "1001_vidA.csv", 3, 16, 2.0)
    assert np.flatnonzero(gold2[:, 0]).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "rows, match",
    [
        ("1,0.5\n", "expected 3 values"),
        ("one,0.5,2\n", "an integer and two numbers"),
        ("4,0.5,2\n", "steps 1..3"),
        ("0,0.5,2\n", "numbers steps from 1"),
        ("1,3,2\n", "start_sec <= end_sec"),
        ("1,30,40\n", "features have 8 rows"),
    ],
)
def test_crosstask_bad_rows_say_what_is_wrong(tmp_path, rows, match):
    write_crosstask(tmp_path, rows=rows)
    with pytest.raises(ValueError, match=match) as err:
        load_crosstask(tmp_path)
    assert "1001_vidA.csv, row 1" in str(err.value)


def test_crosstask_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="tasks_primary.txt"):
        load_crosstask(tmp_path)
    write_crosstask(tmp_path)
    (tmp_path / "features" / "vidA.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"features/vidA\.npy"):
        load_crosstask(tmp_path)
    (tmp_path / "tasks_primary.txt").write_text(TASKS_TXT.replace("\n3\n", "\n4\n"))
    with pytest.raises(ValueError, match="says 4 steps but lists 3"):
        read_crosstask_tasks(tmp_path / "tasks_primary.txt")


# ------------------------------------------------------------------------------ COIN


def write_coin(root, annotation=None):
    (root / "features").mkdir(parents=True)
    ann = annotation or [
        {"id": "12", "segment": [1.0, 3.0], "label": "cut"},
        {"id": "7", "segment": [4.0, 5.5], "label": "wash"},
    ]
    db = {"database": {
        "v1": {"recipe_type": 3, "subset": "training", "annotation": ann},
        "v2": {"recipe_type": 3, "subset": "testing", "annotation": [
            {"id": "7", "segment": [0.0, 1.0], "label": "wash"}]},
    }}  # fmt: skip
    (root / "COIN.json").write_text(json.dumps(db))
    np.save(root / "features" / "v1.npy", np.ones((7, 3), np.float32))
    np.save(root / "features" / "v2.npy", np.ones((2, 3), np.float32))


def test_coin_adapter_labels_frames_by_their_centre(tmp_path):
    write_coin(tmp_path)
    videos, names = load_coin(tmp_path)
    assert names == ["background", "wash", "cut"]  # ids 7 < 12 -> labels 1, 2
    v1 = next(v for v in videos if v.video_id == "v1")
    # centres 0.5, 1.5, ..., 6.5 s: [1, 3) holds 1.5, 2.5; [4, 5.5) holds 4.5
    assert v1.labels.tolist() == [0, 2, 2, 0, 1, 0, 0] and v1.task == "3"
    (test,), _ = load_coin(tmp_path, subset="testing")
    assert test.video_id == "v2" and test.labels.tolist() == [1, 0]


def test_coin_subsets_share_the_labels_of_the_whole_file(tmp_path):
    write_coin(tmp_path)
    db = json.loads((tmp_path / "COIN.json").read_text())
    db["database"]["v2"]["annotation"] = [{"id": "12", "segment": [0.0, 1.0], "label": "cut"}]
    (tmp_path / "COIN.json").write_text(json.dumps(db))
    _, train_names = load_coin(tmp_path, subset="training")
    (test,), test_names = load_coin(tmp_path, subset="testing")
    assert train_names == test_names == ["background", "wash", "cut"]
    assert test.labels.tolist() == [2, 0]  # "cut" is label 2 in both subsets, not 1


def test_coin_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="COIN.json"):
        load_coin(tmp_path)
    write_coin(tmp_path, annotation=[{"id": "1", "segment": [2.0]}])
    with pytest.raises(ValueError, match=r"video 'v1', annotation 0.*start_sec, end_sec"):
        load_coin(tmp_path)
    (tmp_path / "COIN.json").write_text(json.dumps({"videos": {}}))
    with pytest.raises(ValueError, match="database"):
        load_coin(tmp_path)


def test_coin_missing_features(tmp_path):
    write_coin(tmp_path)
    (tmp_path / "features" / "v2.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"features/v2\.npy"):
        load_coin(tmp_path)
    videos, _ = load_coin(tmp_path, skip_missing=True)
    assert [v.video_id for v in videos] == ["v1"]


# ------------------------------------------------------------------------------ world + CLI


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from taco_lite.world import WorldConfig, generate_world, save_world

    world = generate_world(WorldConfig(seed=0, num_clips=40))
    folder = save_world(world, tmp_path_factory.mktemp("world"), frames_sha256=False)
    return world, folder


def test_world_videos_match_the_clips(tiny_world):
    from taco_lite.downstream.data import world_localization_videos, world_segmentation_videos

    world, _ = tiny_world
    loc = world_localization_videos(world, "test", layout=None)
    seg = world_segmentation_videos(world, "test")
    assert loc and len(loc) == len(seg)
    for v, s in zip(loc, seg, strict=True):
        clip = world.clips[int(v.video_id[4:])]
        assert clip.split == "test" and v.task == clip.task
        assert v.gold.shape == (clip.num_frames, len(clip.seg_ids))
        for k, sid in enumerate(clip.seg_ids):
            seg_k = world.segments[sid]
            assert np.flatnonzero(v.gold[:, k]).tolist() == list(range(seg_k.start, seg_k.end))
            assert v.step_captions[k] == seg_k.caption
        assert s.labels.tolist() == clip.frame_labels


def test_identity_layout_renders_each_step_as_in_its_clip():
    from taco_lite.downstream.data import StepLayout, layout_clip
    from taco_lite.world import WorldConfig, generate_world

    world = generate_world(WorldConfig(seed=1, num_clips=12, noise=0))  # no noise: exact frames
    for c in range(4):
        clip = world.clips[c]
        frames, gold, rec = layout_clip(world, c, StepLayout.identity())
        lengths = [world.segments[s].num_frames for s in clip.seg_ids]
        assert frames.shape[0] == gold.shape[0] == sum(lengths) and rec["distractors"] == []
        t = 0
        for k, sid in enumerate(clip.seg_ids):
            assert np.flatnonzero(gold[:, k]).tolist() == list(range(t, t + lengths[k]))
            np.testing.assert_array_equal(frames[t : t + lengths[k]], world.segment_frames(sid))
            t += lengths[k]


def test_step_layout_videos_need_alignment():
    """Variable lengths, long gaps, swapped steps and distractors: order alone fails."""
    from taco_lite.downstream.data import StepLayout, layout_clip, world_localization_videos
    from taco_lite.world import WorldConfig, generate_world

    world = generate_world(WorldConfig(seed=2, num_clips=60))
    lay = StepLayout()
    videos = world_localization_videos(world, "train", lay)
    assert len(videos) > 30
    swapped = distracted = 0
    for v in videos:
        c = int(v.video_id[4:])
        clip = world.clips[c]
        frames, gold, rec = layout_clip(world, c, lay)
        np.testing.assert_array_equal(frames, v.frames)  # deterministic in (seed, clip)
        np.testing.assert_array_equal(gold, v.gold)
        assert v.step_captions == [world.segments[s].caption for s in clip.seg_ids]
        assert frames.shape[0] == gold.shape[0]
        busy = np.zeros(gold.shape[0], dtype=int)
        for k, (a, b) in enumerate(rec["steps"]):
            m = world.segments[clip.seg_ids[k]].num_frames
            assert np.flatnonzero(gold[:, k]).tolist() == list(range(a, b))
            assert round(m * lay.stretch[0]) <= b - a <= round(m * lay.stretch[1])
            busy[a:b] += 1
        for sid, a, b in rec["distractors"]:
            assert not set(world.segment_script(sid)["verbs"]) & set(world.tasks[clip.task])
            busy[a:b] += 1
        assert busy.max() <= 1, "steps and distractors never overlap"
        swapped += rec["order"] != sorted(rec["order"])
        distracted += bool(rec["distractors"])
    assert 0 < swapped < len(videos) and distracted > len(videos) // 3
    even = average_recall([(v.task, evenly_spaced_times(*v.gold.shape), v.gold) for v in videos])
    assert even["recall"] <= 60.0
    assert 100 * np.mean([chance_recall(v.gold) for v in videos]) < 30.0
    with pytest.raises(ValueError, match="stretch"):
        StepLayout(stretch=(2.0, 1.0))
    with pytest.raises(ValueError, match="gap"):
        StepLayout(gap=(-1, 3))
    with pytest.raises(ValueError, match="swap_prob"):
        StepLayout(swap_prob=1.5)


def test_stretched_motion_ends_where_the_original_does():
    from taco_lite.downstream.data import _stretched
    from taco_lite.world.render import object_state

    obj = {"role": "actor", "shape": "ball", "colour": "red", "size": "small", "verb": "fall",
           "t0": 0, "t1": 8, "ws": 2, "we": 6, "x": 16, "y": 6}  # fmt: skip
    (slow,), m = _stretched([obj], 8, 2.0)
    assert m == 16 and (slow["ws"], slow["we"], slow["t1"]) == (4, 12, 16)
    assert object_state(slow, slow["we"] - 1) == object_state(obj, obj["we"] - 1)
    assert object_state(slow, slow["ws"]) == object_state(obj, obj["ws"])


def test_baselines_only_needs_no_model(tiny_world, capsys):
    from taco_lite.downstream import main

    _, folder = tiny_world
    line = main(["--world", str(folder), "--split", "train", "--baselines-only"])
    assert "StepLayout(" in line and "evenly spaced" in line and capsys.readouterr().out
    clips = main(["--world", str(folder), "--split", "train", "--baselines-only", "--world-clips"])
    even = [float(x.split("evenly spaced ")[1].rstrip("%")) for x in (line, clips)]
    assert even[0] < even[1]  # the re-laid-out videos defeat the order-only baseline


def test_encoder_rows_exist_in_the_sweep():
    from taco_lite.downstream import ENCODERS
    from taco_lite.sweep import ROWS_BY_SLUG

    assert ROWS_BY_SLUG["l1"].losses == "L1"
    assert ROWS_BY_SLUG["l1-l2-l3-cascade-noun-verb"].losses == "L1+L2+L3"
    assert all(slug is None or slug in ROWS_BY_SLUG for _, slug in ENCODERS)


def test_cli_end_to_end_at_tiny_size(tiny_world, tmp_path, capsys):
    from taco_lite.downstream import main

    _, folder = tiny_world
    results = tmp_path / "results.md"
    results.write_text("# Results\n\nkeep me\n\n<!-- other:start -->\nother\n<!-- other:end -->\n")
    argv = ["--checkpoints", str(tmp_path / "ck"), "--seeds", "0", "1", "--preset", "fast",
            "--steps", "2", "--batch-size", "8", "--world", str(folder), "--probe-steps", "20",
            "--results", str(results), "--json", str(tmp_path / "out.json")]  # fmt: skip
    main(argv)
    first = capsys.readouterr().out
    assert first.count("training missing checkpoint") == 4  # 2 rows x 2 seeds
    for slug in ("l1", "l1-l2-l3-cascade-noun-verb"):
        assert (tmp_path / "ck" / slug / "seed1" / "model.pt").is_file()
    text = results.read_text()
    assert "keep me" in text and "<!-- other:start -->\nother" in text
    assert text.count("<!-- downstream:start -->") == 1
    for row in ("| random init | 2 |", "| L1 | 2 |", "| TACo (L1+L2+L3 cascade) | 2 |"):
        assert row in text
    assert "Command: `python -m taco_lite.downstream --checkpoints" in text
    assert "Machine:" in text and "torch" in text
    records = json.loads((tmp_path / "out.json").read_text())
    assert len(records) == 6
    for r in records:
        for variant in r["localization"].values():
            for dec in variant.values():
                assert 0.0 <= dec["recall"] <= 100.0
        assert 0.0 <= r["segmentation"]["frame_acc"] <= 100.0
    # a second run reuses the checkpoints and replaces the section instead of appending
    main(argv)
    assert "training missing checkpoint" not in capsys.readouterr().out
    assert results.read_text().count("<!-- downstream:start -->") == 1


def test_cli_on_real_features_trains_on_them_and_reads_crosstask_and_coin(tmp_path, capsys):
    """`--features PATH` (issue 12): encoders train on the release, the tasks come from a
    CrossTask and a COIN folder, each checkpoint records its data, docs/results.md is untouched."""
    try:
        from test_data_sources import write_feature_release
    except ImportError:
        from tests.test_data_sources import write_feature_release
    from taco_lite.downstream import main
    from taco_lite.runtime.checkpoint import load_checkpoint

    release = tmp_path / "release"
    write_feature_release(release / "train", 12, seed=0, D=4)  # 36 pairs, D = 4 as CrossTask's
    write_crosstask(tmp_path / "crosstask", T=8)
    coin = tmp_path / "coin"
    write_coin(coin)
    rng = np.random.default_rng(0)
    for vid, T in (("v1", 7), ("v2", 2)):  # D = 4 like the release
        np.save(coin / "features" / f"{vid}.npy", rng.standard_normal((T, 4)).astype(np.float32))
    with pytest.raises(SystemExit, match="--crosstask DIR and --coin DIR"):
        main(["--features", str(release), "--no-write"])
    ck = tmp_path / "ck"
    argv = ["--checkpoints", str(ck), "--seeds", "0", "--preset", "fast", "--steps", "2",
            "--batch-size", "8", "--features", str(release), "--crosstask",
            str(tmp_path / "crosstask"), "--coin", str(coin), "--probe-steps", "5",
            "--json", str(tmp_path / "out.json")]  # fmt: skip
    table = main(argv)
    assert capsys.readouterr().out.count("training missing checkpoint") == 2
    assert table.startswith(f"Real features `{release}`")
    for slug in ("l1", "l1-l2-l3-cascade-noun-verb"):
        state = load_checkpoint(ck / slug / "seed0" / "model.pt")
        assert state["train_cfg"]["data"] == f"features:{release}"
        assert state["model_cfg"]["video_input"] == "features"
    records = json.loads((tmp_path / "out.json").read_text())
    assert len(records) == 3 and {r["data"] for r in records} == {f"features:{release}"}
    assert all(r["segmentation"]["test_frames"] == 2 for r in records)  # COIN "testing" only
    assert all(r["video_frames"] == [8] for r in records)  # the one CrossTask video
    # the same checkpoints cannot be reused for other data
    with pytest.raises(ValueError, match="trained on data"):
        main(["--checkpoints", str(ck), "--seeds", "0", "--preset", "fast", "--no-write",
              "--split", "train", "--probe-steps", "5"])  # fmt: skip
