"""The paper's Tables 3 and 4 in miniature: `python -m taco_lite.sweep`.

Every row of both tables (plus the row the paper did not run: tokens of interest = all
tokens) is trained with several seeds, evaluated on one split, and summarised as mean ± std in
`docs/results.md` between the markers `<!-- sweep-<split>:start -->` and `<!-- sweep-<split>:end -->`
(`sweep-test` for the default split).

Rows and the score each one is ranked by (the paper's inference: the sum of the scores the run
trained, docs/method.md §5):

| row | losses | negatives | tokens of interest | ranked by |
|---|---|---|---|---|
| L1 | L1 | - | - | s1 |
| L3 | L3 | random | - | s3, full fusion over all N^2 pairs |
| L1+L3 random | L1+L3 | random | - | cascade: s1, top-k re-scored with + s3 |
| L1+L3 cascade | L1+L3 | cascade | none | cascade: s1, top-k + s3 |
| L1+L2+L3 ... | L1+L2+L3 | cascade | det+adp, noun, verb, noun+verb, all | cascade: s1 + λ s2, top-k + s3 |

"L3" alone uses random negatives: cascade sampling ranks pairs by s1 and token scores, which an
L3-only run never trains, so its "hard" negatives would be random anyway.

The regime of issue 10 (no memorisation, an evaluation that resolves about a point):

    python -m taco_lite.sweep --endless --eval-clips 800 --n-eval 2000 --split test \
        --seeds 0 1 2 3 4 --steps 300 --out runs/sweep_endless

`--endless` trains every run on fresh clips each epoch (no pair seen twice, counted in the
record's `pair_views`); `--eval-clips` scores on an extra eval world (N = 2,000 pairs instead of
the shipped 406) and saves every query's rank (ranks.pt), so that the table gives each row's
R@1 - L1 with a paired bootstrap interval over queries and seeds.

Runs go to `runs/sweep/<row>/seed<k>/` (model.pt + result.json); a finished run is skipped, so an
interrupted sweep resumes where it stopped. `--jobs 2` runs two trainings at once, one thread
each, which is the fastest layout on a 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.sweep.rows import ROWS, ROWS_BY_SLUG, Row
from taco_lite.sweep.tables import format_table, write_section


def run_one(
    row: Row,
    seed: int,
    preset: str,
    split: str,
    out_dir: Path,
    top_k: int,
    steps: int | None = None,
    data: str = "",
    endless: bool = False,
    eval_clips: int = 0,
    n_eval: int = 2000,
) -> dict[str, Any]:
    """Train one (row, seed), evaluate it on `split`, write result.json next to model.pt.

    data: `TrainConfig.data` ("" = the shipped world, "world:PATH", "features:PATH").
    endless: train on fresh clips every epoch (`data.EndlessTrainSet`, the world's gold tags,
      which spaCy matches on 99.9% of tokens: spaCy would cost about 7 s per epoch), so that
      no pair is seen twice; the record's "pair_views" counts it.
    eval_clips: > 0 evaluates on an extra `split` world of that many clips
      (`world.extra.eval_world`, disjoint from train and the shipped splits), its first
      `n_eval` pairs; 0 on the shipped `split`. The deployed-score ranks of every query go to
      ranks.pt, for paired intervals between rows.
    """
    from taco_lite.config import PRESETS
    from taco_lite.data.sources import model_config_for_data, parse_data_spec, world_idf
    from taco_lite.evaluate import grounding_accuracy_report
    from taco_lite.evaluate.inference import embed_dataset
    from taco_lite.evaluate.retrieval import retrieval_with_ranks
    from taco_lite.train import load_world_datasets, train
    from taco_lite.train.schedule import pair_view_summary
    from taco_lite.world import load_world

    model_cfg, train_cfg = PRESETS[preset].configs()
    kind, path = parse_data_spec(data)
    model_cfg = model_config_for_data(model_cfg, data)
    train_cfg = dataclasses.replace(
        train_cfg, data=data, losses=row.losses, negatives=row.negatives, pos_tags=row.pos_tags,
        seed=seed, ckpt_dir=str(out_dir), progress=False,
        steps=steps or train_cfg.steps,
        warmup_steps=min(train_cfg.warmup_steps, (steps or train_cfg.steps) // 5),
    )  # fmt: skip
    t0 = time.perf_counter()
    datasets, vocab = load_world_datasets(
        model_cfg, train_cfg, splits=("train",) if eval_clips else ("train", split)
    )
    world = None
    if kind == "world":
        world = load_world(path) if path is not None else load_world()
    if endless or eval_clips:
        if world is None:
            raise ValueError("--endless and --eval-clips need a generated world, not features")
        idf = world_idf(world)
    if endless:
        from taco_lite.data.endless import EndlessTrainSet

        datasets["train"] = EndlessTrainSet(
            world, vocab, idf, seed=seed, pos_tags=row.pos_tags, max_tokens=model_cfg.max_tokens,
            pairs_per_epoch=len(datasets["train"]), tagger="gold",
        )  # fmt: skip
        train_cfg = dataclasses.replace(train_cfg, endless_data=True)
    result = train(model_cfg, train_cfg, datasets=datasets, vocab=vocab)
    if endless:
        datasets["train"].close()
    train_seconds = time.perf_counter() - t0
    model = result.model.eval()
    if eval_clips:
        ev, test_set = eval_dataset(world, split, eval_clips, vocab, idf, row.pos_tags,
                                    model_cfg.max_tokens, out_dir.parent.parent)  # fmt: skip
        emb = embed_dataset(model, [test_set[i] for i in range(min(n_eval, len(test_set)))])
    else:
        ev, emb = world, embed_dataset(model, datasets[split])
    with torch.no_grad():
        scores, ranks = retrieval_with_ranks(model, emb, train_cfg.terms, train_cfg.lambda_t, top_k)
    torch.save(ranks, out_dir / "ranks.pt")
    grounding: dict[str, Any] = {"chance": {}}  # real features carry no grounding labels
    if ev is not None:
        grounding = grounding_accuracy_report(model, emb, world=ev)
    (out_dir / "last.pt").unlink(missing_ok=True)  # model.pt (slim) is enough for evaluation
    record = {
        "row": row.name, "slug": row.slug, "seed": seed, "preset": preset, "split": split,
        "N": len(emb), "top_k": top_k, "scores": scores, "grounding": grounding,
        "final_losses": {k: v for k, v in result.history[-1].items() if k.startswith("L")},
        "endless": endless, "eval_clips": eval_clips,
        "pair_views": pair_view_summary(result.extra["views"]),
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "config": run_config(preset, split, top_k, steps, data, endless, eval_clips, n_eval),
    }  # fmt: skip
    (out_dir / "result.json").write_text(json.dumps(record, indent=1))
    return record


def eval_dataset(
    world: Any,
    split: str,
    clips: int,
    vocab: Any,
    idf: dict[str, float],
    pos_tags: str,
    max_tokens: int,
    cache_dir: Path,
) -> tuple[Any, Any]:
    """(extra eval world, its WorldDataset): `world.extra.eval_world(world, split, clips)`, tagged
    by spaCy through the cache `cache_dir/tags_<split>_<clips>.json` (`prepare_eval` fills it
    before the workers start, so that they only read it)."""  # fmt: skip
    from taco_lite.data import WorldDataset
    from taco_lite.text.pos import tag_captions
    from taco_lite.world.extra import eval_world

    ev = eval_world(world, split, clips)
    caps = [ev.segments[i].caption for i in ev.split(split)]
    tags = tag_captions(caps, cache_path=Path(cache_dir) / f"tags_{split}_{clips}.json")
    ds = WorldDataset(ev, split, vocab, idf, pos_tags, tags=tags, max_tokens=max_tokens)
    return ev, ds


# ------------------------------------------------------------------------------ scheduling


def run_config(preset: str, split: str, top_k: int, steps: int | None, data: str,
               endless: bool, eval_clips: int, n_eval: int) -> dict[str, Any]:  # fmt: skip
    """Every knob that shapes a run's result: a result.json is reused only for the same."""
    return {"preset": preset, "split": split, "top_k": top_k, "steps": steps, "data": data,
            "endless": endless, "eval_clips": eval_clips,
            "n_eval": n_eval if eval_clips else None}  # fmt: skip


