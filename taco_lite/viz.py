"""Every figure of the kit, drawn through one style helper so that they look alike.

Figures return a matplotlib `Figure` and never call `plt.show()`: notebooks display them,
scripts save them. New figures go in this module and start with `kit_style()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from taco_lite.world import World

# figure widths in inches: one notebook column, and a full-width strip
FIG_WIDTH = 6.4
WIDE_WIDTH = 12.0
STEP_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def kit_style() -> None:
    """The kit's look: seaborn's "whitegrid" theme in the "notebook" context, deep palette.

    Cheap to call again; every figure function calls it first.
    """
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def plot_clip(world: World, clip_id: int, ax: Axes | None = None, max_frames: int = 48) -> Figure:
    """Show a clip's frames as a strip with step boundaries and each step's caption.

    Frames of a step are framed in that step's colour; background frames have no frame.
    Each caption is printed under its step, with the task name in the title.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    kit_style()
    if not 0 <= clip_id < len(world.clips):
        raise IndexError(f"clip_id {clip_id} out of range: this world has {len(world.clips)} clips")
    clip = world.clips[clip_id]
    frames = world.clip_frames(clip_id)[:max_frames]  # (T, H, W, 3) uint8
    T, H, W, _ = frames.shape
    pad = 2
    strip = np.full((H + 2 * pad, T * (W + pad) + pad, 3), 255, dtype=np.uint8)
    for t in range(T):
        x0 = pad + t * (W + pad)
        strip[pad : pad + H, x0 : x0 + W] = frames[t]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(WIDE_WIDTH, T * 0.42), 2.6))
    else:
        fig = ax.figure
    ax.imshow(strip, interpolation="nearest")
    ax.set_xticks([pad + t * (W + pad) + W / 2 for t in range(0, T, 5)])
    ax.set_xticklabels([str(t) for t in range(0, T, 5)], fontsize=8)
    ax.xaxis.tick_top()  # frame numbers above, captions below
    ax.set_yticks([])
    ax.grid(False)
    for k, seg_id in enumerate(clip.seg_ids):
        seg = world.segments[seg_id]
        if seg.start >= T:
            break
        colour = STEP_COLOURS[k % len(STEP_COLOURS)]
        x_left = pad + seg.start * (W + pad) - pad / 2 - 0.5
        x_right = pad + min(seg.end, T) * (W + pad) - pad / 2 - 0.5
        ax.add_patch(
            matplotlib.patches.Rectangle(
                (x_left, 0), x_right - x_left, H + 2 * pad - 1, fill=False, lw=2.5, ec=colour
            )
        )
        ax.text(  # alternate two lines so that neighbouring captions never overlap
            x_left,
            H + 2 * pad + 3 + (k % 2) * 9,
            f"{k + 1}. {seg.caption}",
            ha="left",
            va="top",
            fontsize=8,
            color=colour,
        )
    ax.set_title(
        f"clip {clip_id}: task '{clip.task}' ({clip.split}, {clip.num_frames} frames; "
        f"numbers are frame indices)",
        fontsize=10,
        pad=18,
    )
    return fig
