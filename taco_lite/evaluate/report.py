"""Retrieval and grounding of every split in one call (`evaluate`), and its markdown report.

`format_report` is what `python -m taco_lite.evaluate` prints; docs/evaluation.md explains
every number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from taco_lite.evaluate.grounding import GROUNDING_POS, grounding_accuracy_report
from taco_lite.evaluate.inference import embed_dataset
from taco_lite.evaluate.retrieval import _device, evaluate_retrieval


def evaluate(
    model: Any,
    datasets: Mapping[str, Any],
    splits: Sequence[str] = ("test", "comp"),
    lambda_t: float = 0.5,
    top_k: int = 16,
    full_fusion_subset: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    world: Any = None,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Retrieval and grounding for each split in `splits`, one encoder pass per split.

    Returns {"splits": {name: {"retrieval": ..., "grounding": ...}}, "settings": {...}}.
    `world` (optional) gives grounding the gold POS tags instead of spaCy's. The model is
    moved to `device` (default: where it already is).
    """
    missing = [s for s in splits if s not in datasets]
    if missing:
        raise ValueError(f"split(s) {missing} not in datasets {sorted(datasets)}")
    device = _device(device, model)
    model.to(device)
    results: dict[str, Any] = {"splits": {}}
    for name in splits:
        emb = embed_dataset(model, datasets[name], batch_size, device)
        results["splits"][name] = {
            "retrieval": evaluate_retrieval(
                model, emb, lambda_t, top_k, full_fusion_subset, device, seed
            ),
            "grounding": grounding_accuracy_report(model, emb, world, device),
        }
    results["settings"] = {
        "lambda_t": lambda_t, "top_k": top_k, "full_fusion_subset": full_fusion_subset,
        "seed": seed, "device": str(device),
    }  # fmt: skip
    return results


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _table(rows: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    keys = ("R1", "R5", "R10", "MedR", "MnR")
    head = "| score | " + " | ".join(f"t2v {k}" for k in keys) + " | "
    head += " | ".join(f"v2t {k}" for k in keys) + " |"
    lines = [head, "|---" * (1 + 2 * len(keys)) + "|"]
    for name, rep in rows.items():
        cells = [f"{rep[d][k]:.1f}" for d in ("t2v", "v2t") for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _subset_lines(sub: Mapping[str, Any]) -> list[str]:
    where = (
        f"the full split, N = {sub['N']}"
        if sub.get("full")
        else f"a random subset of N = {sub['N']} (seed {sub['seed']})"
    )
    lines = [f"Table 11 on {where} (chance R@1 {100.0 / sub['N']:.1f}%):", ""]
    lines += _table(
        {k: sub[k] for k in ("s1", "s2", "s1+s2", "s3", "sum")}
        | {f"cascade (top-{sub['top_k']})": sub["cascade"]}
    )
    gap = sub["R1_gap"]
    return lines + [
        "",
        f"cascade vs full sum: R@1 gap t2v {gap['t2v']:+.1f}, v2t {gap['v2t']:+.1f} points; "
        f"fusion pairs {sub['fusion_pairs_cascade']} vs {sub['fusion_pairs_full']}; "
        f"time {sub['seconds_cascade']:.2f}s vs {sub['seconds_full']:.2f}s "
        f"({sub['speedup']:.1f}x faster)",
    ]


def format_report(results: Mapping[str, Any]) -> str:
    """A compact markdown report of `evaluate`'s results (what the CLI prints)."""
    lines: list[str] = []
    for name, res in results["splits"].items():
        r = res["retrieval"]
        lines += [f"## {name}: N = {r['N']} pairs (chance R@1 {r['chance_R1']:.1f}%)", ""]
        lines += _table(
            {k: r[k] for k in ("s1", "s2", "s1+s2")} | {f"cascade (top-{r['top_k']})": r["cascade"]}
        )
        lines += ["", *_subset_lines(r["subset"])] if r["subset"] else []
        lines.append("")
        g = res["grounding"]
        lines += [
            f"Grounding (best frame inside the gold frames, POS from {g['pos_source']}):",
            "",
            "| POS | accuracy % | chance % | tokens |",
            "|---|---|---|---|",
        ]
        for pos in (*GROUNDING_POS, "all"):
            lines.append(
                f"| {pos} | {_fmt(g[pos])} | {_fmt(g['chance'][pos])} | {g['n_tokens'][pos]} |"
            )
        lines.append("")
    return "\n".join(lines)
