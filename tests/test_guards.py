"""Issue 23, "Nothing lost, nothing silently wrong": each data loss reproduced first, then
refused; each silently wrong record now true or refused. The one-line CLI errors are in
tests/test_cli_errors.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import taco_lite.train.cli as train_cli
from taco_lite.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from taco_lite.runtime.rundir import RunDirError, RunDirLock, check_writable, claim_run_dir
from tests.test_resume import _tiny_cli
from tests.test_train import VOCAB, synthetic_items, tiny_model_cfg, tiny_train_cfg

TINY = ["--steps", "4", "--quiet", "--device", "cpu", "--ckpt-every", "2"]


# ------------------------------------------------------------------ data loss 1: two runs, one --out


def test_a_save_never_deletes_a_live_process_temp_file(tmp_path):
    """Each save deleted every `.last.pt.*.tmp`, the other run's file in flight included."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        in_flight = tmp_path / f".last.pt.{other.pid}.abcd1234.tmp"
        in_flight.write_bytes(b"half a checkpoint")
        dead = tmp_path / ".last.pt.99999999.abcd1234.tmp"  # no such pid: a killed writer's
        dead.write_bytes(b"")
        old_kit = tmp_path / ".last.pt.abcd1234.tmp"  # an older kit's name, writer gone
        old_kit.write_bytes(b"")
        save_checkpoint(tmp_path / "last.pt", torch.nn.Linear(2, 2), step=1)
        assert in_flight.read_bytes() == b"half a checkpoint"
        assert not dead.exists() and not old_kit.exists()
    finally:
        other.kill()
        other.wait()


def test_a_second_process_is_locked_out_of_a_run_folder(tmp_path):
    first = claim_run_dir(tmp_path / "dup")
    with pytest.raises(RunDirError, match=f"in use by another training \\(pid {os.getpid()}\\)"):
        RunDirLock(tmp_path / "dup")  # a second open file description: flock refuses it too
    first.release()
    RunDirLock(tmp_path / "dup").release()  # a released (or dead) owner leaves no stale lock


def test_two_trainings_into_one_out_at_once_one_is_refused(tmp_path):
    """The issue's reproduction, as two real processes: one trains, the other is refused."""
    out = tmp_path / "dup"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from taco_lite.runtime.rundir import "
         "claim_run_dir; lock = claim_run_dir(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
            claim_run_dir(out)
    finally:
        holder.kill()
        holder.wait()
    claim_run_dir(out).release()  # the killed holder's lock went with its process


# ------------------------------------------------------ data loss 2: a new run over an old one


def test_a_new_run_into_a_run_folder_is_refused_and_keeps_last_pt(tmp_path, monkeypatch, capsys):
    _tiny_cli(monkeypatch)
    out = tmp_path / "run"
    train_cli.main([*TINY, "--out", str(out)])
    before = (out / "last.pt").read_bytes(), (out / "model.pt").read_bytes()
    with pytest.raises(RunDirError, match="already holds a run.*--resume.*--overwrite"):
        train_cli.main([*TINY, "--out", str(out), "--seed", "1"])  # re-running without --resume
    assert ((out / "last.pt").read_bytes(), (out / "model.pt").read_bytes()) == before
    reached = []

    def stop(*a, **k):  # --overwrite gets past the checks (and the old run is gone)
        reached.append(not (out / "last.pt").exists())
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "train", stop)
    with pytest.raises(KeyboardInterrupt):
        train_cli.main([*TINY, "--out", str(out), "--seed", "1", "--overwrite"])
    assert reached == [True]


# ----------------------------------------------------- data loss 6: unwritable --out, features D


def test_an_unusable_out_fails_before_the_first_step(tmp_path, monkeypatch):
    _tiny_cli(monkeypatch)
    steps = []
    monkeypatch.setattr(train_cli, "train", lambda *a, **k: steps.append(1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="not writable"):
        train_cli.main([*TINY, "--out", str(blocker / "run")])
    with pytest.raises(RunDirError, match="is a file"):
        check_writable(blocker)
    if os.geteuid() != 0:  # root writes anywhere; a normal user gets the permission check
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RunDirError, match="not writable"):
            check_writable(ro)
    assert steps == []


