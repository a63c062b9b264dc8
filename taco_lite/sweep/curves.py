"""Memorisation, drawn: train vs val R@1 over training steps, finite vs endless data.

    python -m taco_lite.sweep.val_study --preset default --exp L1,L1-endless --eval-every 300 \
        --out runs/val_study_default
    python -m taco_lite.sweep.curves --out runs/val_study_default --figure docs/memorisation.png

Reads the "curve" of each run in OUT/results.jsonl (`val_study --eval-every`) plus its final
point, prints a markdown table and draws one panel per direction: solid = val, dashed = train
(the same N pairs either way, so the gap between them is memorisation).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_curves(out: Path, exps: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """[{"exp", "seed", "points": [{"step", "val_t2v_R1", ...}, ...]}] with the final point."""
    runs = []
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if not r.get("curve") or (exps and r["exp"] not in exps):
            continue
        last = {"step": r["steps"], "L1_last50": r.get("L1_last50")}
        for split in ("val", "train"):
            for d in ("t2v", "v2t"):
                last[f"{split}_{d}_R1"] = r[f"{split}_{d}"]["R1"]
        pts = [*r["curve"], last]
        runs.append({"exp": r["exp"], "seed": r["seed"], "points": pts,
                     "pair_views": r["pair_views"]})  # fmt: skip
    return runs


def curve_table(runs: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per (run, step): val and train R@1 both directions, the L1 loss."""
    lines = [
        "| run | seed | step | val R@1 t2v | train R@1 t2v | val R@1 v2t | train R@1 v2t | "
        "L1 (last 50 steps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for p in run["points"]:
            loss = p.get("L1_last50")
            lines.append(
                f"| {run['exp']} | {run['seed']} | {p['step']} | {p['val_t2v_R1']:.1f} | "
                f"{p['train_t2v_R1']:.1f} | {p['val_v2t_R1']:.1f} | {p['train_v2t_R1']:.1f} | "
                f"{'-' if loss is None else f'{loss:.2f}'} |"
            )
    return "\n".join(lines) + "\n"


def plot_curves(runs: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, d in zip(axes, ("t2v", "v2t"), strict=True):
        for k, run in enumerate(runs):
            steps = [p["step"] for p in run["points"]]
            color = f"C{k}"
            label = f"{run['exp']} (max views {run['pair_views']['max']})"
            ax.plot(steps, [p[f"val_{d}_R1"] for p in run["points"]], color=color, marker="o",
                    label=f"{label}, val")  # fmt: skip
            ax.plot(steps, [p[f"train_{d}_R1"] for p in run["points"]], color=color, ls="--",
                    label=f"{label}, train")  # fmt: skip
        ax.set_title(f"s1 R@1, {d} (N = 2,000 pairs each)")
        ax.set_xlabel("training step")
    axes[0].set_ylabel("R@1 (%)")
    axes[1].legend(frameon=False, fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> str:
    p = argparse.ArgumentParser(prog="python -m taco_lite.sweep.curves", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", default="runs/val_study_default")
    p.add_argument("--exp", help="comma list of experiments (default: every run with a curve)")
    p.add_argument("--figure", default="docs/memorisation.png")
    args = p.parse_args(argv)
    runs = load_curves(Path(args.out), args.exp.split(",") if args.exp else None)
    if not runs:
        raise SystemExit(f"no run with a curve in {args.out}: train with --eval-every")
    plot_curves(runs, Path(args.figure))
    table = curve_table(runs)
    print(table)
    return table


if __name__ == "__main__":
    main()