def _args_config(args: argparse.Namespace) -> dict[str, Any]:
    from taco_lite.data.sources import data_spec

    return run_config(args.preset, args.split, args.top_k, args.steps,
                      data_spec(args.world, args.features), args.endless, args.eval_clips,
                      args.n_eval)  # fmt: skip


def reusable(result_path: Path, config: dict[str, Any]) -> bool:
    """True if result_path was made with `config`; ValueError if it was made with another."""
    if not result_path.exists():
        return False
    made = json.loads(result_path.read_text()).get("config")
    if made == config:
        return True
    diffs = [f"{k} {(made or {}).get(k)!r} there, {v!r} here" for k, v in config.items()
             if (made or {}).get(k) != v] if made else ["it records no configuration"]  # fmt: skip
    raise ValueError(
        f"{result_path} was made with another configuration ({'; '.join(diffs)}): give this "
        "sweep its own --out folder, or delete that run to redo it"
    )


def failure_line(log: Path) -> str:
    """The failed run's own error: the last line of its log.txt that says something."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log.txt)"
    return lines[-1] if lines else "(log.txt is empty)"


def _launch(row: Row, seed: int, args: argparse.Namespace, out_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "taco_lite.sweep", "--one", row.slug, "--seed", str(seed),
           "--preset", args.preset, "--split", args.split, "--top-k", str(args.top_k),
           "--out", str(args.out)]  # fmt: skip
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    if args.endless:
        cmd += ["--endless"]
    if args.eval_clips:
        cmd += ["--eval-clips", str(args.eval_clips), "--n-eval", str(args.n_eval)]
    for flag in ("world", "features"):
        if getattr(args, flag, None):
            cmd += [f"--{flag}", getattr(args, flag)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "log.txt", "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every missing (row, seed) with `args.jobs` processes; return all results."""
    rows = [ROWS_BY_SLUG[s] for s in args.rows] if args.rows else list(ROWS)
    todo = [(row, seed) for seed in args.seeds for row in rows]
    running: list[tuple[subprocess.Popen, Path, Row, int]] = []
    failed = []
    config = _args_config(args)
    for row, seed in todo:  # refuse stale results now, before any run starts
        reusable(Path(args.out) / row.slug / f"seed{seed}" / "result.json", config)
    if args.eval_clips:  # tag the eval world once, so that the workers only read the cache
        prepare_eval(args)
    t0 = time.perf_counter()
    while todo or running:
        while todo and len(running) < args.jobs:
            row, seed = todo.pop(0)
            out_dir = Path(args.out) / row.slug / f"seed{seed}"
            if reusable(out_dir / "result.json", config):
                continue
            running.append((_launch(row, seed, args, out_dir), out_dir, row, seed))
            print(f"[{time.perf_counter() - t0:6.0f}s] start {row.name} seed {seed}", flush=True)
        for item in list(running):
            proc, out_dir, row, seed = item
            if proc.poll() is None:
                continue
            running.remove(item)
            status = "done" if proc.returncode == 0 else f"FAILED (see {out_dir / 'log.txt'})"
            if proc.returncode != 0:
                failed.append(f"{row.name} seed {seed}: {failure_line(out_dir / 'log.txt')}")
            print(
                f"[{time.perf_counter() - t0:6.0f}s] {status}: {row.name} seed {seed}", flush=True
            )
        time.sleep(0.5)
    if failed:
        from taco_lite.runtime.cli_errors import UserError

        raise UserError(
            f"{len(failed)} run(s) failed; {failed[0]}"
            + (f" (and {len(failed) - 1} more, see their log.txt)" if len(failed) > 1 else "")
        )
    return collect(Path(args.out), rows, args.seeds)


