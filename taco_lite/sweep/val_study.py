"""Why does L2 lower s1? Small controlled experiments on a large val split (never test).

    python -m taco_lite.sweep.val_study --exp L1,L1+L2,fn-mask --seeds 0 --steps 600
    python -m taco_lite.sweep.val_study --report        # table with paired intervals vs L1

Each experiment trains the `sweep` preset's model (d = 64) without L3, changes one thing, and
measures s1 retrieval (docs/method.md §2: s1 = text_global . video_global) on

- *val*: an extra val world (`world.extra.eval_world(base, "val", 800)`, about 2,180 pairs,
  disjoint from train, test and comp), the first `--n-eval` pairs (default 2,000), and
- *train*: as many pairs the run trained on (the shipped train split; for endless data, the
  last complete epoch's pairs, each seen once),

so that the train - val gap measures memorisation at equal gallery size. The rows:

| exp | what changes (vs "L1+L2": L = L1 + 0.5 L2, Eq. 6 without L3) | cause it tests |
|---|---|---|
| L1 | L2 off | baseline |
| L1+L2 | - | - |
| fn-mask | L2 ignores negatives j whose caption contains token p's word | (i) false negatives |
| detach-text | L2's gradient does not reach the text encoder | (ii) shared encoders |
| detach-video | L2's gradient does not reach the video encoder | (ii) |
| lambda0.1 | lambda_t = 0.1 | (ii) weight |
| tau2-0.2 | tau2 = 0.2 instead of 0.07 | (iii) temperature |
| B128 | batch 128 (steps / 4: the same pairs seen) | (iv) negatives per batch |
| L1-endless, L1+L2-endless | fresh clips every epoch (`data.EndlessTrainSet`) | (v) memorisation |
| L1+L3, TACo | with L3 (cascade negatives, K' = 8) | L3's pull on the encoders |
| L1+L3-det, TACo-det | the same, fusion inputs detached: L3 trains only f_m | L2 given L3 |
| L1-frozen, TACo-frozen | the frame CNN is pretrained once (L1 on fresh clips) and frozen | the paper's frozen features |
| fn-mask-, detach-text-, detach-video-, L1+L3-, TACo-det-, L1-/TACo-frozen-endless | the rows above on fresh clips | the same, without memorisation |

Masking false negatives (i) is beyond the paper. Results go to OUT/results.jsonl and the ranks
of every query to OUT/ranks/, so that `--report` can pair runs query by query
(`metrics.paired_bootstrap`, over queries and seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.config import PRESETS
from taco_lite.metrics import paired_bootstrap, rank_metrics, retrieval_ranks
from taco_lite.sweep.val_modes import (  # noqa: F401 - re-exported for tests and notebooks
    MASKED_SCORE,
    PRETRAIN_SEED,
    _frozen_frames,
    _fuse_detached,
    _LastBatch,
    false_negative_mask,
    loss_fns,
    pretrained_frame_encoder,
)

EXPERIMENTS: dict[str, dict[str, Any]] = {
    "L1": {"losses": "L1"},
    "L1+L2": {"losses": "L1+L2"},
    "fn-mask": {"losses": "L1+L2", "mode": "fn-mask"},
    "detach-text": {"losses": "L1+L2", "mode": "detach-text"},
    "detach-video": {"losses": "L1+L2", "mode": "detach-video"},
    "lambda0.1": {"losses": "L1+L2", "lambda_t": 0.1},
    "tau2-0.2": {"losses": "L1+L2", "tau2": 0.2},
    "L1-B128": {"losses": "L1", "batch_size": 128},
    "B128": {"losses": "L1+L2", "batch_size": 128},
    "L1+L3": {"losses": "L1+L3"},
    "TACo": {"losses": "L1+L2+L3"},
    "L1+L3-det": {"losses": "L1+L3", "mode": "detach-fusion"},
    "TACo-det": {"losses": "L1+L2+L3", "mode": "detach-fusion"},
    "L1-endless": {"losses": "L1", "endless": True},
    "L1+L2-endless": {"losses": "L1+L2", "endless": True},
    "TACo-endless": {"losses": "L1+L2+L3", "endless": True},
    "L1-frozen": {"losses": "L1", "mode": "frozen-frames"},
    "TACo-frozen": {"losses": "L1+L2+L3", "mode": "frozen-frames"},
    "fn-mask-endless": {"losses": "L1+L2", "mode": "fn-mask", "endless": True},
    "detach-text-endless": {"losses": "L1+L2", "mode": "detach-text", "endless": True},
    "detach-video-endless": {"losses": "L1+L2", "mode": "detach-video", "endless": True},
    "L1+L3-endless": {"losses": "L1+L3", "endless": True},
    "TACo-det-endless": {"losses": "L1+L2+L3", "mode": "detach-fusion", "endless": True},
    "L1-frozen-endless": {"losses": "L1", "mode": "frozen-frames", "endless": True},
    "TACo-frozen-endless": {"losses": "L1+L2+L3", "mode": "frozen-frames", "endless": True},
}
# each experiment's closest control, for the report's second paired difference
CONTROLS = {
    "fn-mask": "L1+L2", "detach-text": "L1+L2", "detach-video": "L1+L2", "lambda0.1": "L1+L2",
    "tau2-0.2": "L1+L2", "B128": "L1-B128", "L1-B128": "L1", "L1+L2-endless": "L1-endless",
    "L1-endless": "L1", "TACo": "L1+L3", "TACo-det": "L1+L3-det", "L1+L3-det": "L1+L3",
    "L1-frozen": "L1", "TACo-frozen": "L1-frozen", "TACo-endless": "L1-endless",
    "L1+L3-endless": "L1-endless", "TACo-det-endless": "L1-endless",
    "fn-mask-endless": "L1+L2-endless", "detach-text-endless": "L1+L2-endless",
    "detach-video-endless": "L1+L2-endless",
    "L1-frozen-endless": "L1-endless", "TACo-frozen-endless": "L1-frozen-endless",
}  # fmt: skip


@torch.no_grad()
def s1_ranks(model: Any, dataset: Any, n: int) -> dict[str, torch.Tensor]:
    """1-based s1 ranks of the first n pairs of `dataset`, both directions: {"t2v", "v2t"}."""
    from taco_lite.evaluate.inference import embed_dataset, global_scores

    items = [dataset[i] for i in range(min(n, len(dataset)))]
    emb = embed_dataset(model, items)
    s1 = global_scores(emb)  # (N, N)
    return {"t2v": retrieval_ranks(s1), "v2t": retrieval_ranks(s1.T)}


def final_ranks(
    model: Any, dataset: Any, n: int, terms: Sequence[str], lambda_t: float, top_k: int = 16
) -> dict[str, torch.Tensor]:
    """1-based ranks of the first n pairs of `dataset` under the score the run would be used
    with (`evaluate.retrieval.deployed_scores`: s1, s1 + s2, or the cascade): {"t2v", "v2t"}."""
    from taco_lite.evaluate.compare import dataset_ranks

    items = [dataset[i] for i in range(min(n, len(dataset)))]
    return dataset_ranks(model, items, terms, lambda_t, top_k)


def score_saved_runs(out: Path, data: dict[str, Any], n_eval: int) -> None:
    """OUT/ranks/<exp>_s<seed>_final.pt for every finished run in results.jsonl (from its
    model.pt): the ranks of the score the run would be deployed with (`final_ranks`)."""
    from taco_lite.runtime.checkpoint import load_model

    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        dest = out / "ranks" / f"{r['exp']}_s{r['seed']}_final.pt"
        ckpt = out / "ckpt" / f"{r['exp']}_s{r['seed']}" / "model.pt"
        if dest.is_file() or not ckpt.is_file():
            continue
        model, _, (_, tcfg) = load_model(ckpt, map_location="cpu")
        ranks = final_ranks(model.eval(), data["val"], n_eval, tcfg.terms, tcfg.lambda_t)
        torch.save(ranks, dest)
        print(f"{r['exp']} seed {r['seed']} ({tcfg.losses}): final-score val R@1 t2v "
              f"{rank_metrics(ranks['t2v'])['R1']:.2f} v2t {rank_metrics(ranks['v2t'])['R1']:.2f}",
              flush=True)  # fmt: skip


def load_data(out: Path, val_clips: int) -> dict[str, Any]:
    from taco_lite.data import WorldDataset, build_datasets
    from taco_lite.text.pos import tag_captions
    from taco_lite.world import load_world
    from taco_lite.world.extra import eval_world

    base = load_world()
    cache = out / "tags.json"
    datasets, vocab, idf = build_datasets(base, splits=("train",), cache_path=cache)
    val_world = eval_world(base, "val", val_clips)
    caps = [val_world.segments[i].caption for i in val_world.split("val")]
    val = WorldDataset(val_world, "val", vocab, idf, tags=tag_captions(caps, cache_path=cache))
    val_world._frames.clear()
    return {"base": base, "train": datasets["train"], "val": val, "vocab": vocab, "idf": idf}


def run_experiment(
    name: str,
    seed: int,
    steps: int,
    data: dict[str, Any],
    out: Path,
    n_eval: int,
    preset: str = "sweep",
    eval_every: int | None = None,
) -> dict[str, Any]:
    """Train one experiment with one seed; evaluate s1 on val and train; save ranks.

    eval_every: also measure train and val R@1 every this many steps (the run is split with
    `train(stop_at=...)` and resumed exactly), in the record's "curve".
    """
    from collections import Counter

    from taco_lite.data.endless import EndlessTrainSet
    from taco_lite.train import train
    from taco_lite.train.schedule import pair_view_summary

    spec = dict(EXPERIMENTS[name])
    mode, endless = spec.pop("mode", None), spec.pop("endless", False)
    model_cfg, train_cfg = PRESETS[preset].configs()
    if "tau2" in spec:
        model_cfg = dataclasses.replace(model_cfg, tau2=spec.pop("tau2"))
    B = spec.get("batch_size", train_cfg.batch_size)
    run_steps = steps * train_cfg.batch_size // B  # the same number of pairs seen
    train_cfg = dataclasses.replace(
        train_cfg, **spec, steps=run_steps, seed=seed, progress=False, device="cpu",
        warmup_steps=min(train_cfg.warmup_steps, max(1, run_steps // 10)), endless_data=endless,
        ckpt_dir=str(out / "ckpt" / f"{name}_s{seed}"),
    )  # fmt: skip
    last = _LastBatch()
    train_set = data["train"]
    if endless:
        train_set = EndlessTrainSet(
            data["base"], data["vocab"], data["idf"], seed=seed, pairs_per_epoch=len(train_set)
        )

    def seen_pairs(step: int) -> Any:  # pairs the run trained on, each seen as often
        if not endless:
            return train_set
        return train_set.for_epoch(max(0, step // (len(train_set) // B) - 1))  # seen once

    frames = pretrained_frame_encoder(data, out, preset, steps) if mode == "frozen-frames" else None
    stops = list(range(eval_every, run_steps, eval_every)) if eval_every else []
    views: Counter = Counter()
    curve, seconds, data_seconds, loop_seconds = [], 0.0, 0.0, 0.0
    resume = None
    for stop in [*stops, run_steps]:
        t0 = time.perf_counter()
        with _fuse_detached(mode == "detach-fusion"), _frozen_frames(frames):
            result = train(
                model_cfg, train_cfg, datasets={"train": train_set}, vocab=data["vocab"],
                fns=loss_fns(mode, last), collate_fn=last.collate, resume=resume, stop_at=stop,
            )  # fmt: skip
        seconds += time.perf_counter() - t0
        views = Counter(result.extra["views"])  # the whole run so far (kept across resumes)
        data_seconds += result.extra["data_seconds"]
        loop_seconds += result.extra["loop_seconds"]
        resume = result.checkpoint
        if stop < run_steps:
            with torch.no_grad():
                point = {"step": stop, "L1_last50": _mean([h["L1"] for h in result.history[-50:]])}
                for split, ds in (("val", data["val"]), ("train", seen_pairs(stop))):
                    for d, r in s1_ranks(result.model, ds, n_eval).items():
                        point[f"{split}_{d}_R1"] = rank_metrics(r)["R1"]
            curve.append(point)
    seen = seen_pairs(run_steps)
    if endless:
        train_set.close()
        build = list(train_set.build_seconds.values())
    else:
        build = []
    ranks = {"val": s1_ranks(result.model, data["val"], n_eval)}
    ranks["train"] = s1_ranks(result.model, seen, n_eval)
    (out / "ranks").mkdir(parents=True, exist_ok=True)
    torch.save(ranks, out / "ranks" / f"{name}_s{seed}.pt")
    tail = result.history[-50:]
    rec = {
        "exp": name, "seed": seed, "preset": preset, "steps": run_steps, "batch_size": B,
        "lambda_t": train_cfg.lambda_t, "tau2": model_cfg.tau2, "mode": mode, "endless": endless,
        "seconds": round(seconds, 1), "data_share": round(data_seconds / max(loop_seconds, 1e-9), 3),
        "pair_views": pair_view_summary(views),
        "epoch_build_seconds": _mean(build),  # endless: one epoch's generation + tagging
        "fn_masked_share": last.masked / last.calls if last.calls else None,
        "L1_last50": _mean([h["L1"] for h in tail]), "L2_last50": _mean([h["L2"] for h in tail]),
        "L3_last50": _mean([h["L3"] for h in tail]),
        **{f"{split}_{d}": rank_metrics(r) for split, rr in ranks.items() for d, r in rr.items()},
        "curve": curve,
    }  # fmt: skip
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def _mean(xs: Sequence[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def report(out: Path, baseline: str = "L1", direction: str = "t2v", score: str = "") -> str:
    """Markdown table: per experiment, seeds, val/train s1 R@1 and the paired diff vs baseline.

    score "final": val columns use each run's deployed score (`final_ranks`: cascade for L3
    runs) instead of s1; the train column stays s1."""
    recs: dict[str, dict[int, dict]] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        recs.setdefault(r["exp"], {})[r["seed"]] = r  # the last run of (exp, seed) wins
    if score == "final":  # only runs that have final ranks
        recs = {e: {s: r for s, r in by.items()
                    if (out / "ranks" / f"{e}_s{s}_final.pt").is_file()}
                for e, by in recs.items()}  # fmt: skip
        recs = {e: by for e, by in recs.items() if by}

    def ranks(exp: str, seeds: list[int], split: str) -> torch.Tensor:
        if score == "final" and split == "val":
            rr = [torch.load(out / "ranks" / f"{exp}_s{s}_final.pt")[direction] for s in seeds]
        else:
            rr = [torch.load(out / "ranks" / f"{exp}_s{s}.pt")[split][direction] for s in seeds]
        return torch.stack(rr)  # (S, N)

    rows = [
        f"| exp | seeds | val R@1 | val R@5 | val R@10 | val MnR | train R@1 | "
        f"val R@1 - {baseline} [95% CI] | control | val R@1 - control [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def paired(exp: str, ctrl: str, seeds: list[int]) -> str:
        common = sorted(set(seeds) & set(recs.get(ctrl, {})))
        if exp == ctrl or not common:
            return "-"
        b = paired_bootstrap(ranks(ctrl, common, "val"), ranks(exp, common, "val"))
        return f"{b['diff']:+.1f} [{b['lo']:+.1f}, {b['hi']:+.1f}] (seeds {common})"

    for exp in [e for e in EXPERIMENTS if e in recs]:
        seeds = sorted(recs[exp])
        val = ranks(exp, seeds, "val")
        m = [rank_metrics(v) for v in val]
        tr = _mean([recs[exp][s][f"train_{direction}"]["R1"] for s in seeds])
        ctrl = CONTROLS.get(exp, "-")
        rows.append(
            f"| {exp} | {','.join(map(str, seeds))} | {_mean([x['R1'] for x in m]):.1f} | "
            f"{_mean([x['R5'] for x in m]):.1f} | {_mean([x['R10'] for x in m]):.1f} | "
            f"{_mean([x['MnR'] for x in m]):.0f} | {tr:.1f} | {paired(exp, baseline, seeds)} | "
            f"{ctrl} | {paired(exp, ctrl, seeds) if ctrl in recs else '-'} |"
        )
    n = int(val.shape[1])
    what = "deployed score (s1; s1 + s2 with L2; cascade with L3)" if score else "s1"
    return (
        "\n".join(rows) + f"\n\n{what} {direction}, N = {n} val queries (chance {100 / n:.2f}).\n"
    )


def measure_data(out: Path, epochs: int = 2, log: Callable[[str], None] = print) -> dict:
    """Seconds to build one endless epoch (generate, render, tag, encode; no prefetch), per
    tagger, against the seconds one epoch of training steps takes in this study's L1 run."""
    from taco_lite.data import build_datasets
    from taco_lite.data.endless import EndlessTrainSet
    from taco_lite.world import load_world

    torch.set_num_threads(1)
    base = load_world()
    datasets, vocab, idf = build_datasets(base, splits=("train",), cache_path=out / "tags.json")
    n = len(datasets["train"])
    res: dict[str, Any] = {"pairs_per_epoch": n}
    for tagger in ("spacy", "gold"):
        ts = EndlessTrainSet(base, vocab, idf, seed=123, tagger=tagger, prefetch=False)
        for e in range(epochs):
            ts.for_epoch(e)
        res[f"build_{tagger}"] = _mean(list(ts.build_seconds.values()))
    runs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    l1 = [r for r in runs if r["exp"] == "L1"]
    if l1:
        per_step = _mean([r["seconds"] / r["steps"] for r in l1])
        res["epoch_train_seconds"] = per_step * (n // 32)
        for tagger in ("spacy", "gold"):
            res[f"share_{tagger}"] = res[f"build_{tagger}"] / res["epoch_train_seconds"]
    log(json.dumps(res, indent=1))
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m taco_lite.sweep.val_study", description=__doc__)
    p.add_argument("--exp", default="L1,L1+L2", help=f"comma list of {list(EXPERIMENTS)}")
    p.add_argument("--seeds", default="0")
    p.add_argument("--preset", default="sweep", help="model and schedule (sweep or default)")
    p.add_argument("--steps", type=int, help="steps at batch 32 (default: the preset's)")
    p.add_argument("--eval-every", type=int, help="also measure train/val R@1 every K steps")
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--val-clips", type=int, default=800)
    p.add_argument("--out", default="runs/val_study")
    p.add_argument("--report", action="store_true", help="print the table, train nothing")
    p.add_argument("--baseline", default="L1")
    p.add_argument("--measure-data", action="store_true", help="time one endless epoch's build")
    p.add_argument("--final", action="store_true", help="score every saved run on val by the "
                   "score it would be used with (cascade for L3 runs), then report those ranks")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> None:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.measure_data:
        measure_data(out)
        return
    if args.final:
        torch.set_num_threads(1)
        score_saved_runs(out, load_data(out, args.val_clips), args.n_eval)
    if args.report or args.final:
        for d in ("t2v", "v2t"):
            log(report(out, args.baseline, d, "final" if args.final else ""))
        return
    torch.set_num_threads(1)
    exps = [e.strip() for e in args.exp.split(",") if e.strip()]
    unknown = [e for e in exps if e not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    data = load_data(out, args.val_clips)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for exp in exps:
            steps = args.steps or PRESETS[args.preset].configs()[1].steps
            r = run_experiment(exp, seed, steps, data, out, args.n_eval, args.preset,
                               args.eval_every)  # fmt: skip
            log(
                f"{exp:>14} seed {seed}: val s1 t2v R@1 {r['val_t2v']['R1']:.2f}  "
                f"train {r['train_t2v']['R1']:.2f}  ({r['seconds']:.0f}s, data "
                f"{100 * r['data_share']:.0f}%, max views {r['pair_views']['max']})"
            )


if __name__ == "__main__":
    main()
