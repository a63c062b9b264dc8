"""No lost runs, same seed = same numbers (issue 11).

Periodic checkpoints (by steps and by wall time), bit-identical runs with the DEFAULT thread
count (nothing here forces one thread), a resumed run that refuses a changed config, and a
real `python -m taco_lite.train` subprocess killed with SIGKILL and resumed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import taco_lite.train.cli as train_cli
import taco_lite.train.loop as train_mod
from taco_lite.config import PRESETS
from taco_lite.runtime.checkpoint import load_checkpoint
from taco_lite.train import main, train

try:
    from test_train import VOCAB, synthetic_items, tiny_model_cfg, tiny_train_cfg
except ImportError:  # pragma: no cover - run from the repository root as a package
    from tests.test_train import VOCAB, synthetic_items, tiny_model_cfg, tiny_train_cfg

REPO = Path(__file__).resolve().parents[1]


def default_threads_in_use() -> None:
    """The point of these tests: torch's default thread count, not a forced single thread."""
    if (os.cpu_count() or 1) > 1:
        assert torch.get_num_threads() > 1, "a test forced one thread, which hides issue 11"


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [v.detach().clone() for v in model.state_dict().values()]


KEYS = ("loss", "L1", "L2", "L3", "fusion_acc", "lr")


# ------------------------------------------------------------------------------ same seed


@pytest.mark.parametrize("negatives", ["cascade", "random"])
def test_same_seed_is_bit_identical_with_default_threads(tmp_path, negatives):
    """Two runs, same seed: identical history and weights. Before the fix they differed from
    step 3 with 2 threads (the backward of `tokens[idx]` accumulated in a varying order)."""
    default_threads_in_use()
    items = {"train": synthetic_items(64)}
    mcfg = tiny_model_cfg(d=64, dropout=0.1)
    runs = [
        train(
            mcfg,
            tiny_train_cfg(tmp_path / str(r), steps=6, batch_size=32, k_neg=8, negatives=negatives),
            datasets=items,
            vocab=VOCAB,
        )
        for r in range(2)
    ]
    assert [[h[k] for k in KEYS] for h in runs[0].history] == [
        [h[k] for k in KEYS] for h in runs[1].history
    ]
    for a, b in zip(weights(runs[0].model), weights(runs[1].model), strict=True):
        assert torch.equal(a, b)
    assert not torch.are_deterministic_algorithms_enabled()  # train() restored the global flag


# ------------------------------------------------------------------------------ periodic saves


def test_every_preset_checkpoints_by_steps_and_by_time():
    for name, preset in PRESETS.items():
        _, tcfg = preset.configs()
        assert 0 < tcfg.ckpt_every < tcfg.steps, name
        assert 0 < tcfg.ckpt_minutes <= 2.0, name
        assert tcfg.deterministic, name


