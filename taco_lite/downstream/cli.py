"""Downstream transfer, as in the paper's Sec. 4.4: `python -m taco_lite.downstream`.

TACo's representations transfer to action step localization on CrossTask (average recall
42.5) and action segmentation on COIN (frame accuracy 68.4). This command runs both tasks on the
toy world's multi-step clips (`localize.py`, `segment.py`, data in `downstream_data.py`) for
three encoders, each over several seeds:

- random init: a TacoModel with the TACo run's config, never trained (the floor);
- L1: the sweep's sentence-level baseline (`runs/sweep/l1/seed<k>/model.pt`);
- TACo: L1+L2+L3 with cascade negatives, nouns + verbs (`runs/sweep/l1-l2-l3-cascade-noun-verb/`).

A missing checkpoint is trained with the chosen preset, in the sweep's layout. The table of
mean ± std over seeds goes to docs/results.md between `<!-- downstream:start -->` and
`<!-- downstream:end -->`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco_lite.downstream.data import (
    LocalizationVideo,
    StepLayout,
    encode_captions,
    world_localization_videos,
    world_segmentation_videos,
)
from taco_lite.downstream.encoders import ensure_checkpoint, load_encoder, random_encoder, text_idf
from taco_lite.downstream.localize import (
    DECODERS,
    VARIANTS,
    average_recall,
    chance_recall,
    decode,
    evenly_spaced_times,
    step_similarities,
)
from taco_lite.downstream.segment import segmentation_report

# (name in the table, sweep row slug); None = random init with the TACo run's config
ENCODERS: tuple[tuple[str, str | None], ...] = (
    ("random init", None),
    ("L1", "l1"),
    ("TACo (L1+L2+L3 cascade)", "l1-l2-l3-cascade-noun-verb"),
)
TACO_SLUG = "l1-l2-l3-cascade-noun-verb"
PAPER = {"CrossTask recall": 42.5, "COIN frame accuracy": 68.4}


def localization_report(
    model: Any,
    vocab: Any,
    idf: dict[str, float],
    pos_tags: str,
    videos: Sequence[LocalizationVideo],
    variants: Sequence[str] = VARIANTS,
    fusion_width: int = 8,
    window: int | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{variant: {decoder: average_recall(...)}} over `videos` (recall in percent)."""
    per: dict[str, dict[str, list]] = {v: {d: [] for d in DECODERS} for v in variants}
    for video in videos:
        text = encode_captions(video.step_captions, vocab, idf, pos_tags, model.cfg.max_tokens)
        sims = step_similarities(model, video.frames, text, variants, fusion_width, window)
        for v, sim in sims.items():
            for d in DECODERS:
                per[v][d].append((video.task, decode(sim, d), video.gold))
    return {v: {d: average_recall(per[v][d]) for d in DECODERS} for v in variants}


# ------------------------------------------------------------------------------ the run


@dataclasses.dataclass
class Tasks:
    """The videos of both tasks: step localization, and the probe's train / test clips."""

    localization: Sequence[LocalizationVideo]
    seg_train: Sequence[Any]
    seg_test: Sequence[Any]
    num_classes: int  # segmentation labels, background included
    fusion_width: int  # frames per fusion window
    where: str  # what the localization videos are, for the table


def world_tasks(args: argparse.Namespace) -> Tasks:
    """The toy world's tasks: StepLayout (or the world's own) clips, probe on the world clips."""
    from taco_lite.world import load_world

    world = load_world(args.world)
    layout = None if args.world_clips else StepLayout(seed=args.layout_seed)
    return Tasks(
        world_localization_videos(world, args.split, layout),
        world_segmentation_videos(world, "train"), world_segmentation_videos(world, args.split),
        1 + len(world.verb_names), args.fusion_width or round(sum(world.config.seg_len) / 2),
        repr(layout) if layout is not None else "the world's own clips",
    )  # fmt: skip


def real_tasks(args: argparse.Namespace) -> Tasks:
    """Real releases: a CrossTask folder (localization) and a COIN folder (the probe trains on
    its "training" subset, is scored on "testing"), both in the layout of docs/downstream.md."""
    from taco_lite.downstream.real import load_coin, load_crosstask

    if not (args.crosstask and args.coin):
        raise SystemExit(
            "--features trains the encoders on real features; the downstream videos then come "
            "from --crosstask DIR and --coin DIR (layouts in docs/downstream.md): give both"
        )
    fps = args.features_per_second
    seg_train, names = load_coin(args.coin, subset="training", features_per_second=fps)
    seg_test, _ = load_coin(args.coin, subset="testing", features_per_second=fps)
    return Tasks(
        load_crosstask(args.crosstask, features_per_second=fps), seg_train, seg_test,
        len(names), args.fusion_width or 8, f"CrossTask folder {args.crosstask}",
    )  # fmt: skip


