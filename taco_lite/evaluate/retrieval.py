"""Evaluate a trained TACo model: retrieval per score (paper Table 11), cascade inference, grounding.

    python -m taco_lite.evaluate --checkpoint runs/fast/model.pt --splits test,comp

What is reported (docs/evaluation.md explains every number):

- retrieval on the whole split for s1, s2, s1+s2 (the cascade's cheap first stage) and
  `cascade` (top-k re-scored by fusion), text-to-video and video-to-text;
- on a fixed random subset (seeded), where all N_s^2 fusion passes are affordable: s1, s2,
  s1+s2, s3 alone, `sum` = s1 + lambda_t * s2 + s3 (the paper's inference) and `cascade`,
  with the R@1 gap cascade - sum and the wall-time ratio full fusion / cascade;
- grounding: does each noun's / verb's best frame fall inside its gold frames, next to chance.

The scores themselves live in `inference.py`; ranks follow `metrics.retrieval_ranks`
(rank = 1 + number of candidates scoring strictly higher than the ground truth).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.evaluate.inference import (
    Embedded,
    cascade_scores,
    coarse_scores,
    embed_dataset,
    full_fusion_scores,
    global_scores,
    token_scores_s2,
)
from taco_lite.metrics import grounding_counts, retrieval_metrics, retrieval_report

__all__ = [
    "evaluate_retrieval",
    "ranked_retrieval",
    "grounding_accuracy_report",
    "evaluate",
    "format_report",
    "gold_pos_ids",
    "datasets_for_checkpoint",
    "main",
]

GROUNDING_POS = ("NOUN", "VERB")


def _device(name: torch.device | str | None, model: Any) -> torch.device:
    if name is None:
        return next(model.parameters()).device
    if isinstance(name, torch.device):
        return name
    from taco_lite.runtime.device import resolve_device

    return resolve_device(name)


def _embedded(model: Any, data: Embedded | Sequence, device: torch.device, batch_size: int):
    return data if isinstance(data, Embedded) else embed_dataset(model, data, batch_size, device)


def _temperatures(model: Any) -> tuple[float, float]:
    cfg = getattr(model, "cfg", None)
    return float(getattr(cfg, "tau1", 1.0)), float(getattr(cfg, "tau2", 1.0))


def _cascade_report(model, emb, coarse, top_k, chunk) -> dict[str, dict[str, float]]:
    return {
        "t2v": retrieval_metrics(cascade_scores(model, emb, coarse, top_k, "t2v", chunk)),
        "v2t": retrieval_metrics(cascade_scores(model, emb, coarse, top_k, "v2t", chunk)),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_retrieval(
    model: Any,
    dataset: Embedded | Sequence,
    lambda_t: float = 0.5,
    top_k: int = 16,
    full_fusion_subset: int = 200,
    device: torch.device | str | None = None,
    seed: int = 0,
    batch_size: int = 128,
    fusion_chunk: int = 512,
) -> dict[str, Any]:
    """Retrieval for each score alone and combined (Table 11) plus cascade inference (§5).

    dataset: a split (items for `data.collate`) or an `Embedded` from `embed_dataset`.
    Returns {"N", "chance_R1", "top_k", "lambda_t", "fusion_pairs", "s1", "s2", "s1+s2",
    "cascade", "subset"}; each score entry is {"t2v": m, "v2t": m} with m = {"R1", "R5", "R10"
    (percent), "MedR", "MnR" (1-based ranks)}. "subset" holds the same on `full_fusion_subset`
    items drawn with `seed` (all items if N is smaller), plus "s3", "sum", "R1_gap" (cascade -
    sum, percentage points), "seconds_full", "seconds_cascade" and "speedup" (full / cascade).
    Both timed paths start from the cached embeddings and include their s1/s2 computation.
    `full_fusion_subset=0` skips the subset ("subset": None).
    """
    device = _device(device, model)
    was_training = model.training
    model.eval()
    try:
        emb = _embedded(model, dataset, device, batch_size).to(device)
        N = len(emb)
        k = min(top_k, N)
        if k < 1:
            raise ValueError(f"top_k is {top_k} but the cascade re-scores at least 1 candidate")
        tau1, tau2 = _temperatures(model)
        s1, s2 = global_scores(emb), token_scores_s2(emb)  # (N, N) each
        coarse = coarse_scores(s1, s2, lambda_t, tau1, tau2)  # (N, N)
        out: dict[str, Any] = {
            "N": N, "chance_R1": 100.0 / N, "top_k": k, "lambda_t": lambda_t,
            "fusion_pairs": 2 * N * k,
            "s1": retrieval_report(s1), "s2": retrieval_report(s2),
            "s1+s2": retrieval_report(coarse),
            "cascade": _cascade_report(model, emb, coarse, k, fusion_chunk),
        }  # fmt: skip
        out["subset"] = (
            _subset_report(
                model, emb, lambda_t, top_k, full_fusion_subset, seed, fusion_chunk, device
            )
            if full_fusion_subset
            else None  # 0 skips full fusion (e.g. a quick check at the end of training)
        )
    finally:
        model.train(was_training)
    return out


def _subset_report(model, emb, lambda_t, top_k, size, seed, chunk, device) -> dict[str, Any]:
    """Table 11 on a subset where all N_s^2 fusion passes are affordable, with cascade timing."""
    N = len(emb)
    if size < 0:
        raise ValueError(f"full_fusion_subset is {size} but must be >= 0 (try 200; 0 skips it)")
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(N) if size >= N else torch.randperm(N, generator=g)[:size].sort().values
    sub = emb.subset(idx)
    Ns, k = len(sub), min(top_k, len(sub))
    tau1, tau2 = _temperatures(model)

    _sync(device)
    t0 = time.perf_counter()
    s1, s2 = global_scores(sub), token_scores_s2(sub)  # (Ns, Ns)
    coarse = coarse_scores(s1, s2, lambda_t, tau1, tau2)  # (Ns, Ns)
    s3 = full_fusion_scores(model, sub, chunk)  # (Ns, Ns): Ns^2 fusion passes
    total = coarse + s3  # (Ns, Ns) the paper's s1 + lambda_t s2 + s3
    _sync(device)
    seconds_full = time.perf_counter() - t0

    t0 = time.perf_counter()
    s1c, s2c = global_scores(sub), token_scores_s2(sub)
    coarse_c = coarse_scores(s1c, s2c, lambda_t, tau1, tau2)
    cascade = _cascade_report(model, sub, coarse_c, k, chunk)  # 2 * Ns * k fusion passes
    _sync(device)
    seconds_cascade = time.perf_counter() - t0

    full = retrieval_report(total)
    return {
        "N": Ns, "seed": seed, "top_k": k, "indices": idx.tolist(),
        "s1": retrieval_report(s1), "s2": retrieval_report(s2),
        "s1+s2": retrieval_report(coarse), "s3": retrieval_report(s3),
        "sum": full, "cascade": cascade,
        "R1_gap": {d: cascade[d]["R1"] - full[d]["R1"] for d in ("t2v", "v2t")},
        "fusion_pairs_full": Ns * Ns, "fusion_pairs_cascade": 2 * Ns * k,
        "seconds_full": seconds_full, "seconds_cascade": seconds_cascade,
        "speedup": seconds_full / max(seconds_cascade, 1e-9),
    }  # fmt: skip


# ---------------------------------------------------------------------------- grounding


def ranked_retrieval(
    model: Any, emb: Embedded, terms: Sequence[str], lambda_t: float = 0.5, top_k: int = 16
) -> dict[str, Any]:
    """Retrieval by the score a run trained with loss `terms` would use at test time (§5).

    The paper's inference sums the scores the run trained: s1 (L1 only); s3 over all N^2 pairs
    (L3 only, no cheap first stage exists); otherwise cascade inference, ranking by
    s1 + lambda_t * s2 (s2 only if L2 was trained) and re-scoring the top-k with + s3.
    Returns {"ranked": {"t2v", "v2t"}} plus {"s1": ...} when L1 was trained.
    """
    tau1, tau2 = _temperatures(model)
    terms = tuple(terms)
    emb = emb.to(next(model.parameters()).device)  # fusion runs where the model lives
    s1 = global_scores(emb)  # (N, N)
    out: dict[str, Any] = {}
    if "L1" in terms:
        out["s1"] = retrieval_report(s1)
    if terms == ("L3",):
        out["ranked"] = retrieval_report(full_fusion_scores(model, emb))
        return out
    if "L3" not in terms:
        out["ranked"] = out["s1"]
        return out
    lam = lambda_t if "L2" in terms else 0.0
    s2 = token_scores_s2(emb) if lam else torch.zeros_like(s1)
    coarse = coarse_scores(s1, s2, lam, tau1, tau2)  # (N, N)
    k = min(top_k, len(emb))
    out["ranked"] = {
        "t2v": retrieval_report(cascade_scores(model, emb, coarse, k, "t2v"))["t2v"],
        "v2t": retrieval_report(cascade_scores(model, emb, coarse, k, "v2t"))["t2v"],
    }
    return out


def gold_pos_ids(emb: Embedded, world: Any) -> torch.Tensor:
    """(N, n) UPOS ids from the world's gold tags: word w of a caption sits at token w + 1."""
    from taco_lite.text.pos import upos_id

    ids = torch.zeros_like(emb.pos_ids)  # (N, n), 0 for specials and padding
    for r, seg_id in enumerate(emb.seg_ids.tolist()):
        n_r = int(emb.text_mask[r].sum())
        for w, tag in enumerate(world.segments[seg_id].gold_pos[: n_r - 2]):
            ids[r, w + 1] = upos_id(tag)
    return ids