def test_features_whose_test_d_differs_are_refused_before_training(tmp_path):
    from taco_lite.data.sources import check_feature_splits
    from tests.test_data_sources import write_feature_release

    write_feature_release(tmp_path / "train", 2, seed=0, D=12)
    write_feature_release(tmp_path / "test", 2, seed=1, D=8)
    with pytest.raises(ValueError, match=r"\[T, 12\]: every split needs the same feature width"):
        check_feature_splits(tmp_path, ("train", "test"))


def test_a_bad_device_string_is_refused_before_training():
    from taco_lite.runtime.device import resolve_device

    for bad in ("cuda:abc", "gpu", "cuda:99"):
        with pytest.raises(ValueError, match="device="):
            resolve_device(bad)


# ------------------------------------------------- data loss 3: the world, and which world


def test_world_cli_never_overwrites_a_world_unasked(tmp_path, capsys):
    from taco_lite.world.__main__ import main as world_main

    out = tmp_path / "w"
    out.mkdir()
    (out / "world.json.gz").write_bytes(b"precious")
    with pytest.raises(SystemExit) as exit_:
        world_main(["--num-clips", "60", "--out", str(out)])
    assert exit_.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "world.json.gz").read_bytes() == b"precious"
    world_main(["--num-clips", "60", "--noise", "2", "--out", str(out), "--overwrite"])
    manifest = json.loads((out / "manifest.json").read_text())
    # the regenerate hint repeats the knobs the world was made with
    assert "--seed 0 --num-clips 60 --noise 2 --out" in manifest["regenerate"]
    default = [a.default for a in _world_parser_actions() if a.dest == "out"][0]
    assert Path(default).resolve() != (Path(__file__).parents[1] / "data" / "world").resolve()


