"""Small figures for the lesson notebooks 00-05, in the kit's look (`viz.kit_style`).

Why a separate module: `viz.py` holds the kit's shared figures (clips, alignment explorers);
these are single-purpose plots that only the graded notebooks need. Like `viz.figures`, every
function returns a bare matplotlib `Figure` (no pyplot) that a notebook shows with `viz.show`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taco_lite.viz import FIG_WIDTH, STEP_COLOURS, kit_style, show

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "show",  # viz.show, here too so that a notebook importing only this module can show
    "plot_loss_curves",
    "plot_negative_scores",
    "plot_split_sizes",
    "plot_temperature",
    "plot_grounding_histogram",
]


def _figure(width: float = FIG_WIDTH, height: float = 3.6, ncols: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    kit_style()
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, ncols, squeeze=False)
    return fig, axes[0]


def plot_split_sizes(sizes: Mapping[str, int], title: str = "segments per split") -> Figure:
    """A bar per split (00): how much data each split holds."""
    fig, (ax,) = _figure(height=3.0)
    names = list(sizes)
    ax.bar(names, [sizes[k] for k in names], color=STEP_COLOURS[: len(names)])
    for x, k in enumerate(names):
        ax.text(x, sizes[k], str(sizes[k]), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("segments")
    ax.set_title(title, fontsize=10)
    return fig


def plot_temperature(
    taus: Sequence[float],
    values: Mapping[str, Sequence[float]],
    ylabel: str = "L1",
    title: str = "",
) -> Figure:
    """One curve per setting against the temperature tau on a log axis (02)."""
    fig, (ax,) = _figure()
    for k, (label, ys) in enumerate(values.items()):
        if len(ys) != len(taus):
            raise ValueError(
                f"curve {label!r} has {len(ys)} values but there are {len(taus)} temperatures: "
                "give one value per tau"
            )
        ax.plot(taus, ys, marker="o", label=label, color=STEP_COLOURS[k % len(STEP_COLOURS)])
    ax.set_xscale("log")
    ax.set_xlabel("temperature tau")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} against the temperature", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_negative_scores(
    scores: Mapping[str, Sequence[float]],
    positive: Sequence[float] | None = None,
    title: str = "sampling score a(i, j) of the chosen negatives",
) -> Figure:
    """Histograms of a(i, j) for each sampler's negatives, and of the positives (04).

    Hard negatives should sit to the right of random ones, close to the positives: those are
    the pairs the fusion layers learn the most from (paper Sec. 3.3).
    """
    import numpy as np

    fig, (ax,) = _figure()
    groups = dict(scores)
    if positive is not None:
        groups["positives a(i, i)"] = positive
    every = np.concatenate([np.asarray(v, dtype=float).ravel() for v in groups.values()])
    bins = np.linspace(every.min(), every.max(), 30) if every.size else 10
    for k, (label, vals) in enumerate(groups.items()):
        ax.hist(np.asarray(vals, dtype=float).ravel(), bins=bins, alpha=0.55, label=label,
                color=STEP_COLOURS[k % len(STEP_COLOURS)])  # fmt: skip
    ax.set_xlabel("a(i, j) = s1 + sum over tokens of interest of s")
    ax.set_ylabel("pairs")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_loss_curves(
    history: Sequence[Mapping[str, Any]],
    keys: Sequence[str] = ("loss", "L1", "L2", "L3"),
    title: str = "training losses",
    smooth: int = 1,
) -> Figure:
    """Loss terms per step from `TrainResult.history` (05); disabled terms (None) are skipped.

    smooth: a running mean over this many steps (1 = raw), to see trends in noisy curves.
    """
    import numpy as np

    if not history:
        raise ValueError("history is empty: train for at least one step first")
    fig, (ax,) = _figure()
    steps = np.array([h["step"] for h in history])
    for k, key in enumerate(keys):
        vals = [h.get(key) for h in history]
        if all(v is None for v in vals):
            continue
        y = np.array([np.nan if v is None else float(v) for v in vals])
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            x = steps[smooth - 1 :]
        else:
            x = steps
        ax.plot(x, y, label=key, color=STEP_COLOURS[k % len(STEP_COLOURS)])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_grounding_histogram(
    accuracies: Mapping[str, Mapping[str, Sequence[float]]], bins: int = 5, title: str = ""
) -> Figure:
    """Per-clip grounding accuracy over a split, one panel per view, one bar colour per model (07).

    accuracies: {view label: {model name: per-clip accuracies in [0, 1]}}; NaN entries (clips
    without a word that has gold frames) are dropped and counted in the legend. Bars show the
    share of clips per accuracy bin (bins equal bins over [0, 1], the last one closed), side by
    side per model; the legend gives each model's mean and median over the clips it scored.
    """
    import numpy as np

    if not accuracies:
        raise ValueError("accuracies is empty: give {view: {model: per-clip accuracies}}")
    if bins < 1:
        raise ValueError(f"bins is {bins} but must be >= 1 (try 5)")
    fig, axes = _figure(width=max(FIG_WIDTH, 4.2 * len(accuracies)), height=3.4,
                        ncols=len(accuracies))  # fmt: skip
    edges = np.linspace(0.0, 1.0, bins + 1)
    for ax, (view, by_model) in zip(axes, accuracies.items(), strict=True):
        width = (edges[1] - edges[0]) / (len(by_model) + 1)
        for k, (name, values) in enumerate(by_model.items()):
            acc = np.asarray(values, dtype=float)
            dropped = int(np.isnan(acc).sum())
            acc = acc[~np.isnan(acc)]
            if acc.size and (acc.min() < 0 or acc.max() > 1):
                raise ValueError(f"{name} / {view}: accuracies must lie in [0, 1]")
            counts, _ = np.histogram(acc, bins=edges)
            share = counts / max(acc.size, 1)
            label = f"{name}: mean {acc.mean():.2f}, median {np.median(acc):.2f} ({acc.size} clips)"
            if dropped:
                label += f", {dropped} without gold"
            ax.bar(edges[:-1] + width * (k + 0.5), share, width=width, align="edge",
                   color=STEP_COLOURS[k % len(STEP_COLOURS)], label=label)  # fmt: skip
        ax.set_xticks(edges)
        ax.set_xlabel("clip's grounding accuracy")
        ax.set_ylabel("share of clips")
        ax.set_title(view, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
