"""The command line: `python -m taco_lite.train --preset fast [--resume] [--ckpt-every N]`.

It turns flags into a `ModelConfig` and a `TrainConfig` (a preset, then overrides), finds the
checkpoint to resume from, runs `loop.train`, evaluates the result on the test split and
writes `result.json` with the configuration that was really used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.config import LOSS_CHOICES, PRESETS, ModelConfig, TrainConfig
from taco_lite.runtime.checkpoint import (
    load_checkpoint,
)
from taco_lite.train.loop import load_world_datasets, train


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.train",
        description="Train TACo on the toy world, then report test-split retrieval R@1.",
    )
    p.add_argument(
        "--preset", choices=sorted(PRESETS), help="default fast; a resumed run keeps its own"
    )
    p.add_argument("--losses", choices=LOSS_CHOICES, help="loss terms (default: the preset's)")
    p.add_argument("--negatives", choices=("cascade", "random"))
    p.add_argument("--pos-tags", help="tokens of interest, e.g. noun+verb, noun, det+adp, all")
    p.add_argument("--k-neg", type=int, help="K': hard negatives per anchor for L3")
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--seed", type=_non_negative_int, help="random seed, an integer >= 0")
    p.add_argument("--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (CUDA and CPU)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile (--no-compile turns off the gpu preset's)",
    )
    p.add_argument("--drop-false-negatives", action="store_true", default=None)
    p.add_argument(
        "--endless-data",
        action="store_true",
        default=None,
        help="fresh world clips every epoch (no training pair seen twice)",
    )
    p.add_argument("--out", help="run folder for checkpoints and results (default runs/PRESET)")
    p.add_argument(
        "--ckpt-every",
        type=_non_negative_int,
        help="write OUT/last.pt every N steps (default: the preset's; it is also written "
        "after every 2 minutes of training, and at the end)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=AUTO_RESUME,
        help="continue a killed run: a checkpoint such as runs/fast/last.pt, or no value for "
        "OUT/last.pt. Use the run's own flags; a changed config is refused",
    )
    p.add_argument(
        "--override-resume-config",
        action="store_true",
        help="let a resumed run change --steps (not below the checkpoint's step), --device, "
        "--compile; it then no longer reproduces an unbroken run",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out folder that holds another run (its files are replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--token-chunk", type=int,
        help="L2's token scores C videos at a time with the memory-bounded backward (0 = off)",
    )  # fmt: skip
    data = p.add_mutually_exclusive_group()
    data.add_argument("--world", help="train on this generated world folder (default: shipped)")
    data.add_argument(
        "--features", help="train on real features: PATH/train, PATH/test (docs/real_data.md)"
    )
    return p


AUTO_RESUME = "OUT/last.pt"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use an integer >= 0, e.g. 0")
    return value


def positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not allowed here; use an integer >= 1")
    return value


def positive_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0, e.g. 3e-4")
    return value


def resume_path(args: argparse.Namespace) -> Path | None:
    """The checkpoint `--resume` names: its value, or OUT/last.pt for a bare `--resume`."""
    if args.resume is None:
        return None
    if args.resume == AUTO_RESUME:
        out = Path(args.out or f"runs/{args.preset or 'fast'}")
        path = out / "last.pt"
        if not path.is_file():
            raise ValueError(
                f"--resume found no {path} to continue: run without --resume to start, or give "
                "the checkpoint's path (--resume runs/NAME/last.pt)"
            )
        return path
    return Path(args.resume)


def configs_from_args(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """Preset first, then every flag the user gave; TrainConfig validates the result."""
    args.preset = args.preset or "fast"
    model_cfg, train_cfg = PRESETS[args.preset].configs()
    overrides = {
        "losses": args.losses,
        "negatives": args.negatives,
        "pos_tags": args.pos_tags,
        "k_neg": args.k_neg,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "amp": args.amp,
        "compile": args.compile,
        "drop_false_negatives": args.drop_false_negatives,
        "endless_data": args.endless_data,
    }
    overrides["ckpt_every"] = getattr(args, "ckpt_every", None)
    from taco_lite.data.sources import data_spec, model_config_for_data

    overrides["token_chunk"] = getattr(args, "token_chunk", None)
    overrides["data"] = data_spec(getattr(args, "world", None), getattr(args, "features", None))
    model_cfg = model_config_for_data(model_cfg, overrides["data"])
    changes = {k: v for k, v in overrides.items() if v is not None}
    resume = getattr(args, "resume", None)
    if args.out is None and resume not in (None, AUTO_RESUME):
        changes["ckpt_dir"] = str(Path(resume).parent)  # keep writing where the run lives
    else:
        changes["ckpt_dir"] = args.out or f"runs/{args.preset}"
    if args.quiet:
        changes["progress"] = False
    if args.steps is not None and "warmup_steps" not in changes:
        changes["warmup_steps"] = min(train_cfg.warmup_steps, max(0, args.steps // 10))
    return model_cfg, dataclasses.replace(train_cfg, **changes)


def _ranked_by(terms: Sequence[str]) -> str:
    if tuple(terms) == ("L3",):
        return "s3 (full fusion)"
    first = "s1 + lambda_t * s2" if "L2" in terms else "s1"
    return first if "L3" not in terms else f"cascade: {first}, top-16 + s3"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; returns the summary it prints (and writes to OUT/result.json).

    result.json records the configs the run really used (`model_cfg`, `train_cfg`), which for a
    resumed run are the checkpoint's, and where it resumed from (`resumed_from`).
    """
    from taco_lite.train.preflight import claim_and_check, kept_preset

    args = build_parser().parse_args(argv)
    saved = kept_preset(args)  # a resumed run keeps its preset; a different one is refused
    model_cfg, train_cfg = configs_from_args(args)
    resume = resume_path(args)
    resumed_from = None
    lock, record = claim_and_check(args, model_cfg, train_cfg, resume)  # before any data
    if resume is not None:
        saved = saved or load_checkpoint(resume)
        resumed_from = {"checkpoint": str(resume), "step": int(saved["step"])}
        if args.steps is not None and saved.get("train_cfg"):
            # --steps derives warm-up from itself; a resumed run keeps the one it started with
            saved_warmup = saved["train_cfg"].get("warmup_steps", train_cfg.warmup_steps)
            train_cfg = dataclasses.replace(train_cfg, warmup_steps=saved_warmup)
    t0 = time.perf_counter()
    datasets, vocab = load_world_datasets(model_cfg, train_cfg)
    result = train(
        model_cfg,
        train_cfg,
        datasets=datasets,
        vocab=vocab,
        resume=resume,
        override_resume_config=args.override_resume_config,
        record=record,
    )
    model_cfg, train_cfg = result.model_cfg, result.train_cfg  # what was really used
    train_seconds = result.seconds
    from taco_lite.evaluate import ranked_retrieval
    from taco_lite.evaluate.inference import embed_dataset

    emb = embed_dataset(result.model, datasets["test"])
    with torch.no_grad():
        ranked = ranked_retrieval(result.model, emb, train_cfg.terms, train_cfg.lambda_t)["ranked"]
    metrics = {
        "t2v_R1": ranked["t2v"]["R1"],
        "v2t_R1": ranked["v2t"]["R1"],
        "chance_R1": 100.0 / len(emb),
        "N": len(emb),
        "ranked_by": _ranked_by(train_cfg.terms),
    }
    summary = {
        "preset": args.preset,
        "losses": train_cfg.losses,
        "negatives": train_cfg.negatives,
        "pos_tags": train_cfg.pos_tags,
        "k_neg": train_cfg.k_neg,
        "seed": train_cfg.seed,
        "steps": train_cfg.steps,
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
        "test": metrics,
        "final": {k: v for k, v in result.history[-1].items() if k != "epoch"},
        "pair_views": result.extra.get("pair_views"),
        "data_share": result.extra.get("data_share"),
        "checkpoint": str(result.checkpoint),
        "resumed_from": resumed_from,
        "model_cfg": dataclasses.asdict(model_cfg),
        "train_cfg": dataclasses.asdict(train_cfg),
    }
    out = Path(train_cfg.ckpt_dir)
    (out / "result.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps(result.history))
    lock.release()  # OUT/.lock (also dropped when this process ends)
    print(
        f"test t2v R@1 {metrics['t2v_R1']:.1f}%  v2t R@1 {metrics['v2t_R1']:.1f}%  "
        f"[{metrics['ranked_by']}]  "
        f"(chance {metrics['chance_R1']:.1f}%, N={metrics['N']})  "
        f"{summary['total_seconds']:.0f}s  -> {out}"
    )
    views = result.extra.get("pair_views") or {}
    if views.get("pairs"):
        print(
            f"training pairs: {views['pairs']} seen, each at most {views['max']} times "
            f"(mean {views['mean']:.1f}); data loading {100 * result.extra['data_share']:.0f}% "
            "of the training loop"
        )
    return summary


def cli(argv: Sequence[str] | None = None) -> None:
    """`python -m taco_lite.train`: main(), with a one-line error instead of a traceback for
    a user mistake, and Ctrl-C naming the checkpoint to resume from (runtime.cli_errors)."""
    from taco_lite.runtime.cli_errors import run_cli

    run_cli("python -m taco_lite.train", main, argv)