def _world_parser_actions():
    import argparse

    import taco_lite.world.__main__ as world_cli

    made = {}
    real = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        made["p"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            world_cli.main([])
    finally:
        argparse.ArgumentParser.parse_args = real
    return made["p"]._actions


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    from taco_lite.world import WorldConfig, generate_world, save_world

    return save_world(generate_world(WorldConfig(num_clips=60)), tmp_path_factory.mktemp("w"))


def test_a_checkpoint_of_the_shipped_world_refuses_another_one(small_world, monkeypatch):
    """`world --num-clips 200` over data/world, then evaluating taco.pt, gave N = 67 silently.
    A pre-fingerprint checkpoint (data "") is compared with the shipped world's fingerprint."""
    from taco_lite.runtime.provenance import DataMismatchError, check_same_data, data_record

    assert check_same_data(None, "", "", explicit=False) is None  # the shipped world: fine
    monkeypatch.setenv("TACO_LITE_DATA", str(small_world))  # data/world replaced, in effect
    with pytest.raises(DataMismatchError, match="the data changed since training"):
        check_same_data(None, "", "", explicit=False)
    # a new checkpoint records its world's fingerprint and the knobs to remake it
    rec = data_record(f"world:{small_world}")
    assert rec["fingerprint"].startswith("world:") and "--num-clips 60" in rec["regenerate"]
    with pytest.raises(DataMismatchError, match="--num-clips 60"):
        check_same_data({"data": rec}, f"world:{small_world}", "world:" + str(
            Path(__file__).parents[1] / "data" / "world"), explicit=False)  # fmt: skip
    monkeypatch.delenv("TACO_LITE_DATA")
    note = check_same_data({"data": rec}, f"world:{small_world}", "", explicit=True)
    assert "scoring on it as you asked" in note  # --world given on purpose: a warning


def test_paths_are_stored_resolved(tmp_path, monkeypatch):
    from taco_lite.data.sources import data_spec

    monkeypatch.chdir(tmp_path)
    assert data_spec(world="../w") == f"world:{(tmp_path / '..' / 'w').resolve()}"


# ---------------------------------------------------------------- data loss 4 and 5


def test_tag_cache_never_overwrites_a_file_that_is_not_a_tag_cache(tmp_path, monkeypatch):
    from taco_lite.text.tagging import tag_captions

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    notes.chmod(0o644)
    monkeypatch.setenv("TACO_TAG_CACHE", str(notes))
    with pytest.raises(ValueError, match="not a tag cache.*left untouched"):
        tag_captions(["The ball rolls."])
    assert notes.read_text() == "my notes" and notes.stat().st_mode & 0o777 == 0o644


def test_release_refuses_to_write_over_instructor_notebooks(tmp_path):
    import shutil

    from taco_lite.course.student import release

    src = tmp_path / "notebooks" / "02_sentence_nce.ipynb"
    src.parent.mkdir()
    shutil.copy(Path(__file__).parents[1] / "notebooks" / src.name, src)
    before = src.read_bytes()
    with pytest.raises(ValueError, match="instructor notebook"):
        release(src.parent, [src])  # `course release --out notebooks`
    copy = tmp_path / "elsewhere" / src.name
    copy.parent.mkdir()
    shutil.copy(src, copy)
    with pytest.raises(ValueError, match="instructor notebook"):
        release(copy.parent, [src], overwrite=True)  # never, even with --overwrite
    assert src.read_bytes() == before
    out = tmp_path / "student"
    release(out, [src])
    with pytest.raises(ValueError, match="--overwrite"):
        release(out, [src])
    assert release(out, [src], overwrite=True) == [out / src.name]


# ------------------------------------------------------------------------- silently wrong


def test_the_checksum_covers_the_vocabulary_configs_and_step(tmp_path):
    model = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "model.pt", model, step=3, vocab=["a", "b", "c"])
    for edit in (lambda s: s["vocab"].reverse(), lambda s: s.update(step=4)):
        state = torch.load(path, weights_only=True)
        edit(state)  # swapped words, another step; the stored checksum left as it was
        torch.save(state, tmp_path / "edited.pt")
        with pytest.raises(CheckpointError, match="fails its checksum"):
            load_checkpoint(tmp_path / "edited.pt")
    for shipped in ("taco.pt", "baseline_l1.pt"):  # older files: their tensor checksum
        load_checkpoint(Path(__file__).parents[1] / "data" / "checkpoints" / shipped)


def test_pair_views_count_the_whole_run_across_resumes(tmp_path):
    from taco_lite.train import train

    items = synthetic_items(24)
    mcfg = tiny_model_cfg()
    part = train(mcfg, tiny_train_cfg(tmp_path / "p", steps=6), datasets={"train": items},
                 vocab=VOCAB, stop_at=3)  # fmt: skip
    rest = train(mcfg, tiny_train_cfg(tmp_path / "p", steps=6), datasets={"train": items},
                 vocab=VOCAB, resume=part.checkpoint)  # fmt: skip
    whole = {"pairs": 24, "views": 6 * 8, "max": 2, "mean": 2.0}  # 6 steps of 8 = 2 epochs
    assert rest.extra["pair_views"] == whole  # was 24 views: the resumed half only
    done = train(mcfg, tiny_train_cfg(tmp_path / "p", steps=6), datasets={"train": items},
                 vocab=VOCAB, resume=rest.checkpoint)  # resuming a finished run  # fmt: skip
    assert done.extra["pair_views"] == whole  # was 0


def test_a_resumed_run_keeps_its_preset(tmp_path, monkeypatch):
    import argparse

    from taco_lite.train.preflight import kept_preset

    path = save_checkpoint(tmp_path / "last.pt", torch.nn.Linear(2, 2), extra={"preset": "fast"})
    args = argparse.Namespace(resume=str(path), preset="sweep", out=None)
    with pytest.raises(ValueError, match="started with --preset fast"):
        kept_preset(args)
    args.preset = None
    kept_preset(args)
    assert args.preset == "fast"


