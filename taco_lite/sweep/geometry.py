"""Why L2 lowers text-to-video s1: the geometry of the global embeddings (val only).

    python -m taco_lite.sweep.geometry --out runs/val_study_default \
        --exp L1-endless,L1+L2-endless,TACo-endless

For each saved val-study run (OUT/ckpt/<exp>_s<seed>/model.pt), on the same val pairs as
`val_study` (first `--n-eval` of the extra val world), it measures on s1 = y_bar . x_bar:

- *anisotropy*: the mean cosine between two different videos' globals x_bar (and texts' y_bar).
  Near 0: the globals spread over the sphere; large: they share one direction (a cone).
- *hubness* (Radovanovic et al., 2010): how many queries retrieve each gallery item first
  (its k-occurrence N_1). A "hub" is first for many queries, so it is wrong for most of them;
  reported as the largest N_1 and the skewness of N_1 over the gallery.
- *CSLS* (Conneau et al., 2018, "Word translation without parallel data"): s1 re-scored as
  2 s1(i, j) - r_video(j) - r_text(i), with r the mean similarity to the k nearest items of the
  other side. It discounts hubs, transductively (it reads the whole gallery), so it is a
  diagnostic here, not a proposal: if it recovers a run's lost R@1, hubs caused the loss.

- *bank correction*: the same discount without reading the test gallery's queries. Each
  gallery item j is discounted by its mean similarity to its k nearest items of a *bank* from
  the training distribution (`--bank`: the shipped train split's first N pairs; an endless run
  never trained on them): t2v score s1(i, j) - r_bank(j), with r_bank(j) over bank texts, and
  v2t likewise with bank videos. This is an inference-time fix a deployed model could use
  (in the spirit of querybank normalisation, Bogolin et al., CVPR 2022).

Each score's R@1 is also paired with the first run's (`--exp`'s first entry) on the same
queries (`metrics.paired_bootstrap`). Beyond the paper: TACo reports no such analysis.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.metrics import rank_metrics, retrieval_ranks


def mean_pairwise_cosine(x: torch.Tensor) -> float:
    """Mean cosine between distinct rows of x (N, d) (rows normalised first)."""
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x must be (N, d) with N >= 2, got shape {tuple(x.shape)}")
    x = torch.nn.functional.normalize(x.float(), dim=-1)
    gram = x @ x.T  # (N, N)
    n = len(x)
    return float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))


def hubness(sim: torch.Tensor) -> dict[str, float]:
    """k-occurrence N_1 of each gallery item under queries = rows of sim (N, M):
    {"max": largest N_1, "skew": skewness of N_1, "never": share of items first for no query}."""
    if sim.ndim != 2:
        raise ValueError(f"sim must be (queries, gallery), got shape {tuple(sim.shape)}")
    counts = torch.bincount(sim.argmax(1), minlength=sim.shape[1]).float()  # (M,)
    std = counts.std()
    skew = float(((counts - counts.mean()) ** 3).mean() / std**3) if std > 0 else 0.0
    return {"max": int(counts.max()), "skew": skew, "never": float((counts == 0).float().mean())}


def csls(sim: torch.Tensor, k: int = 10) -> torch.Tensor:
    """CSLS re-scoring of sim (N texts, M videos): 2 sim - r_text[:, None] - r_video[None, :],
    r = mean of each item's k largest similarities to the other side. Same shape as sim."""
    if not 1 <= k <= min(sim.shape):
        raise ValueError(f"k is {k} but must be in 1..{min(sim.shape)} for sim {tuple(sim.shape)}")
    r_text = sim.topk(k, dim=1).values.mean(1)  # (N,)
    r_video = sim.topk(k, dim=0).values.mean(0)  # (M,)
    return 2 * sim - r_text[:, None] - r_video[None, :]


def bank_corrected(sim: torch.Tensor, bank_sim: torch.Tensor, k: int = 10) -> torch.Tensor:
    """sim (N queries, M gallery) minus each gallery item's mean similarity to its k nearest
    bank queries, bank_sim (B bank queries, M gallery). Same shape as sim."""
    if sim.ndim != 2 or bank_sim.ndim != 2 or sim.shape[1] != bank_sim.shape[1]:
        raise ValueError(
            f"sim {tuple(sim.shape)} and bank_sim {tuple(bank_sim.shape)} must be (N, M) and "
            "(B, M): the bank scores the same gallery"
        )
    if not 1 <= k <= len(bank_sim):
        raise ValueError(f"k is {k} but must be in 1..{len(bank_sim)} (the bank's size)")
    return sim - bank_sim.topk(k, dim=0).values.mean(0)[None, :]


def _r1(sim: torch.Tensor) -> float:
    return rank_metrics(retrieval_ranks(sim))["R1"]


