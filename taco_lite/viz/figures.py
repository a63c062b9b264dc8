"""Every figure of the kit, drawn through one style helper so that they look alike.

Figures return a bare matplotlib `Figure` (never one that pyplot manages) and never call
`plt.show()`. Scripts save them; a notebook cell shows one with `show(fig)`, the one path by
which a kit figure reaches a cell's output. Why: a pyplot figure is drawn by the inline backend
at the end of the cell *and* again as the cell's value, while a bare figure assigned to a name
is drawn by neither (issue 19: three central figures never appeared, one appeared twice).
New figures go in this module and start with `_new_figure` (which calls `kit_style()`).
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
        fig = _new_figure(max(WIDE_WIDTH, T * 0.42), 2.6)
        ax = fig.add_subplot()
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


# ------------------------------------------------------------------ alignment explorers (07)
# These build a bare `matplotlib.figure.Figure` (no pyplot), so that a widget callback can
# draw and save a figure without the notebook's inline backend displaying it a second time.

GOLD_COLOUR = "#2CA02C"  # gold grounding from the world
BEST_COLOUR = "#111111"  # each token's best frame
INTEREST_COLOUR = "#C44E52"  # tokens of interest (NOUN/VERB by default)


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    kit_style()
    return Figure(figsize=(width, height))


def show(fig: Figure, dpi: int = 100) -> None:
    """Show `fig` once in the running notebook cell's output (an image/png), then free it.

    Returns None, so a cell that ends in `viz.show(...)` prints nothing else. Outside IPython
    (a script, a test) it only closes the figure. It draws the PNG itself instead of relying on
    the inline backend, so that bare and pyplot figures alike appear exactly once.
    """
    import matplotlib.pyplot as plt

    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # no IPython: nothing to show into
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Image(data=figure_png(fig, dpi=dpi)))
    plt.close(fig)  # a no-op for a bare figure; stops the inline backend drawing it again


def frame_strip(frames, pad: int = 2, fill: int = 255):
    """uint8 (m, H, W, 3) frames side by side with `pad` white pixels between -> (H+2p, ., 3)."""
    import numpy as np

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames should be (m, H, W, 3) uint8 but have shape {frames.shape}")
    m, H, W, _ = frames.shape
    strip = np.full((H + 2 * pad, m * (W + pad) + pad, 3), fill, dtype=np.uint8)
    for k in range(m):
        x0 = pad + k * (W + pad)
        strip[pad : pad + H, x0 : x0 + W] = frames[k]
    return strip


def plot_token_frame_alignment(
    frames,
    matrix,
    tokens: list[str],
    interest: list[bool],
    best_frames: list[int],
    gold=None,
    title: str = "",
    value_label: str = "token . frame",
) -> Figure:
    """The alignment explorer's figure: the clip's frames above a token x frame heatmap.

    frames: uint8 (m, H, W, 3); matrix: (n, m) what the heatmap shows (dot products or the
    softmax over frames); tokens: n row labels (e.g. "ball  NOUN"); interest: n flags, tokens
    of interest get red bold labels; best_frames: n frame indices, marked with a black dot
    (the frame that wins Eq. 4's max), None for a row without one (e.g. a word with no gold
    frame in a gold-only picture: no dot is drawn); gold: optional bool (n, m), gold frames outlined in
    green, and frames that are gold for any shown token outlined in the strip.
    """
    import numpy as np
    import seaborn as sns
    from matplotlib.patches import Rectangle

    matrix = np.asarray(matrix, dtype=float)
    n, m = matrix.shape
    if len(tokens) != n or len(interest) != n or len(best_frames) != n:
        raise ValueError(
            f"matrix is ({n}, {m}) but got {len(tokens)} tokens, {len(interest)} interest flags "
            f"and {len(best_frames)} best frames: each needs one entry per row"
        )
    if np.asarray(frames).shape[0] != m:
        raise ValueError(f"matrix has {m} frame columns but {np.asarray(frames).shape[0]} frames")
    cell = 0.55
    width = max(FIG_WIDTH, 2.2 + m * cell)
    fig = _new_figure(width, 2.6 + 0.34 * n)
    gs = fig.add_gridspec(2, 2, height_ratios=[1.0, max(1.2, 0.34 * n)], width_ratios=[40, 1],
                          hspace=0.08, wspace=0.03)  # fmt: skip
    ax_strip, ax_map, ax_cbar = (
        fig.add_subplot(gs[0, 0]),
        fig.add_subplot(gs[1, 0]),
        fig.add_subplot(gs[1, 1]),
    )
    fig.add_subplot(gs[0, 1]).axis("off")

    H, W = np.asarray(frames).shape[1:3]
    pad = 2
    ax_strip.imshow(frame_strip(frames, pad), interpolation="nearest", aspect="auto")
    ax_strip.set_xticks([pad + k * (W + pad) + W / 2 for k in range(m)])
    ax_strip.set_xticklabels([str(k) for k in range(m)], fontsize=8)
    ax_strip.xaxis.tick_top()
    ax_strip.set_yticks([])
    ax_strip.grid(False)
    if gold is not None:
        gold = np.asarray(gold, dtype=bool)
        for k in np.flatnonzero(gold.any(axis=0)):
            x0 = pad + k * (W + pad) - 1.5
            ax_strip.add_patch(Rectangle((x0, 0.5), W + 2, H + 2 * pad - 2, fill=False,
                                         lw=2.0, ec=GOLD_COLOUR))  # fmt: skip
    ax_strip.set_title(title, fontsize=10, loc="left")

    sns.heatmap(matrix, ax=ax_map, cbar_ax=ax_cbar, cmap="mako", linewidths=0.4,
                linecolor="white", cbar_kws={"label": value_label})  # fmt: skip
    ax_map.set_yticks(np.arange(n) + 0.5)
    ax_map.set_yticklabels(tokens, rotation=0, fontsize=9)
    for label, keep in zip(ax_map.get_yticklabels(), interest, strict=True):
        if keep:
            label.set_color(INTEREST_COLOUR)
            label.set_fontweight("bold")
    ax_map.set_xticks(np.arange(m) + 0.5)
    ax_map.set_xticklabels([str(k) for k in range(m)], fontsize=8)
    ax_map.set_xlabel("frame")
    if gold is not None:
        for p, k in zip(*np.nonzero(gold), strict=True):
            ax_map.add_patch(Rectangle((k + 0.06, p + 0.06), 0.88, 0.88, fill=False, lw=2.0,
                                       ec=GOLD_COLOUR))  # fmt: skip
    dotted = [p for p, k in enumerate(best_frames) if k is not None]  # None: no best frame
    ax_map.scatter([best_frames[p] + 0.5 for p in dotted], [p + 0.5 for p in dotted], s=28,
                   c="white", edgecolors=BEST_COLOUR, linewidths=1.2, zorder=3)  # fmt: skip
    return fig


def plot_cascade_candidates(
    caption: str,
    rows: list[tuple[str, list[dict]]],
    title: str = "",
) -> Figure:
    """The cascade sampler's figure: one row of candidate clips per sampler (hard, random).

    rows: [(row name, candidates)], each candidate a dict with "frames" (uint8 (m, H, W, 3)),
    "caption", "a" (cascade sampling score a(i, j)), "s3" (fusion score or None) and
    "positive" (bool). Each clip is drawn as its first, middle and last frame.
    """
    import textwrap

    import numpy as np

    cols = max(len(c) for _, c in rows)
    fig = _new_figure(max(WIDE_WIDTH, 1.55 * cols), 2.25 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (name, cands) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(cands):
                continue
            cand = cands[c]
            f = np.asarray(cand["frames"])
            pick = sorted({0, len(f) // 2, len(f) - 1})
            ax.imshow(frame_strip(f[pick], pad=1), interpolation="nearest")
            s3 = "-" if cand.get("s3") is None else f"{cand['s3']:.2f}"
            colour = GOLD_COLOUR if cand.get("positive") else "#333333"
            head = "positive" if cand.get("positive") else f"{name} {c}"
            ax.set_title(f"{head}\na={cand['a']:.2f}  s3={s3}", fontsize=8, color=colour)
            ax.text(0.5, -0.08, textwrap.fill(cand["caption"], 22), transform=ax.transAxes,
                    ha="center", va="top", fontsize=7)  # fmt: skip
        axes[r, 0].text(-0.15, 0.5, name, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=10, fontweight="bold")  # fmt: skip
    fig.suptitle(title or f"text: {caption!r}", fontsize=10, x=0.01, ha="left")
    fig.subplots_adjust(left=0.04, right=0.99, top=0.82, bottom=0.16, hspace=0.9, wspace=0.15)
    return fig


def retrieval_results_png(
    query: str, results: list[dict], max_frames: int = 16, scale: int = 2
) -> bytes:
    """The retrieval browser's picture: the top clips for a query, best first, as PNG bytes.

    results: dicts with "frames" (uint8 (m, H, W, 3)), "caption", "score" (the ranking score),
    "detail" (a short string of the score parts) and "rank" (1-based).
    Why not a matplotlib figure: the browser redraws on every query and must answer in under
    0.5 s on a CPU; pasting frame strips into one array and writing the text with PIL (in the
    kit's font, DejaVu Sans) takes milliseconds, where a figure with 5 axes takes ~0.3 s.
    """
    import io

    import numpy as np
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    if not results:
        raise ValueError("results is empty: nothing to draw (show a message instead)")
    strips = [frame_strip(np.asarray(r["frames"])[:max_frames]) for r in results]
    h = strips[0].shape[0]
    strip_w = max(s.shape[1] for s in strips)  # the longest clip shown sets the width
    gap, head, text_w = 10, 26, 560
    W = scale * strip_w + 16 + text_w
    H = head + len(results) * (scale * h + gap)
    canvas = np.full((H, W, 3), 255, dtype=np.uint8)
    for r, strip in enumerate(strips):
        big = strip.repeat(scale, axis=0).repeat(scale, axis=1)[:, : scale * strip_w]
        y0 = head + r * (scale * h + gap)
        canvas[y0 : y0 + big.shape[0], : big.shape[1]] = big
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    path = font_manager.findfont("DejaVu Sans")
    font = ImageFont.truetype(path, 13)
    bold = ImageFont.truetype(font_manager.findfont("DejaVu Sans:bold"), 13)
    small = ImageFont.truetype(path, 11)
    draw.text((4, 4), f"query: {query!r}"[:160], fill=(30, 30, 30), font=font)
    x = scale * strip_w + 16
    for r, res in enumerate(results):
        y0 = head + r * (scale * h + gap)
        draw.text((x, y0 + 2), f"#{res['rank']}   score {res['score']:.2f}", fill=(20, 20, 20),
                  font=bold)  # fmt: skip
        draw.text((x, y0 + 22), str(res["caption"])[:75], fill=(20, 20, 20), font=font)
        draw.text((x, y0 + 42), str(res.get("detail", "")), fill=(90, 90, 90), font=small)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def figure_png(fig: Figure, dpi: int = 80, tight: bool = True) -> bytes:
    """PNG bytes of a figure (what the explorers put in their `ipywidgets.Image`).

    tight=False skips the tight bounding box, which draws the figure twice (half the time).
    Missing-glyph warnings (an emoji typed in a query) are silenced: the glyph shows as a box.
    """
    import io
    import warnings

    buf = io.BytesIO()
    with (
        warnings.catch_warnings(),
        matplotlib.rc_context({"savefig.bbox": "tight" if tight else "standard"}),
    ):
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
