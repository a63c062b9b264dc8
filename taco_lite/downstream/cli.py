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

import torch

from taco_lite.downstream.data import (
    LocalizationVideo,
    StepLayout,
    encode_captions,
    world_localization_videos,
    world_segmentation_videos,
)
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


# ------------------------------------------------------------------------------ models


def _world_text_setup(world: Any) -> dict[str, float]:
    """idf over the world's train captions, as in training (`evaluate.datasets_for_checkpoint`)."""
    from taco_lite.text import tokenize
    from taco_lite.text.pos import idf_table

    return idf_table([tokenize(world.segments[i].caption) for i in world.split("train")])


def ensure_checkpoint(
    root: Path,
    slug: str,
    seed: int,
    preset: str,
    world: Any,
    steps: int | None = None,
    batch_size: int | None = None,
) -> Path:
    """root/slug/seed<k>/model.pt, trained now (sweep row config + `preset`) if missing."""
    path = root / slug / f"seed{seed}" / "model.pt"
    if path.is_file():
        return path
    from taco_lite.config import PRESETS
    from taco_lite.data import build_datasets
    from taco_lite.sweep import ROWS_BY_SLUG
    from taco_lite.train import train

    row = ROWS_BY_SLUG[slug]
    model_cfg, train_cfg = PRESETS[preset].configs()
    steps = steps or train_cfg.steps
    changes: dict[str, Any] = dict(
        losses=row.losses, negatives=row.negatives, pos_tags=row.pos_tags, seed=seed,
        ckpt_dir=str(path.parent), progress=False, steps=steps,
        warmup_steps=min(train_cfg.warmup_steps, steps // 5),
    )  # fmt: skip
    if batch_size is not None:
        changes["batch_size"] = batch_size
        changes["k_neg"] = min(train_cfg.k_neg, batch_size - 1)
    train_cfg = dataclasses.replace(train_cfg, **changes)
    print(f"training missing checkpoint {path} ({row.name}, preset {preset}, {steps} steps)",
          flush=True)  # fmt: skip
    datasets, vocab, _ = build_datasets(
        world, pos_tags=row.pos_tags, splits=("train",), max_tokens=model_cfg.max_tokens
    )
    train(model_cfg, train_cfg, datasets=datasets, vocab=vocab)
    (path.parent / "last.pt").unlink(missing_ok=True)  # model.pt (slim) is enough here
    return path


def load_encoder(path: Path) -> tuple[Any, Any, str]:
    """(model in eval mode, Vocab, pos_tags) from a checkpoint written by train()."""
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.text import Vocab

    model, words, (_, train_cfg) = load_model(path)
    if words is None:
        raise ValueError(f"{path} holds no vocabulary: evaluate a checkpoint written by train()")
    return model, Vocab.from_list(words), train_cfg.pos_tags if train_cfg else "noun+verb"


def random_encoder(like: Any, seed: int) -> Any:
    """A TacoModel with `like`'s config and fresh random weights (seeded), in eval mode."""
    from taco_lite.model import TacoModel

    torch.manual_seed(seed)
    return TacoModel(like.cfg).eval()


# ------------------------------------------------------------------------------ the run


def evaluate_encoder(
    model: Any,
    vocab: Any,
    pos_tags: str,
    world: Any,
    split: str,
    idf: dict[str, float],
    fusion_width: int,
    probe_steps: int,
    window: int | None = None,
    videos: Sequence[LocalizationVideo] | None = None,
) -> dict[str, Any]:
    """Both downstream tasks for one encoder on `split` (the probe trains on "train").

    videos: the step-localization videos (default: `world_localization_videos(world, split)`).
    """
    t0 = time.perf_counter()
    if videos is None:
        videos = world_localization_videos(world, split)
    loc = localization_report(
        model, vocab, idf, pos_tags, videos, fusion_width=fusion_width, window=window
    )
    K = 1 + len(world.verb_names)
    seg = segmentation_report(
        model, world_segmentation_videos(world, "train"), world_segmentation_videos(world, split),
        num_classes=K, steps=probe_steps, window=window,
    )  # fmt: skip
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
    from taco_lite.world import load_world

    world = load_world(args.world)
    idf = _world_text_setup(world)
    width = args.fusion_width or round(sum(world.config.seg_len) / 2)
    root = Path(args.checkpoints)
    layout = None if args.world_clips else StepLayout(seed=args.layout_seed)
    videos = world_localization_videos(world, args.split, layout)
    results = []
    for seed in args.seeds:
        taco_path = ensure_checkpoint(root, TACO_SLUG, seed, args.preset, world, args.steps,
                                      args.batch_size)  # fmt: skip
        for name, slug in ENCODERS:
            if slug is None:
                taco, vocab, pos_tags = load_encoder(taco_path)
                model = random_encoder(taco, seed)
            else:
                path = ensure_checkpoint(root, slug, seed, args.preset, world, args.steps,
                                         args.batch_size)  # fmt: skip
                model, vocab, pos_tags = load_encoder(path)
            res = evaluate_encoder(model, vocab, pos_tags, world, args.split, idf, width,
                                   args.probe_steps, args.window, videos)  # fmt: skip
            res.update(encoder=name, seed=seed)
            results.append(res)
            loc = res["localization"]
            print(f"seed {seed} {name}: recall token/sentence/fusion (ordered) "
                  + " / ".join(f"{loc[v]['ordered']['recall']:.1f}" for v in VARIANTS)
                  + f", frame acc {res['segmentation']['frame_acc']:.1f}"
                  + f"  ({res['seconds']:.0f}s)", flush=True)  # fmt: skip
    base = baselines(videos)
    for r in results:
        r.update(base)
        r["fusion_width"] = width
        r["layout"] = repr(layout) if layout is not None else "the world's own clips"
        r["video_frames"] = [v.num_frames for v in videos]
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
        f"Split `{args.split}` of the toy world, preset `{args.preset}`, seeds {args.seeds}. "
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
    p.add_argument("--world", help="world folder (default data/world)")
    p.add_argument("--fusion-width", type=int, help="frames per fusion window (default: mean "
                   "segment length of the world)")  # fmt: skip
    p.add_argument("--window", type=int, help="frames per encoder window (default max_frames)")
    p.add_argument("--layout-seed", type=int, default=0, help="seed of the step-localization "
                   "videos' layout (StepLayout.seed)")  # fmt: skip
    p.add_argument("--world-clips", action="store_true", help="localize steps in the world's own "
                   "clips (evenly tiled steps) instead of the StepLayout videos")  # fmt: skip
    p.add_argument("--probe-steps", type=int, default=300, help="Adam steps of the probe")
    p.add_argument("--results", default="docs/results.md", help="markdown file to update")
    p.add_argument("--json", help="also write every result to this JSON file")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--baselines-only", action="store_true", help="print the model-free "
                   "baselines (random frame, evenly spaced) of the videos and stop")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> str:
    from taco_lite.sweep import write_section

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
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
    if not args.no_write:
        write_section(Path(args.results), "downstream", table,
                      "## Downstream: step localization and action segmentation")  # fmt: skip
    return table