def test_a_diverging_run_stops_and_saves_nothing_final(tmp_path):
    from taco_lite.train.guards import DivergenceGuard, TrainingDiverged

    guard = DivergenceGuard([], tmp_path, lr=1e6)
    guard.check({"step": 1, "loss": 4.2})
    guard.check({"step": 2, "loss": 40.0})
    with pytest.raises(TrainingDiverged, match="grew from 4.2 to 1.3e\\+12.*--lr"):
        guard.check({"step": 3, "loss": 1.3e12})
    with pytest.raises(TrainingDiverged, match="not finite"):
        guard.check({"step": 4, "loss": float("nan")})


def test_a_diverging_training_leaves_no_model_pt(tmp_path, monkeypatch):
    import taco_lite.train.loop as loop
    from taco_lite.train import train
    from taco_lite.train.guards import TrainingDiverged
    from taco_lite.train.step import StepOutput

    real, calls = loop.taco_step, []

    def exploding(*a, **k):
        out = real(*a, **k)
        calls.append(1)
        return StepOutput(**{**out.__dict__, "total": out.total * (1e6 if len(calls) > 2 else 1)})

    monkeypatch.setattr(loop, "taco_step", exploding)
    cfg = tiny_train_cfg(tmp_path, steps=6)
    with pytest.raises(TrainingDiverged):
        train(tiny_model_cfg(), cfg, datasets={"train": synthetic_items(24)}, vocab=VOCAB)
    assert not (Path(cfg.ckpt_dir) / "model.pt").exists()


def test_sweep_results_are_keyed_by_their_full_configuration(tmp_path):
    from taco_lite.sweep.run import failure_line, reusable, run_config

    made = run_config("sweep", "test", 16, 2, "", False, 0, 2000)
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"config": made}))
    assert reusable(path, made)
    with pytest.raises(ValueError, match="steps 2 there, 30 here"):
        reusable(path, {**made, "steps": 30})
    path.write_text(json.dumps({"row": "L1"}))  # an older record, no configuration
    with pytest.raises(ValueError, match="records no configuration"):
        reusable(path, made)
    log = tmp_path / "log.txt"
    log.write_text("step 1\npython -m taco_lite.sweep: error: no world at /x\n\n")
    assert failure_line(log) == "python -m taco_lite.sweep: error: no world at /x"


@pytest.mark.parametrize(
    "value, fast",
    [("1", True), (" 1", True), ("true", True), ("TRUE", True), ("yes", True), ("On", True),
     ("0", False), ("false", False), ("no", False), ("off", False), ("", False), (None, False)],
)  # fmt: skip
def test_taco_fast_accepts_the_usual_spellings(monkeypatch, value, fast):
    from taco_lite.runtime.env import fast_mode

    if value is None:
        monkeypatch.delenv("TACO_FAST", raising=False)
    else:
        monkeypatch.setenv("TACO_FAST", value)
    assert fast_mode() is fast


@pytest.mark.parametrize("value", ["2", "fast", "y e s", "-1"])
def test_taco_fast_refuses_anything_else(monkeypatch, value):
    from taco_lite.runtime.env import fast_mode

    monkeypatch.setenv("TACO_FAST", value)
    with pytest.raises(ValueError, match="neither true nor false"):
        fast_mode()


def test_ctrl_c_says_where_the_checkpoint_is(capsys):
    from taco_lite.runtime.cli_errors import on_interrupt, run_cli

    def main(argv):
        on_interrupt("the last checkpoint is runs/x/last.pt; continue with --resume")
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run_cli("python -m taco_lite.train", main, [])
    err = capsys.readouterr().err
    assert exit_.value.code == 130 and "runs/x/last.pt" in err and "--resume" in err


def test_the_explorer_refuses_a_fractional_row_with_a_message():
    """`row=1.5` in the explorer used to end in a TypeError traceback."""
    from taco_lite.widgets.render import render_alignment

    class Tiny:
        seg_ids = [0, 1, 2]

    result = render_alignment(Tiny(), 1.5, "TACo")
    assert not result.ok and "not a segment number" in result.message
