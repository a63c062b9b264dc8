"""The sweep's markdown: mean ± std per row, R@1 - L1 with paired intervals, R@5/R@10/MnR,
and the block of docs/results.md between `<!-- name:start -->` and `<!-- name:end -->`."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.sweep.rows import ROWS


def _mean_std(values: Sequence[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def paired_vs_baseline(
    root: Path, slug: str, seeds: Sequence[int], direction: str, baseline: str = "l1"
) -> dict[str, Any] | None:
    """R@1(row) - R@1(baseline) with its paired bootstrap 95% interval over queries and the
    seeds both runs have ranks for (`metrics.paired_bootstrap`), or None without such seeds."""
    from taco_lite.metrics import paired_bootstrap

    both = [
        k for k in seeds
        if (root / slug / f"seed{k}" / "ranks.pt").is_file()
        and (root / baseline / f"seed{k}" / "ranks.pt").is_file()
    ]  # fmt: skip
    if not both:
        return None

    def stack(s: str) -> torch.Tensor:  # (S, N)
        return torch.stack(
            [torch.load(root / s / f"seed{k}" / "ranks.pt")[direction] for k in both]
        )

    return {**paired_bootstrap(stack(baseline), stack(slug)), "seeds": both}


def _diff(d: dict[str, Any] | None) -> str:
    return "-" if d is None else f"{d['diff']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}]"


def _recall_table(by_row: dict[str, list[dict]]) -> list[str]:
    """R@5, R@10 and mean rank of each row's deployed score, mean ± std over seeds."""
    lines = [
        "",
        "The same runs at R@5, R@10 and mean rank (MnR, lower is better):",
        "",
        "| row | R@5 t2v | R@10 t2v | MnR t2v | R@5 v2t | R@10 v2t | MnR v2t |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        rs = by_row.get(row.name)
        if not rs:
            continue
        cells = [
            _mean_std([r["scores"]["ranked"][d].get(m) for r in rs])
            for d in ("t2v", "v2t")
            for m in ("R5", "R10", "MnR")
        ]
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    return lines


def format_table(
    results: Sequence[dict[str, Any]],
    command: str,
    wall_seconds: float | None,
    root: Path | None = None,
) -> str:
    """Mean ± std per row; with `root` (where the runs' ranks.pt are) also R@1 - L1 with the
    paired bootstrap interval over queries and seeds."""
    by_row: dict[str, list[dict]] = {}
    for r in results:
        by_row.setdefault(r["row"], []).append(r)
    if not results:
        return "No sweep results yet.\n"
    first = results[0]
    where = (
        f"an extra `{first['split']}` world of {first['eval_clips']} clips, its first"
        if first.get("eval_clips")
        else f"split `{first['split']}`,"
    )
    data = "fresh clips every epoch (endless)" if first.get("endless") else "the train split"
    paired = root is not None and any((root / "l1").glob("seed*/ranks.pt"))
    lines = [
        f"Evaluated on {where} N = {first['N']} pairs (chance R@1 = {100 / first['N']:.2f}); "
        f"trained on {data}, preset `{first['preset']}`, cascade top-k = {first['top_k']}. "
        "Mean ± std over seeds; R@1 in percent, text-to-video (t2v) and video-to-text (v2t), "
        "each row ranked by the score it trained (its deployed score)."
        + (
            " R@1 - L1: the difference to the L1 row with its paired bootstrap 95% interval "
            "over queries and seeds (`metrics.paired_bootstrap`)."
            if paired
            else ""
        ),
        "",
        "| row | paper table | seeds | R@1 t2v | R@1 v2t | R@1 t2v, s1 only | grounding NOUN | "
        "grounding VERB | paper R@1 (YouCook2) |"
        + (" R@1 - L1, t2v | R@1 - L1, v2t |" if paired else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if paired else ""),
    ]
    for row in ROWS:
        rs = by_row.get(row.name)
        if not rs:
            continue
        s1 = [r["scores"]["s1"]["t2v"]["R1"] if "s1" in r["scores"] else None for r in rs]
        lines.append(
            f"| {row.name} | {row.tables} | {len(rs)} "
            f"| {_mean_std([r['scores']['ranked']['t2v']['R1'] for r in rs])} "
            f"| {_mean_std([r['scores']['ranked']['v2t']['R1'] for r in rs])} "
            f"| {_mean_std(s1)} "
            f"| {_mean_std([r['grounding'].get('NOUN') for r in rs])} "
            f"| {_mean_std([r['grounding'].get('VERB') for r in rs])} "
            f"| {row.paper_r1 or '-'} |"
            + (
                "".join(
                    f" {_diff(paired_vs_baseline(root, row.slug, [r['seed'] for r in rs], d))} |"
                    if row.slug != "l1"
                    else " - |"
                    for d in ("t2v", "v2t")
                )
                if paired and root is not None
                else ""
            )
        )
    lines += _recall_table(by_row)
    chance = [r["grounding"]["chance"] for r in results]
    secs = [r["seconds"] for r in results]
    views = [r["pair_views"]["max"] for r in results if r.get("pair_views")]
    lines += (
        ["", f"Training pairs seen at most {max(views)} time(s) in any run (logged `pair_views`)."]
        if views
        else []
    )
    lines += [
        "",
        f"Grounding chance level (a random frame): NOUN {_mean_std([c.get('NOUN') for c in chance])}, "
        f"VERB {_mean_std([c.get('VERB') for c in chance])}.",
        f"Seconds per run (train + evaluate): {_mean_std(secs)}"
        + (f"; whole sweep {wall_seconds / 60:.1f} min wall clock." if wall_seconds else "."),
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, name: str, body: str, title: str) -> None:
    """Replace (or append) the block between `<!-- name:start -->` and `<!-- name:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{title}\n\n{body}{end}"
    text = (
        path.read_text()
        if path.exists()
        else "# Results\n\nEvery number here is measured by a command shown next to it.\n"
    )
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