def evaluate_encoder(
    model: Any,
    vocab: Any,
    pos_tags: str,
    idf: dict[str, float],
    tasks: Tasks,
    probe_steps: int,
    window: int | None = None,
) -> dict[str, Any]:
    """Both downstream tasks for one encoder (the probe trains on `tasks.seg_train`)."""
    t0 = time.perf_counter()
    loc = localization_report(model, vocab, idf, pos_tags, tasks.localization,
                              fusion_width=tasks.fusion_width, window=window)  # fmt: skip
    seg = segmentation_report(model, tasks.seg_train, tasks.seg_test,
                              num_classes=tasks.num_classes, steps=probe_steps, window=window)  # fmt: skip
    return {"localization": loc, "segmentation": seg, "seconds": time.perf_counter() - t0}


def baselines(videos: Sequence[LocalizationVideo]) -> dict[str, float]:
    """The model-free floors of step localization, in percent: a uniformly random frame per step
    (expected recall) and evenly spaced times (step order only)."""
    chance = [chance_recall(v.gold) for v in videos]
    even = [(v.task, evenly_spaced_times(*v.gold.shape), v.gold) for v in videos]
    return {
        "chance_recall": 100.0 * sum(chance) / len(chance),
        "evenly_spaced_recall": average_recall(even)["recall"],
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from taco_lite.data.sources import data_spec

    data = data_spec(args.world, args.features)
    tasks = real_tasks(args) if args.features else world_tasks(args)
    idf = text_idf(data)
    root = Path(args.checkpoints)
    results = []
    for seed in args.seeds:
        taco_path = ensure_checkpoint(root, TACO_SLUG, seed, args.preset, data, args.steps,
                                      args.batch_size)  # fmt: skip
        for name, slug in ENCODERS:
            if slug is None:
                taco, vocab, pos_tags = load_encoder(taco_path)
                model = random_encoder(taco, seed)
            else:
                path = ensure_checkpoint(root, slug, seed, args.preset, data, args.steps,
                                         args.batch_size)  # fmt: skip
                model, vocab, pos_tags = load_encoder(path)
            res = evaluate_encoder(model, vocab, pos_tags, idf, tasks, args.probe_steps,
                                   args.window)  # fmt: skip
            res.update(encoder=name, seed=seed)
            results.append(res)
            loc = res["localization"]
            print(f"seed {seed} {name}: recall token/sentence/fusion (ordered) "
                  + " / ".join(f"{loc[v]['ordered']['recall']:.1f}" for v in VARIANTS)
                  + f", frame acc {res['segmentation']['frame_acc']:.1f}"
                  + f"  ({res['seconds']:.0f}s)", flush=True)  # fmt: skip
    base = baselines(tasks.localization)
    for r in results:
        r.update(base)
        r["data"] = data
        r["fusion_width"] = tasks.fusion_width
        r["layout"] = tasks.where
        r["video_frames"] = [v.num_frames for v in tasks.localization]
    return results


def _ms(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def format_table(results: Sequence[dict[str, Any]], args: argparse.Namespace, command: str,
                 wall: float) -> str:  # fmt: skip
    from taco_lite.sweep import machine

    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["encoder"], []).append(r)
    cols = [(v, d) for v in VARIANTS for d in DECODERS]
    head = " | ".join(f"{v} {'DP' if d == 'ordered' else 'argmax'}" for v, d in cols)
    lines = [
        (
            f"Real features `{args.features}`"
            if args.features
            else f"Split `{args.split}` of the toy world"
        )
        + f", preset `{args.preset}`, seeds {args.seeds}. "
        "Mean ± std over seeds. Step localization: average recall (%) per score variant and "
        "decoder (argmax per step, or the ordered DP of CrossTask). Segmentation: frame "
        "accuracy (%) of a linear probe on frozen per-frame video tokens (trained on the train "
        "clips).",
        "",
        f"| encoder | seeds | {head} | segmentation frame acc |",
        "|---|---|" + "---|" * len(cols) + "---|",
    ]
    for name, _ in ENCODERS:
        rs = by.get(name)
        if not rs:
            continue
        cells = [_ms([r["localization"][v][d]["recall"] for r in rs]) for v, d in cols]
        seg = _ms([r["segmentation"]["frame_acc"] for r in rs])
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {seg} |")
    r0 = results[0]
    for name, key in (
        ("random frame per step (expected, no model)", "chance_recall"),
        ("evenly spaced (step order only, no model)", "evenly_spaced_recall"),
    ):
        lines.append(f"| {name} | - | " + " | ".join([f"{r0[key]:.1f}"] * len(cols)) + " | - |")
    frames = r0["video_frames"]
    lines += [
        "",
        f"Step-localization videos: {r0['layout']} ({len(frames)} videos of "
        f"{min(frames)}-{max(frames)} frames, mean {sum(frames) / len(frames):.0f}; see "
        f"docs/downstream.md). Chance: a uniformly random frame per step finds {r0['chance_recall']:.1f}% of the "
        f"steps; evenly spaced times (step order only, no model) find "
        f"{r0['evenly_spaced_recall']:.1f}%; always predicting the most frequent train label gives "
        f"{r0['segmentation']['majority']:.1f}% frame accuracy "
        f"({r0['segmentation']['test_frames']} test frames). Fusion window: "
        f"{r0['fusion_width']} frames. Paper (real data, not comparable in scale): CrossTask "
        f"recall {PAPER['CrossTask recall']}, COIN frame accuracy {PAPER['COIN frame accuracy']}.",
        f"Wall clock {wall / 60:.1f} min (training any missing checkpoint included).",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}.",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.downstream",
        description="Step localization and action segmentation on the toy world "
        "(random init vs L1 vs TACo), written to docs/results.md.",
    )
    p.add_argument("--checkpoints", default="runs/sweep", help="sweep folder (default runs/sweep)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", default="sweep", help="preset to train missing checkpoints")
    p.add_argument("--split", default="test", help="clips to evaluate on (default test)")
    p.add_argument("--steps", type=int, help="override the preset's training steps")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--world", help="world folder (default data/world)")
    data.add_argument("--features", help="train missing encoders on real features PATH/train "
                      "(docs/real_data.md); needs --crosstask and --coin")  # fmt: skip
    p.add_argument("--crosstask", help="with --features: a CrossTask-layout folder "
                   "(docs/downstream.md) for step localization")  # fmt: skip
    p.add_argument("--coin", help="with --features: a COIN-layout folder (docs/downstream.md); "
                   "the probe trains on subset 'training', is scored on 'testing'")  # fmt: skip
    p.add_argument("--features-per-second", type=float, default=1.0,
                   help="feature rows per second of the CrossTask / COIN features")  # fmt: skip
    p.add_argument("--fusion-width", type=int, help="frames per fusion window (default: mean "
                   "segment length of the world)")  # fmt: skip
    p.add_argument("--window", type=int, help="frames per encoder window (default max_frames)")
    p.add_argument("--layout-seed", type=int, default=0, help="seed of the step-localization "
                   "videos' layout (StepLayout.seed)")  # fmt: skip
    p.add_argument("--world-clips", action="store_true", help="localize steps in the world's own "
                   "clips (evenly tiled steps) instead of the StepLayout videos")  # fmt: skip
    p.add_argument("--probe-steps", type=int, default=300, help="Adam steps of the probe")
    p.add_argument("--results", help="markdown file to update (default docs/results.md for "
                   "the toy world; a --features run writes only where this says)")  # fmt: skip
    p.add_argument("--json", help="also write every result to this JSON file")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--baselines-only", action="store_true", help="print the model-free "
                   "baselines (random frame, evenly spaced) of the videos and stop")  # fmt: skip
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Out-of-range values refused before any training (argparse's one-line error)."""
    import math

    from taco_lite.config import PRESETS
    from taco_lite.world import SPLITS

    for flag in ("steps", "batch_size", "fusion_width", "window", "probe_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} {value}: use an integer >= 1")
    if any(s < 0 for s in args.seeds):
        p.error(f"--seeds {' '.join(map(str, args.seeds))}: seeds are integers >= 0")
    if not (math.isfinite(args.features_per_second) and args.features_per_second > 0):
        p.error(f"--features-per-second {args.features_per_second}: use a number > 0, e.g. 1")
    if args.preset not in PRESETS:
        p.error(f"--preset {args.preset!r} is not a preset: use one of {sorted(PRESETS)}")
    if not args.features and args.split not in SPLITS:
        p.error(f"--split {args.split!r} is not a split of the world: use one of {SPLITS}")


def main(argv: Sequence[str] | None = None) -> str:
    from taco_lite.sweep import write_section

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    t0 = time.perf_counter()
    if args.baselines_only:
        from taco_lite.world import load_world

        layout = None if args.world_clips else StepLayout(seed=args.layout_seed)
        videos = world_localization_videos(load_world(args.world), args.split, layout)
        base = baselines(videos)
        frames = [v.num_frames for v in videos]
        line = (
            f"split {args.split}, {layout if layout else 'the world clips'}: {len(videos)} videos "
            f"of {min(frames)}-{max(frames)} frames; random frame per step "
            f"{base['chance_recall']:.1f}%, evenly spaced {base['evenly_spaced_recall']:.1f}%"
        )
        print(line)
        return line
    results = run(args)
    command = " ".join(["python -m taco_lite.downstream", *argv])
    table = format_table(results, args, command, time.perf_counter() - t0)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    results_md = args.results or (None if args.features else "docs/results.md")
    if results_md and not args.no_write:
        write_section(Path(results_md), "downstream", table,
                      "## Downstream: step localization and action segmentation")  # fmt: skip
    return table
