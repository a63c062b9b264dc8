"""Bad inputs for every command line, shared by tests/test_cli_errors.py (in-process, each must
give a one-line error) and benchmarks/bad_inputs.py (subprocesses, outcomes counted).

`bad_inputs(tmp)` returns {command: [(label, argv), ...]}; `tmp` is an empty folder the inputs
may fill with the files they need (an existing world, a stale sweep result, a garbage file).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CKPT = str(REPO / "data" / "checkpoints" / "taco.pt")


def bad_inputs(tmp: Path) -> dict[str, list[tuple[str, list[str]]]]:
    tmp = Path(tmp)
    a_file = tmp / "a_file.txt"
    a_file.write_text("not a folder, not a checkpoint")
    world = tmp / "world_here"
    world.mkdir()
    (world / "world.json.gz").write_bytes(b"someone's world")
    (world / "manifest.json").write_text("{}")
    stale = tmp / "sweep_stale" / "l1" / "seed0"
    stale.mkdir(parents=True)
    (stale / "result.json").write_text(json.dumps({"row": "L1", "seed": 0}))  # no config
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    nb = notebooks / "02_sentence_nce.ipynb"
    shutil.copy(REPO / "notebooks" / nb.name, nb)
    released = tmp / "student"
    released.mkdir()
    (released / nb.name).write_text("{}")
    garbage_nb = tmp / "garbage.ipynb"
    garbage_nb.write_text("this is not JSON")
    out = str(tmp / "out")
    return {
        "world": [
            ("no clips", ["--num-clips", "0", "--out", out]),
            ("too few clips", ["--num-clips", "3", "--out", out]),
            ("clips not a number", ["--num-clips", "many", "--out", out]),
            ("seed not a number", ["--seed", "x", "--out", out]),
            ("negative noise", ["--noise", "-1", "--num-clips", "60", "--out", out]),
            ("twin-frac above 1", ["--twin-frac", "2", "--num-clips", "60", "--out", out]),
            ("nan probability", ["--distractor-action-prob", "nan", "--out", out]),
            ("too many distractors", ["--num-distractors", "9", "--out", out]),
            ("over an existing world", ["--num-clips", "60", "--out", str(world)]),
            ("out is a file", ["--num-clips", "60", "--out", str(a_file)]),
            ("unknown flag", ["--clips", "60"]),
        ],
        "train": [
            ("steps 0", ["--steps", "0", "--out", out]),
            ("negative lr", ["--lr", "-1", "--out", out]),
            ("infinite lr", ["--lr", "inf", "--out", out]),
            ("batch size 0", ["--batch-size", "0", "--out", out]),
            ("negative seed", ["--seed", "-1", "--out", out]),
            ("bad device", ["--device", "cuda:abc", "--out", out]),
            ("missing resume", ["--resume", str(tmp / "none.pt"), "--out", out]),
            ("resume a folder", ["--resume", str(tmp), "--out", out]),
            ("resume garbage", ["--resume", str(a_file), "--out", out]),
            ("out under a file", ["--out", str(a_file / "run")]),
            ("missing world", ["--world", str(tmp / "nowhere"), "--out", out]),
            ("missing features", ["--features", str(tmp / "nowhere"), "--out", out]),
            ("unknown losses", ["--losses", "L9", "--out", out]),
            ("unknown preset", ["--preset", "nope", "--out", out]),
            ("k_neg above batch", ["--k-neg", "40", "--batch-size", "8", "--out", out]),
        ],
        "evaluate": [
            ("missing checkpoint", ["--checkpoint", str(tmp / "none.pt")]),
            ("checkpoint is a folder", ["--checkpoint", str(tmp)]),
            ("checkpoint is garbage", ["--checkpoint", str(a_file)]),
            ("empty splits", ["--checkpoint", SHIPPED_CKPT, "--splits", ","]),
            ("unknown split", ["--checkpoint", SHIPPED_CKPT, "--splits", "tset"]),
            ("top-k 0", ["--checkpoint", SHIPPED_CKPT, "--top-k", "0"]),
            ("negative lambda", ["--checkpoint", SHIPPED_CKPT, "--lambda-t", "-5"]),
            ("nan lambda", ["--checkpoint", SHIPPED_CKPT, "--lambda-t", "nan"]),
            ("bad device", ["--checkpoint", SHIPPED_CKPT, "--device", "cuda:abc"]),
            ("negative seed", ["--checkpoint", SHIPPED_CKPT, "--seed", "-1"]),
            ("negative subset", ["--checkpoint", SHIPPED_CKPT, "--full-fusion-subset", "-3"]),
            ("missing world", ["--checkpoint", SHIPPED_CKPT, "--world", str(tmp / "nowhere")]),
            ("no checkpoint flag", ["--splits", "test"]),
        ],
        "sweep": [
            ("jobs 0", ["--jobs", "0", "--out", out]),
            ("steps 0", ["--steps", "0", "--out", out]),
            ("threads 0", ["--threads", "0", "--out", out]),
            ("top-k 0", ["--top-k", "0", "--out", out]),
            ("negative seed", ["--seeds", "-1", "--out", out]),
            ("negative eval clips", ["--eval-clips", "-1", "--out", out]),
            ("n-eval 0", ["--n-eval", "0", "--out", out]),
            ("unknown row", ["--rows", "l9", "--out", out]),
            ("unknown preset", ["--preset", "nope", "--out", out]),
            ("jobs not a number", ["--jobs", "two", "--out", out]),
            (
                "stale result",
                [
                    "--rows",
                    "l1",
                    "--seeds",
                    "0",
                    "--steps",
                    "30",
                    "--no-write",
                    "--out",
                    str(tmp / "sweep_stale"),
                ],
            ),
        ],
        "downstream": [
            ("steps 0", ["--steps", "0"]),
            ("batch size 0", ["--batch-size", "0"]),
            ("negative seed", ["--seeds", "-1"]),
            ("zero feature rate", ["--features-per-second", "0"]),
            ("unknown preset", ["--preset", "nope"]),
            ("unknown split", ["--split", "tset"]),
            ("probe steps 0", ["--probe-steps", "0"]),
            ("window 0", ["--window", "0"]),
            ("negative fusion width", ["--fusion-width", "-2"]),
            ("seed not a number", ["--seeds", "x"]),
            ("missing world", ["--world", str(tmp / "nowhere"), "--baselines-only"]),
        ],
        "course": [
            ("no command", []),
            ("unknown command", ["publish"]),
            ("release over the sources", ["release", "--out", str(notebooks), str(nb)]),
            ("release over a release", ["release", "--out", str(released), str(nb)]),
            ("release a missing notebook", ["release", "--out", out, str(tmp / "nb.ipynb")]),
            ("release garbage", ["release", "--out", out, str(garbage_nb)]),
            ("release a text file", ["release", "--out", out, str(a_file)]),
            ("release a folder", ["release", "--out", out, str(notebooks)]),
            ("release out is a file", ["release", "--out", str(a_file), str(nb)]),
            ("unknown flag", ["release", "--bogus"]),
        ],
    }