def prepare_eval(args: argparse.Namespace) -> None:
    """Fill the eval world's tag cache in this process before any worker reads it."""
    from taco_lite.data import build_datasets
    from taco_lite.data.sources import data_spec, parse_data_spec
    from taco_lite.world import load_world

    spec = data_spec(args.world, args.features)
    kind, path = parse_data_spec(spec)
    if kind != "world":
        raise SystemExit("--eval-clips needs a generated world (the shipped one or --world)")
    world = load_world(path) if path is not None else load_world()
    _, vocab, idf = build_datasets(world, splits=("train",))
    eval_dataset(world, args.split, args.eval_clips, vocab, idf, "noun+verb",
                 32, Path(args.out))  # fmt: skip


def collect(root: Path, rows: Sequence[Row], seeds: Sequence[int]) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        for seed in seeds:
            path = root / row.slug / f"seed{seed}" / "result.json"
            if path.exists():
                results.append(json.loads(path.read_text()))
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.sweep",
        description="Tables 3 and 4 of the TACo paper in miniature (see docs/results.md).",
    )
    p.add_argument(
        "--preset", default="sweep", help="training preset for every run (default: sweep)"
    )
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0, 1, 2])
    p.add_argument("--split", default="test", help="split to evaluate on (calibrate on val!)")
    p.add_argument("--rows", nargs="+", choices=sorted(ROWS_BY_SLUG), help="only these rows")
    p.add_argument("--jobs", type=_count(1), default=2, help="trainings at once (default 2)")
    p.add_argument("--threads", type=_count(1), default=1, help="torch threads per training")
    p.add_argument(
        "--top-k", type=_count(1), default=16, help="cascade inference re-ranks this many"
    )
    p.add_argument("--steps", type=_count(1), default=None, help="override the preset's steps")
    p.add_argument(
        "--endless",
        action="store_true",
        help="train on fresh clips every epoch (no pair seen twice; issue 10)",
    )
    p.add_argument(
        "--eval-clips",
        type=_count(0),
        default=0,
        help="evaluate on an extra eval world of this many clips (0 = the shipped split)",
    )
    p.add_argument("--n-eval", type=_count(1), default=2000, help="pairs of the extra eval world")
    p.add_argument("--out", default="runs/sweep", help="where runs go (default runs/sweep)")
    p.add_argument("--results", default="docs/results.md", help="markdown file to update")
    p.add_argument("--no-write", action="store_true", help="print the table, don't write it")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--world", help="a generated world folder (default: the shipped world)")
    data.add_argument("--features", help="real features: PATH/train, PATH/<split>")
    p.add_argument("--one", choices=sorted(ROWS_BY_SLUG), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=_count(0), default=0, help=argparse.SUPPRESS)
    return p