@torch.no_grad()
def geometry(model: Any, items: Sequence, bank: Sequence, k: int = 10) -> dict[str, Any]:
    """Every measurement above for one model on `items` (dataset items, pair i = text i,
    video i), with `bank` (dataset items from the training distribution) for the correction.
    "ranks" holds the 1-based ranks of every query per score, for paired intervals."""
    from taco_lite.evaluate.inference import embed_dataset

    emb = embed_dataset(model.eval(), items)
    bemb = embed_dataset(model, bank)
    text, video = emb.text_global.float(), emb.video_global.float()  # (N, d), (N, d)
    s1 = text @ video.T  # (N, N), the model's s1 (globals are normalised by the model)
    c = csls(s1, k)
    bank_t2v = bank_corrected(s1, bemb.text_global.float() @ video.T, k)  # (N, N)
    bank_v2t = bank_corrected(s1.T, bemb.video_global.float() @ text.T, k)  # (N, N) video rows
    scores = {"s1": (s1, s1.T), "csls": (c, c.T), "bank": (bank_t2v, bank_v2t)}
    ranks = {
        name: {"t2v": retrieval_ranks(a), "v2t": retrieval_ranks(b)}
        for name, (a, b) in scores.items()
    }
    return {
        **{
            f"{name}_R1": {d: rank_metrics(r)["R1"] for d, r in rr.items()}
            for name, rr in ranks.items()
        },
        "R1": {d: rank_metrics(r)["R1"] for d, r in ranks["s1"].items()},
        "cos": {"video": mean_pairwise_cosine(video), "text": mean_pairwise_cosine(text)},
        "hub": {"t2v": hubness(s1), "v2t": hubness(s1.T)},
        "ranks": ranks,
    }


def paired_against(rows: dict[str, dict[str, Any]], baseline: str) -> dict[str, dict[str, Any]]:
    """Per run and score: R@1(run) - R@1(baseline) with its 95% interval over the queries."""
    from taco_lite.metrics import paired_bootstrap

    base = rows[baseline]["ranks"]
    return {
        name: {
            score: {d: paired_bootstrap(base[score][d], rr[d]) for d in ("t2v", "v2t")}
            for score, rr in g["ranks"].items()
        }
        for name, g in rows.items()
        if name != baseline
    }


def format_geometry(rows: dict[str, dict[str, Any]], k: int) -> str:
    lines = [
        "| run | s1 R@1 t2v / v2t | mean cos, videos / texts | t2v hubs: max N_1, skew | "
        f"v2t hubs: max N_1, skew | CSLS (k = {k}) R@1 t2v / v2t | bank-corrected R@1 t2v / v2t |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in rows.items():
        ht, hv = g["hub"]["t2v"], g["hub"]["v2t"]
        lines.append(
            f"| {name} | {g['R1']['t2v']:.1f} / {g['R1']['v2t']:.1f} | {g['cos']['video']:.3f} / "
            f"{g['cos']['text']:.3f} | {ht['max']}, {ht['skew']:.1f} | {hv['max']}, "
            f"{hv['skew']:.1f} | {g['csls_R1']['t2v']:.1f} / {g['csls_R1']['v2t']:.1f} | "
            f"{g['bank_R1']['t2v']:.1f} / {g['bank_R1']['v2t']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def format_paired(paired: dict[str, dict[str, Any]], baseline: str) -> str:
    def cell(b: dict[str, float]) -> str:
        return f"{b['diff']:+.1f} [{b['lo']:+.1f}, {b['hi']:+.1f}]"

    lines = [
        f"| run - {baseline} | s1 t2v | s1 v2t | CSLS t2v | CSLS v2t | bank t2v | bank v2t |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in paired.items():
        cells = " | ".join(cell(p[s][d]) for s in ("s1", "csls", "bank") for d in ("t2v", "v2t"))
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.sweep.val_study import load_data

    p = argparse.ArgumentParser(prog="python -m taco_lite.sweep.geometry", description=__doc__)
    p.add_argument("--out", default="runs/val_study_default", help="a val_study folder")
    p.add_argument("--exp", default="L1-endless,L1+L2-endless,TACo-endless")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--val-clips", type=int, default=800)
    p.add_argument("--k", type=int, default=10, help="neighbours for CSLS and the bank")
    p.add_argument("--bank", type=int, default=2000, help="train-split pairs in the bank")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    data = load_data(out, args.val_clips)
    items = [data["val"][i] for i in range(min(args.n_eval, len(data["val"])))]
    bank = [data["train"][i] for i in range(min(args.bank, len(data["train"])))]
    rows = {}
    for exp in [e.strip() for e in args.exp.split(",") if e.strip()]:
        ckpt = out / "ckpt" / f"{exp}_s{args.seed}" / "model.pt"
        if not ckpt.is_file():
            raise SystemExit(f"{ckpt} not found: train it with `python -m taco_lite.sweep."
                             f"val_study --exp {exp} --out {out}` first")  # fmt: skip
        rows[exp] = geometry(load_model(ckpt, map_location="cpu")[0], items, bank, args.k)
    table = format_geometry(rows, args.k)
    first = next(iter(rows))
    table += "\n" + format_paired(paired_against(rows, first), first)
    print(f"val, N = {len(items)}, bank {len(bank)} train-split pairs, seed {args.seed}, "
          f"runs in {out}\n\n{table}")  # fmt: skip
    return table


if __name__ == "__main__":
    main()
