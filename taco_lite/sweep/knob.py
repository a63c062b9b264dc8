"""When does token-awareness help? The TACo - L1 gap against one world knob (issue 10, beyond
the paper: no real dataset has this knob).

    python -m taco_lite.sweep.knob --values 0,0.1,0.3,0.6 --seeds 0,1 --jobs 2
    python -m taco_lite.sweep.knob --report          # table + figure into docs/results.md
    python -m taco_lite.sweep.knob --knob seed --values 0,7   # a fresh, uncalibrated world

The knob is `WorldConfig.twin_frac`: the fraction of steps copied from another step with one
noun or verb changed. With more twins, more captions differ from another caption in a single
word, so retrieval depends more on single words, which is what TACo's token-level loss (L2)
and its fusion re-ranking (L3) are for. Every setting is a fresh world (the base world's
config with only the knob changed; 0.1 is the shipped world), trained with the val study's
rows (`val_study.EXPERIMENTS`, default L1 and TACo) and scored on an extra eval world of that
setting (`world.extra.eval_world`, N = 2,000 pairs) by each run's deployed score (s1 for L1,
the cascade for TACo). The gap's interval is a paired bootstrap over queries and seeds.
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

from taco_lite.metrics import paired_bootstrap, rank_metrics

KNOB = "twin_frac"
ABOUT = {
    "twin_frac": "the fraction of steps copied from another step with one noun or verb changed "
    "(more twins: more captions that differ in one word); 0.1 is the shipped world",
    "seed": "the world's seed: a fresh world that no one calibrated on (0 is the shipped world)",
}
TITLES = {
    "twin_frac": "## When does token-awareness help? TACo - L1 against the twin fraction",
    "seed": "## A fresh world seed: does TACo - L1 hold on a world no one calibrated on?",
}
TITLE = TITLES[KNOB]


def _cast(knob: str, value: float) -> Any:
    """A knob value in the type of its WorldConfig field (int for seed, float otherwise)."""
    from taco_lite.world import WorldConfig

    kind = type(getattr(WorldConfig(), knob))
    return int(value) if kind is int else float(value)


def knob_dir(out: Path, value: float, knob: str = KNOB) -> Path:
    return out / f"{knob}={value:g}"


def load_knob_data(
    out: Path,
    value: float,
    split: str,
    eval_clips: int,
    num_clips: int | None = None,
    knob: str = KNOB,
) -> dict[str, Any]:
    """`val_study.load_data` for the world with the knob at `value` (else the base config;
    `num_clips` shrinks it, for tests)."""
    from taco_lite.data import WorldDataset, build_datasets
    from taco_lite.text.pos import tag_captions
    from taco_lite.world import generate_world, load_world
    from taco_lite.world.extra import eval_world

    cfg = dataclasses.replace(load_world().config, **{knob: _cast(knob, value)})
    if num_clips is not None:
        cfg = dataclasses.replace(cfg, num_clips=num_clips)
    world = generate_world(cfg)
    cache = out / "tags.json"  # one spaCy cache for every setting (captions repeat)
    datasets, vocab, idf = build_datasets(world, splits=("train",), cache_path=cache)
    ev = eval_world(world, split, eval_clips)
    caps = [ev.segments[i].caption for i in ev.split(split)]
    val = WorldDataset(ev, split, vocab, idf, tags=tag_captions(caps, cache_path=cache))
    ev._frames.clear()
    return {"base": world, "train": datasets["train"], "val": val, "vocab": vocab, "idf": idf}


def run_setting(args: argparse.Namespace, value: float, seed: int) -> None:
    """Train and score every row for one (knob value, seed), one thread, in this process."""
    from taco_lite.config import PRESETS
    from taco_lite.sweep.val_study import run_experiment, score_saved_runs

    torch.set_num_threads(1)
    steps = args.steps or PRESETS[args.preset].configs()[1].steps
    folder = knob_dir(Path(args.out), value, args.knob)
    folder.mkdir(parents=True, exist_ok=True)
    data = load_knob_data(Path(args.out), value, args.split, args.eval_clips, args.world_clips,
                          args.knob)  # fmt: skip
    done = _records(folder)
    for exp in args.rows.split(","):
        if (exp, seed) not in done:
            r = run_experiment(exp, seed, steps, data, folder, args.n_eval, args.preset)
            print(f"{args.knob}={value:g} {exp} seed {seed}: s1 R@1 t2v {r['val_t2v']['R1']:.2f} "
                  f"({r['seconds']:.0f}s)", flush=True)  # fmt: skip
    score_saved_runs(folder, data, args.n_eval)


def _records(folder: Path) -> dict[tuple[str, int], dict]:
    path = folder / "results.jsonl"
    if not path.is_file():
        return {}
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    return {(r["exp"], r["seed"]): r for r in recs}


def run_all(args: argparse.Namespace) -> None:
    """Every (value, seed) as its own process, `--jobs` at a time (one thread each)."""
    todo = [(v, s) for s in _ints(args.seeds) for v in _floats(args.values)]
    running: list[subprocess.Popen] = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the first setting alone builds the shared tag cache before others read it
    first = True
    while todo or running:
        while todo and len(running) < (1 if first else args.jobs):
            v, s = todo.pop(0)
            cmd = [sys.executable, "-m", "taco_lite.sweep.knob", "--knob", args.knob,
                   "--one", f"{v:g}", "--seed",
                   str(s), "--rows", args.rows, "--preset", args.preset, "--split", args.split,
                   "--eval-clips", str(args.eval_clips), "--n-eval", str(args.n_eval),
                   "--out", args.out]  # fmt: skip
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            if args.world_clips:
                cmd += ["--world-clips", str(args.world_clips)]
            log = open(out / f"log_{v:g}_s{s}.txt", "w")  # noqa: SIM115 - closed with the process
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        time.sleep(2)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            first = False
            if p.returncode:
                raise SystemExit(f"{' '.join(p.args)} failed (exit {p.returncode}); see its log")


def gaps(out: Path, rows: Sequence[str] = ("L1", "TACo"), knob: str = KNOB) -> list[dict[str, Any]]:
    """Per knob value: deployed-score R@1 of each row and the paired gap rows[1] - rows[0]
    (`row[f"{name}_{d}"]` for rows[0] and rows[1] are stored as "base_" and "other_")."""
    base, other = rows
    res = []
    for folder in sorted(out.glob(f"{knob}=*"), key=lambda p: float(p.name.split("=")[1])):
        recs = _records(folder)
        seeds = sorted({s for (e, s) in recs if e == base} & {s for (e, s) in recs if e == other})
        seeds = [s for s in seeds if all((folder / "ranks" / f"{e}_s{s}_final.pt").is_file()
                                         for e in rows)]  # fmt: skip
        if not seeds:
            continue
        row: dict[str, Any] = {"value": float(folder.name.split("=")[1]), "seeds": seeds}
        if folder.is_symlink():  # runs made elsewhere for the same world and eval pairs
            row["linked"] = os.path.relpath(folder.resolve())
        for d in ("t2v", "v2t"):
            rk = {e: torch.stack([torch.load(folder / "ranks" / f"{e}_s{s}_final.pt")[d]
                                  for s in seeds]) for e in rows}  # fmt: skip
            for key, e in (("base", base), ("other", other)):
                row[f"{key}_{d}"] = sum(rank_metrics(r)["R1"] for r in rk[e]) / len(seeds)
            row[f"gap_{d}"] = paired_bootstrap(rk[base], rk[other])
            row["N"] = int(rk[base].shape[1])
        res.append(row)
    return res


def format_report(res: Sequence[dict[str, Any]], args: argparse.Namespace, figure: str) -> str:
    from taco_lite.sweep.tables import machine

    base, other = args.rows.split(",")[:2]
    k = args.knob
    lines = [
        f"Knob: `WorldConfig.{k}`, {ABOUT.get(k, 'a world knob')}. Each value is a fresh world "
        f"(the shipped config with only this knob changed), rows `{base}` and `{other}` of "
        f"`sweep/val_study.py`, preset `{args.preset}`, scored on an extra `{args.split}` world "
        f"of the same setting (N = {res[0]['N'] if res else '?'} pairs) by each run's deployed "
        "score: s1 for L1, cascade inference (s1 + 0.5 s2, top-16 re-scored with s3) for TACo. "
        f"Gap = {other} - {base} in R@1 points, 95% paired bootstrap over queries and seeds.",
        "",
        f"| {k} | seeds | {base} R@1 t2v | {other} R@1 t2v | gap t2v [95% CI] | {base} R@1 v2t "
        f"| {other} R@1 v2t | gap v2t [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res:
        cells = []
        for d in ("t2v", "v2t"):
            g = r[f"gap_{d}"]
            cells += [f"{r[f'base_{d}']:.1f}", f"{r[f'other_{d}']:.1f}",
                      f"{g['diff']:+.1f} [{g['lo']:+.1f}, {g['hi']:+.1f}]"]  # fmt: skip
        seeds = ",".join(map(str, r["seeds"]))
        lines.append(f"| {r['value']:g} | {seeds} | " + " | ".join(cells) + " |")
    for r in res:
        if r.get("linked"):
            lines += ["", f"The {k} = {r['value']:g} row reuses the runs in `{r['linked']}` "
                      "(a symlink: the same world, rows, seeds and eval pairs)."]  # fmt: skip
    lines += [
        "",
        f"![{other} - {base} against {k}]({figure})",
        "",
        f"Command: `python -m taco_lite.sweep.knob --knob {k} --values {args.values} --rows "
        f"{args.rows} --seeds {args.seeds} --preset {args.preset} --split {args.split} "
        f"--jobs {args.jobs}` (then `--report` redraws from runs/).",
        "",
        f"Machine: {machine()}.",
    ]
    return "\n".join(lines) + "\n"


def plot(res: Sequence[dict[str, Any]], path: Path, knob: str = KNOB, label: str = "") -> None:
    """The gap with its interval against the knob, both directions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    # a world seed is a name, not a quantity: evenly spaced categories, no line between them
    categorical = knob == "seed"
    xs = list(range(len(res))) if categorical else [r["value"] for r in res]
    step = 0.08 if categorical else 0.004
    for d, marker, shift in (("t2v", "o", -step), ("v2t", "s", step)):
        ys = [r[f"gap_{d}"]["diff"] for r in res]
        lo = [r[f"gap_{d}"]["diff"] - r[f"gap_{d}"]["lo"] for r in res]
        hi = [r[f"gap_{d}"]["hi"] - r[f"gap_{d}"]["diff"] for r in res]
        ax.errorbar([x + shift for x in xs], ys, yerr=[lo, hi], marker=marker, capsize=3,
                    label=f"{d} (95% CI)", linestyle="none" if categorical else "-")  # fmt: skip
    if categorical:
        ax.set_xticks(xs, [f"{r['value']:g}" for r in res])
        ax.set_xlim(-0.6, len(res) - 0.4)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(knob)
    ax.set_ylabel(f"{label or 'TACo - L1'}, R@1 points")
    ax.legend(frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m taco_lite.sweep.knob", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--knob", default=KNOB, help=f"a WorldConfig field: {sorted(ABOUT)}")
    p.add_argument("--values", default="0,0.1,0.3,0.6", help="comma list of the knob's values")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--rows", default="L1,TACo", help="val_study experiments to train; the "
                   "gap is the second minus the first")  # fmt: skip
    p.add_argument("--preset", default="sweep")
    p.add_argument("--steps", type=int, help="steps at batch 32 (default: the preset's)")
    p.add_argument("--split", default="val", choices=("val", "test"), help="extra eval world")
    p.add_argument("--eval-clips", type=int, default=800)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--jobs", type=int, default=2, help="processes at once (one thread each)")
    p.add_argument("--out", default="runs/knob")
    p.add_argument("--report", action="store_true", help="table + figure, train nothing")
    p.add_argument("--results", default="docs/results.md")
    p.add_argument("--figure", help="default docs/knob_<knob>.png")
    p.add_argument("--world-clips", type=int, help=argparse.SUPPRESS)  # tests: a smaller world
    p.add_argument("--one", type=float, help=argparse.SUPPRESS)  # internal: one knob value
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> str | None:
    args = build_parser().parse_args(argv)
    if args.one is not None:
        run_setting(args, args.one, args.seed)
        return None
    if not args.report:
        run_all(args)
    rows = tuple(args.rows.split(",")[:2])
    res = gaps(Path(args.out), rows, args.knob)
    if not res:
        raise SystemExit(f"no finished {rows} pair under {args.out}: run without --report")
    figure = Path(args.figure or f"docs/knob_{args.knob}.png")
    plot(res, figure, args.knob, f"{rows[1]} - {rows[0]}")
    text = format_report(res, args, os.path.relpath(figure, Path(args.results).parent))
    print(text)
    from taco_lite.sweep import write_section

    title = TITLES.get(args.knob, f"## {rows[1]} - {rows[0]} against {args.knob}")
    write_section(Path(args.results), f"knob-{args.knob}", text, title)
    return text


if __name__ == "__main__":
    main()