def _count(low: int):
    """An argparse type: an integer >= low (--jobs 0 waited forever, --steps 0 ran 600)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small: use an integer >= {low}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> str:
    from taco_lite.data.sources import data_spec

    args = build_parser().parse_args(argv)
    from taco_lite.config import PRESETS

    if args.preset not in PRESETS:
        raise ValueError(f"--preset {args.preset!r} is not a preset: use one of {sorted(PRESETS)}")
    if args.one:  # a worker process: one (row, seed)
        out_dir = Path(args.out) / args.one / f"seed{args.seed}"
        out_dir.mkdir(parents=True, exist_ok=True)
        record = run_one(ROWS_BY_SLUG[args.one], args.seed, args.preset, args.split, out_dir,
                         args.top_k, args.steps, data_spec(args.world, args.features),
                         args.endless, args.eval_clips, args.n_eval)  # fmt: skip
        print(json.dumps({"row": record["row"], "seed": record["seed"],
                          "R1": record["scores"]["ranked"]["t2v"]["R1"]}))  # fmt: skip
        return ""
    t0 = time.perf_counter()
    results = run_sweep(args)
    command = "python -m taco_lite.sweep " + " ".join(argv if argv is not None else sys.argv[1:])
    table = format_table(results, command.strip(), time.perf_counter() - t0, Path(args.out))
    print(table)
    if not args.no_write:
        name = f"sweep-{args.split}" + ("-endless" if args.endless else "")
        regime = ", fresh clips every epoch" if args.endless else ""
        write_section(Path(args.results), name, table,
                      f"## Tables 3 and 4 in miniature ({args.split} split{regime})")  # fmt: skip
    return table
