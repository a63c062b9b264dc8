"""Benchmark 4: training throughput of each preset, split into data loading and the model step.

How many (caption, segment) pairs per second does each recipe of `config.PRESETS` train on
this machine, and where does the time go: assembling the batch (`data.collate`: padding,
uint8 -> float frames, the host-to-device copy) or the model step (`taco_step` forward,
backward, gradient clipping, Adam)? If loading dominated, more DataLoader workers would be
the fix; if the step dominates, only a smaller model or a faster device helps.

    python -m benchmarks.throughput --device cpu --write

The loop is the one of `train.train` (same batch order, same step), timed per step after a
warm-up. On CPU the `gpu` preset runs without bf16 autocast and torch.compile (both are meant
for a GPU); on CUDA it uses them as configured.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from benchmarks import common
from taco_lite.batch import Batch
from taco_lite.config import PRESETS
from taco_lite.data import collate
from taco_lite.model import TacoModel
from taco_lite.runtime.device import amp_context, compile_encoders
from taco_lite.train.schedule import epoch_batches, iterate_batches
from taco_lite.train.step import taco_step

NAME = "throughput"


def batches(train_set: Sequence, B: int, seed: int) -> Iterator[Batch]:
    """The training batch order of `train.train`, epoch after epoch (never runs dry)."""
    epoch = 0
    while True:
        yield from iterate_batches(train_set, epoch_batches(len(train_set), B, seed, epoch),
                                   collate, 0)  # fmt: skip
        epoch += 1


def measure_preset(
    name: str, train_set: Sequence, vocab_size: int, device: torch.device, steps: int,
    warmup: int, seed: int, compile_ok: bool,
) -> dict[str, Any]:  # fmt: skip
    mcfg, tcfg = PRESETS[name].configs()
    mcfg = dataclasses.replace(mcfg, vocab_size=vocab_size)
    amp = tcfg.amp and device.type == "cuda"
    use_compile = tcfg.compile and device.type == "cuda" and compile_ok
    tcfg = dataclasses.replace(tcfg, device=device.type, amp=amp, compile=use_compile)
    torch.manual_seed(seed)
    model = TacoModel(mcfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    if use_compile:
        compile_encoders(model)
    gen = torch.Generator().manual_seed(seed + 1)
    source = batches(train_set, tcfg.batch_size, seed)
    load_s, step_s = [], []
    for i in range(warmup + steps):
        common.sync(device)
        t0 = time.perf_counter()
        batch = next(source).to(device, non_blocking=True)
        common.sync(device)
        t1 = time.perf_counter()
        with amp_context(device, tcfg.amp):
            out = taco_step(model, batch, tcfg, generator=gen)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        if tcfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        common.sync(device)
        t2 = time.perf_counter()
        if i >= warmup:
            load_s.append(t1 - t0)
            step_s.append(t2 - t1)
    load, step = statistics.median(load_s), statistics.median(step_s)
    B = tcfg.batch_size
    return {
        "preset": name, "B": B, "d": mcfg.d, "amp": amp, "compile": use_compile,
        "steps": steps, "warmup": warmup, "load_s": load, "step_s": step,
        "clips_per_s": B / (load + step), "load_share": load / (load + step),
        "preset_steps": PRESETS[name].train.steps,
        "preset_minutes": PRESETS[name].train.steps * (load + step) / 60,
    }  # fmt: skip


def run(args: Any, device: torch.device) -> dict[str, Any]:
    presets = ["fast"] if args.tiny else [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"--presets {unknown} unknown: choose from {sorted(PRESETS)}")
    steps, warmup = (2, 1) if args.tiny else (args.steps, args.warmup)
    datasets, words, tags = common.world_datasets(("train",), 32)
    rows = []
    for name in presets:
        row = measure_preset(name, datasets["train"], len(words), device, steps, warmup,
                             args.seed, not args.no_compile)  # fmt: skip
        rows.append(row)
        print(
            f"{name}: {row['clips_per_s']:.0f} clips/s (load {common.fmt_s(row['load_s'])}, "
            f"step {common.fmt_s(row['step_s'])})",
            flush=True,
        )
    return {"rows": rows, "tags": tags, "train_items": len(datasets["train"])}


def render(res: dict[str, Any], info: dict[str, Any], cmd: str, device: torch.device) -> str:
    rows = [
        [r["preset"], r["B"], r["d"], "bf16" if r["amp"] else "-", "yes" if r["compile"] else "-",
         f"**{r['clips_per_s']:.0f}**", common.fmt_s(r["load_s"]), common.fmt_s(r["step_s"]),
         f"{100 * r['load_share']:.0f}%", f"{r['preset_steps']} steps ~ "
         f"{r['preset_minutes']:.1f} min"]
        for r in res["rows"]
    ]  # fmt: skip
    table = common.markdown_table(
        ["preset", "B", "d", "amp", "compile", "clips/s", "load + collate / step",
         "model step / step", "loading share", "whole preset at this rate"],
        rows,
    )  # fmt: skip
    r0 = res["rows"][0]
    notes = [
        f"median over {r0['steps']} steps after {r0['warmup']} warm-up steps per preset; "
        "clips/s = B / (median load + median step); a clip is one (caption, segment) pair.",
        "load + collate = next batch from the train split (frames are kept in memory as "
        "uint8; collate pads, stacks and converts to float) + `Batch.to(device)`; model step "
        "= `taco_step` + backward + gradient clipping + Adam, as in `train.train`.",
        "'whole preset' extrapolates to the preset's step count (excluding data building, "
        "evaluation and checkpoints).",
    ]
    if device.type == "cpu" and any(PRESETS[r["preset"]].train.amp for r in res["rows"]):
        notes.append("on CPU the gpu preset runs without bf16 autocast and torch.compile.")
    worst = max(res["rows"], key=lambda r: r["load_share"])
    if worst["load_share"] > 0.5:
        notes.append(
            f"loading is the bottleneck for `{worst['preset']}` "
            f"({100 * worst['load_share']:.0f}% of a step): use num_workers > 0."
        )
    else:
        notes.append(
            f"loading is not the bottleneck: at most {100 * worst['load_share']:.0f}% "
            f"of a step (`{worst['preset']}`); the model step dominates."
        )
    return common.section(
        f"Training throughput per preset on {device.type}", info, cmd, table, notes
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(NAME, "Training throughput (clips/s) per preset, loading vs step.")
    p.add_argument("--presets", default="fast,sweep,default,gpu", help="comma-separated")
    p.add_argument("--steps", type=int, default=20, help="timed steps per preset")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, caches)")
    p.add_argument("--no-compile", action="store_true", help="never torch.compile")
    args = p.parse_args(argv)
    device = common.pick_device(args.device)
    return common.run_and_report(NAME, args, argv, device, run, render)


if __name__ == "__main__":
    main()