def test_checkpoint_by_wall_time(tmp_path, monkeypatch):
    """ckpt_every=0 and a tiny ckpt_minutes: last.pt is written after every step."""
    saved_steps = []
    real = train_mod.save_checkpoint

    def spy(path, *args, **kwargs):
        saved_steps.append((Path(path).name, args[3] if len(args) > 3 else kwargs.get("step")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(train_mod, "save_checkpoint", spy)
    tcfg = tiny_train_cfg(tmp_path, steps=4, ckpt_every=0, ckpt_minutes=1e-9)
    train(tiny_model_cfg(), tcfg, datasets={"train": synthetic_items(16)}, vocab=VOCAB)
    assert saved_steps == [("last.pt", 1), ("last.pt", 2), ("last.pt", 3)] + [
        ("last.pt", 4),
        ("model.pt", 4),
    ]
    saved_steps.clear()
    tcfg = tiny_train_cfg(tmp_path / "b", steps=4, ckpt_every=0, ckpt_minutes=60.0)
    train(tiny_model_cfg(), tcfg, datasets={"train": synthetic_items(16)}, vocab=VOCAB)
    assert saved_steps == [("last.pt", 4), ("model.pt", 4)]  # only the end


def test_bad_checkpoint_settings_are_clear():
    with pytest.raises(ValueError, match="ckpt_minutes"):
        dataclasses.replace(PRESETS["fast"].train, ckpt_minutes=-1.0)
    with pytest.raises(ValueError, match="seed is -1"):
        dataclasses.replace(PRESETS["fast"].train, seed=-1)


# ------------------------------------------------------------------------------ resume checks


@pytest.fixture
def half_run(tmp_path):
    items = {"train": synthetic_items(20)}
    tcfg = tiny_train_cfg(tmp_path / "run", steps=6)
    half = train(tiny_model_cfg(), tcfg, datasets=items, vocab=VOCAB, stop_at=3)
    return items, tcfg, half.checkpoint


def test_resume_refuses_a_changed_config_naming_each_field(half_run):
    items, tcfg, ckpt = half_run
    changed = dataclasses.replace(tcfg, lr=5e-3, seed=7, losses="L1+L3", negatives="random")
    with pytest.raises(ValueError) as err:
        train(tiny_model_cfg(), changed, datasets=items, vocab=VOCAB, resume=ckpt)
    msg = str(err.value)
    for field in ("lr: checkpoint 0.001, here 0.005", "seed: checkpoint 0, here 7", "losses"):
        assert field in msg, msg
    assert "negatives" in msg and "another --out" in msg
    with pytest.raises(ValueError, match="model d: checkpoint 32, here 64"):
        train(tiny_model_cfg(d=64), tcfg, datasets=items, vocab=VOCAB, resume=ckpt)
    with pytest.raises(ValueError, match="vocabulary"):
        train(tiny_model_cfg(), tcfg, datasets=items, vocab=VOCAB + ["extra"], resume=ckpt)


def test_resume_steps_change_needs_the_override_and_never_goes_back(half_run):
    items, tcfg, ckpt = half_run
    longer = dataclasses.replace(tcfg, steps=8)
    with pytest.raises(ValueError, match=r"steps: checkpoint 6, here 8 \(allowed with --override"):
        train(tiny_model_cfg(), longer, datasets=items, vocab=VOCAB, resume=ckpt)
    result = train(
        tiny_model_cfg(),
        longer,
        datasets=items,
        vocab=VOCAB,
        resume=ckpt,
        override_resume_config=True,
    )
    assert result.train_cfg.steps == 8 and len(result.history) == 8
    shorter = dataclasses.replace(tcfg, steps=2)
    with pytest.raises(ValueError, match="is at step 8 but steps is 2"):  # the resumed run saved
        train(
            tiny_model_cfg(),
            shorter,
            datasets=items,
            vocab=VOCAB,
            resume=ckpt,
            override_resume_config=True,
        )


def test_resume_takes_bookkeeping_changes_and_records_the_real_config(half_run):
    items, tcfg, ckpt = half_run
    quiet = dataclasses.replace(tcfg, progress=False, log_every=1, ckpt_every=1)
    result = train(tiny_model_cfg(), quiet, datasets=items, vocab=VOCAB, resume=ckpt)
    assert result.train_cfg.ckpt_every == 1 and result.train_cfg.lr == tcfg.lr
    assert len(result.history) == 6


# ------------------------------------------------------------------------------ CLI


def _tiny_cli(monkeypatch):
    items = synthetic_items(24)
    monkeypatch.setattr(
        train_cli,
        "load_world_datasets",
        lambda mcfg, tcfg, splits=("train", "test"): ({"train": items, "test": items[:12]}, VOCAB),
    )
    fast = train_cli.PRESETS["fast"]
    monkeypatch.setattr(
        train_cli,
        "PRESETS",
        {
            "fast": dataclasses.replace(
                fast,
                model=tiny_model_cfg(),
                train=dataclasses.replace(fast.train, batch_size=8, k_neg=3),
            )
        },
    )


def test_cli_resume_checks_and_result_json(tmp_path, monkeypatch, capsys):
    _tiny_cli(monkeypatch)
    out = tmp_path / "cli"
    base = ["--steps", "4", "--k-neg", "3", "--out", str(out), "--quiet", "--device", "cpu"]
    with pytest.raises(ValueError, match="found no .*last.pt"):
        main([*base, "--resume"])
    first = main([*base, "--ckpt-every", "2"])
    assert first["resumed_from"] is None and first["train_cfg"]["ckpt_every"] == 2
    with pytest.raises(ValueError, match="lr: checkpoint 0.002, here 0.01"):
        main([*base, "--resume", "--lr", "1e-2"])
    with pytest.raises(ValueError, match="allowed with --override-resume-config"):
        main([*base, "--steps", "6", "--resume"])
    again = main([*base, "--steps", "6", "--resume", "--override-resume-config"])
    assert again["resumed_from"] == {"checkpoint": str(out / "last.pt"), "step": 4}
    recorded = json.loads((out / "result.json").read_text())
    assert recorded["train_cfg"]["steps"] == 6 and recorded["steps"] == 6
    assert recorded["train_cfg"]["warmup_steps"] == first["train_cfg"]["warmup_steps"]


def test_cli_negative_seed_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--seed", "-1"])
    assert exit_.value.code == 2
    assert "--seed: -1 is negative" in capsys.readouterr().err


def test_cli_errors_are_one_line_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "taco_lite.train", "--resume", str(tmp_path / "none.pt")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2  # as argparse exits on a bad flag (issue 23)
    assert "error: no checkpoint at" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------ kill -9


@pytest.mark.slow  # three CLI processes (~47 s CPU on the 2-core VM); CI runs slow tests too
def test_sigkilled_cli_run_resumes_bit_identical(tmp_path):
    """A real `python -m taco_lite.train` on a tiny world, SIGKILLed once last.pt exists, then
    `--resume`d: final weights, history and test metrics equal an unbroken run's, bit for bit,
    with the default thread count in every process."""
    world = tmp_path / "world"
    subprocess.run(
        [sys.executable, "-m", "taco_lite.world", "--num-clips", "30", "--out", str(world)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    env = {**os.environ, "TACO_LITE_DATA": str(world)}
    env.pop("OMP_NUM_THREADS", None)
    steps = 16
    args = ["--steps", str(steps), "--batch-size", "4", "--k-neg", "2", "--quiet"]  # 14 per epoch
    args += ["--device", "cpu", "--ckpt-every", "2"]

    def cli(out: Path, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "taco_lite.train", *args, "--out", str(out), *extra]
        return subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    whole = cli(tmp_path / "whole")  # runs alongside the killed one
    killed_dir = tmp_path / "killed"
    victim = cli(killed_dir)
    last = killed_dir / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()
    killed_at = load_checkpoint(last)["step"]
    assert 0 < killed_at < steps
    assert not (killed_dir / "result.json").exists()

    resumed = cli(killed_dir, "--resume")
    for proc in (whole, resumed):
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    a = json.loads((tmp_path / "whole" / "result.json").read_text())
    b = json.loads((killed_dir / "result.json").read_text())
    assert b["resumed_from"]["step"] == killed_at
    assert a["test"] == b["test"] and a["final"] == b["final"]
    ha = json.loads((tmp_path / "whole" / "history.json").read_text())
    hb = json.loads((killed_dir / "history.json").read_text())
    assert ha == hb and len(ha) == steps
    wa = load_checkpoint(tmp_path / "whole" / "model.pt")["model"]
    wb = load_checkpoint(killed_dir / "model.pt")["model"]
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
