"""The architecture picture: the three encoders, the three scores, and where L1, L2, L3 and the
cascade attach (docs/method.md §1-§5). Shown in notebook 00 and saved as docs/architecture.png:

    python -m taco_lite.viz.architecture docs/architecture.png [--force]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from taco_lite.viz.figures import STEP_COLOURS, WIDE_WIDTH, _new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ENCODER, SCORE, LOSS, CASCADE = "#DCE6F2", "#FFFFFF", STEP_COLOURS[3], STEP_COLOURS[1]


def plot_architecture() -> Figure:
    """One diagram of TACo: inputs -> f_t, f_v -> s1, s -> L1, L2; a -> cascade -> f_m -> s3 -> L3."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = _new_figure(WIDE_WIDTH, 5.2)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def box(x, y, text, face=SCORE, edge="#333333", w=1.8, h=0.62, bold=False, colour="#111111"):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04",
                                    fc=face, ec=edge, lw=1.4))  # fmt: skip
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, color=colour,
                fontweight="bold" if bold else "normal")  # fmt: skip
        return (x, y, w, h)

    def arrow(a, b, colour="#444444", style="-|>", dashed=False):
        (x0, y0, w0, _), (x1, y1, w1, _) = a, b
        start = (x0 + w0 / 2, y0) if x1 > x0 + w0 / 2 else (x0, y0 - 0.31 if y1 < y0 else y0 + 0.31)
        end = (x1 - w1 / 2, y1) if x1 > x0 + w0 / 2 else (x1, y1 + 0.31 if y1 < y0 else y1 - 0.31)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, lw=1.2,
                                     color=colour, linestyle="--" if dashed else "-"))  # fmt: skip

    text = box(1.05, 4.2, "text t_i\n\"the red ball rolls\"", face="#F5F5F5")
    video = box(1.05, 1.0, "video v_j\nm frames", face="#F5F5F5")
    f_t = box(3.0, 4.2, "f_t  text encoder\ny_i^p  (n, d)", face=ENCODER, bold=True)
    f_v = box(3.0, 1.0, "f_v  video encoder\nx_j^k  (m, d)", face=ENCODER, bold=True)
    s1 = box(5.3, 3.3, "s1(i, j) = y_bar_i . x_bar_j\n[CLS] . mean of frames", w=2.3)
    s = box(5.3, 2.0, "s(i, p, j) = max_k y_i^p . x_j^k\n(B, n, B)", w=2.3)
    pos = box(5.3, 4.55, "POS + idf: tokens of interest\nP_i, weights w[i, p]", face="#F5F5F5",
              w=2.3)  # fmt: skip
    l1 = box(7.7, 3.3, "L1  (Eq. 3)", face=LOSS, edge=LOSS, w=1.4, bold=True, colour="white")
    l2 = box(7.7, 2.0, "L2  (Eq. 4)\nweights w[i, p]", face=LOSS, edge=LOSS, w=1.4, bold=True,
             colour="white")  # fmt: skip
    a = box(7.7, 0.75, "cascade: a(i, j) = s1 + sum_P s\ntop-K' negatives (no grad)", face=CASCADE,
            edge=CASCADE, w=2.5, colour="white", bold=True)  # fmt: skip
    f_m = box(10.3, 0.75, "f_m  fusion encoder\non 2B(K'+1) pairs", face=ENCODER, bold=True)
    s3 = box(10.3, 2.0, "s3(i, j) =\nw . f_m(x_j, y_i)[CLS] + b", w=2.0)
    l3 = box(10.3, 3.3, "L3  (Eq. 5)", face=LOSS, edge=LOSS, w=1.4, bold=True, colour="white")
    box(10.3, 4.55, "L = L1 + lambda_t L2 + L3  (Eq. 6)\ntest: s1 + lambda_t s2 + s3", w=3.0,
        face="#F5F5F5")  # fmt: skip

    arrow(text, f_t)
    arrow(video, f_v)
    for src in (f_t, f_v):
        arrow(src, s1)
        arrow(src, s)
    arrow(s1, l1)
    arrow(s, l2)
    arrow(pos, l2, dashed=True)
    ax.add_patch(FancyArrowPatch((6.45, 3.1), (6.9, 0.95), arrowstyle="-|>", mutation_scale=11,
                                 lw=1.2, color=CASCADE))  # fmt: skip
    ax.add_patch(FancyArrowPatch((6.45, 1.8), (6.7, 1.0), arrowstyle="-|>", mutation_scale=11,
                                 lw=1.2, color=CASCADE))  # fmt: skip
    arrow(a, f_m, colour=CASCADE)
    ax.add_patch(FancyArrowPatch((3.0, 0.69), (9.3, 0.45), connectionstyle="arc3,rad=0.12",
                                 arrowstyle="-|>", mutation_scale=11, lw=1.0, color="#888888",
                                 linestyle="--"))  # fmt: skip
    ax.text(6.2, 0.12, "y_i, x_j of the chosen pairs", fontsize=7.5, color="#666666", ha="center")
    arrow(f_m, s3)
    arrow(s3, l3)
    ax.text(0.15, 5.0, "TACo in taco_lite (docs/method.md §1-§5): encoders in blue, losses in red, "
            "the cascade in orange", fontsize=10, ha="left", va="center")  # fmt: skip
    return fig


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    force = "--force" in args
    paths = [a for a in args if a != "--force"]
    if len(paths) != 1:
        print("usage: python -m taco_lite.viz.architecture OUT.png [--force]", file=sys.stderr)
        return 2
    out = Path(paths[0])
    if out.exists() and not force:
        print(f"{out} exists: pass --force to overwrite it", file=sys.stderr)
        return 1
    from taco_lite.viz.figures import figure_png

    out.write_bytes(figure_png(plot_architecture(), dpi=130))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