def _pct(correct: float, total: int) -> float | None:
    return 100.0 * correct / total if total else None


@torch.no_grad()
def grounding_accuracy_report(
    model: Any,
    dataset: Embedded | Sequence,
    world: Any = None,
    device: torch.device | str | None = None,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Token grounding: is a word's best frame of *its own* video one of its gold frames?

    For every caption token whose POS is NOUN or VERB and that has gold frames, the prediction
    is argmax over the video's valid frames k of text_tokens[i, p] . video_tokens[i, k]. This
    checks what L2's max over frames (Eq. 4) should teach, directly rather than via retrieval.
    POS comes from the world's gold tags when `world` is given ("pos_source": "world"), else
    from the spaCy tags of the dataset ("spacy"). Returns accuracies in percent, None where no
    token was scored: {"NOUN", "VERB", "all", "n_tokens": {...}, "chance": {...}, "pos_source"}.
    "chance" is the mean, over scored tokens, of (gold frames / valid frames): what picking a
    random frame would score.
    """
    from taco_lite.text.pos import upos_id

    device = _device(device, model)
    emb = _embedded(model, dataset, device, batch_size)
    pos = gold_pos_ids(emb, world) if world is not None else emb.pos_ids  # (N, n)
    sim = torch.einsum("ipd,ikd->ipk", emb.text_tokens.float(), emb.video_tokens.float())
    gold = emb.gold_frames & emb.video_mask[:, None, :]  # (N, n, m)
    has_gold = gold.any(dim=2) & emb.text_mask  # (N, n)
    frac = gold.sum(2) / emb.video_mask.sum(1, keepdim=True).clamp_min(1)  # (N, n) chance
    out: dict[str, Any] = {"n_tokens": {}, "chance": {}}
    masks = {tag: (pos == upos_id(tag)) & has_gold for tag in GROUNDING_POS}
    masks["all"] = torch.stack(list(masks.values())).any(0)  # (N, n)
    for name, mask in masks.items():
        correct, scored = grounding_counts(sim, emb.gold_frames, mask, emb.video_mask)
        out[name] = _pct(correct, scored)
        out["n_tokens"][name] = scored
        out["chance"][name] = _pct(float(frac[mask].sum()), scored)
    out["pos_source"] = "world" if world is not None else "spacy"
    return out


# ---------------------------------------------------------------------------- together


def evaluate(
    model: Any,
    datasets: Mapping[str, Any],
    splits: Sequence[str] = ("test", "comp"),
    lambda_t: float = 0.5,
    top_k: int = 16,
    full_fusion_subset: int = 200,
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
    lines = [
        f"Table 11 on a random subset of N = {sub['N']} (seed {sub['seed']}, "
        f"chance R@1 {100.0 / sub['N']:.1f}%):",
        "",
    ]
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


# ---------------------------------------------------------------------------- CLI


def datasets_for_checkpoint(
    vocab_words: Sequence[str] | None,
    model_cfg: Any,
    train_cfg: Any,
    splits: Sequence[str],
    world: Any,
) -> dict[str, Any]:
    """The world's splits encoded exactly as in training: the checkpoint's vocabulary
    (unknown words -> [UNK], never rebuilt), its pos_tags and max_tokens, idf from train."""
    from taco_lite.data import WorldDataset
    from taco_lite.text import Vocab, tokenize
    from taco_lite.text.pos import DEFAULT_POS_TAGS, idf_table, tag_captions

    if vocab_words is None:
        raise ValueError(
            "this checkpoint holds no vocabulary, so captions cannot be encoded as in "
            "training: evaluate a checkpoint written by taco_lite.train (model.pt or last.pt)"
        )
    if getattr(model_cfg, "video_input", "pixels") != "pixels":
        raise ValueError(
            "this checkpoint was trained on pre-extracted features (video_input='features'); "
            "the CLI evaluates on the toy world's frames: call evaluate() with your own datasets"
        )
    vocab = Vocab.from_list(list(vocab_words))
    if len(vocab) != model_cfg.vocab_size:
        raise ValueError(
            f"the checkpoint's vocabulary has {len(vocab)} words but its model has vocab_size "
            f"{model_cfg.vocab_size}: the file is inconsistent, retrain it"
        )
    pos_tags = train_cfg.pos_tags if train_cfg is not None else DEFAULT_POS_TAGS
    idf = idf_table([tokenize(world.segments[i].caption) for i in world.split("train")])
    seg_lists = {s: world.split(s) for s in splits}
    captions = [world.segments[i].caption for s in splits for i in seg_lists[s]]
    tags = tag_captions(captions)  # one spaCy call for every split
    out, start = {}, 0
    for s in splits:
        part = tags[start : start + len(seg_lists[s])]
        start += len(seg_lists[s])
        out[s] = WorldDataset(
            world, s, vocab, idf, pos_tags, tags=part, max_tokens=model_cfg.max_tokens
        )
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.evaluate",
        description="Evaluate a TACo checkpoint: retrieval per score, cascade, grounding.",
    )
    p.add_argument("--checkpoint", required=True, help="e.g. runs/fast/model.pt")
    p.add_argument("--splits", default="test,comp", help="comma-separated, e.g. test,comp")
    p.add_argument("--top-k", type=int, default=16, help="candidates re-scored by fusion")
    p.add_argument(
        "--full-fusion-subset",
        type=int,
        default=200,
        help="items on which all N^2 fusion passes are run (0 skips)",
    )
    p.add_argument("--lambda-t", type=float, help="weight of s2 (default: the checkpoint's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset")
    p.add_argument("--world", help="world folder (default: data/world)")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point: load the checkpoint, rebuild the datasets, print the report."""
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.world import load_world

    args = build_parser().parse_args(argv)
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    device = _device(args.device, None)
    model, vocab_words, (model_cfg, train_cfg) = load_model(args.checkpoint, map_location=device)
    world = load_world(args.world)
    datasets = datasets_for_checkpoint(vocab_words, model_cfg, train_cfg, splits, world)
    lambda_t = args.lambda_t
    if lambda_t is None:
        lambda_t = train_cfg.lambda_t if train_cfg is not None else 0.5
    results = evaluate(
        model, datasets, splits, lambda_t=lambda_t, top_k=args.top_k,
        full_fusion_subset=args.full_fusion_subset, device=device, seed=args.seed, world=world,
    )  # fmt: skip
    results["checkpoint"] = str(args.checkpoint)
    print(format_report(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results
