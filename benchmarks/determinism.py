"""Benchmark 5: what same-seed reproducibility costs (issue 11).

Two identical CPU runs used to differ from step 3 with the default 2 threads: the fusion
head's gather `tokens[idx]` has repeated indices, and its backward (`index_put_` with
accumulate) adds them up in a thread-dependent order. The kit now gathers with
`index_select` (whose backward is deterministic on CPU) and, by default, trains under
`torch.use_deterministic_algorithms(True, warn_only=True)` (`TrainConfig.deterministic`).

This script times, in the same process and interleaved (benchmarks/common.py):
  1. `train()` for N steps with `deterministic=False` and with `deterministic=True`;
  2. the gather alone, forward + backward: `tokens[idx]` against `tokens.index_select(0, idx)`,
     at the fusion head's training size (2B(k+1) rows gathered from B);
and checks that two runs of each variant give bit-identical histories and weights.

    python -m benchmarks.determinism --device cpu --write
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from benchmarks import common
from taco_lite.config import PRESETS
from taco_lite.train import train

NAME = "determinism"


def _train_once(mcfg, tcfg, datasets, words) -> tuple[list, list[torch.Tensor]]:
    with tempfile.TemporaryDirectory() as tmp:
        res = train(mcfg, dataclasses.replace(tcfg, ckpt_dir=tmp), datasets=datasets, vocab=words)
    hist = [[h[k] for k in ("loss", "L1", "L2", "L3", "fusion_acc")] for h in res.history]
    return hist, [v.detach().clone() for v in res.model.state_dict().values()]


def _same(a, b) -> bool:
    return a[0] == b[0] and all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))


def run(args: Any, device: torch.device) -> dict[str, Any]:
    steps = 2 if args.tiny else args.steps
    datasets, words, tags = common.world_datasets(("train",), 32)
    mcfg, tcfg = PRESETS[args.preset].configs()
    mcfg = dataclasses.replace(mcfg, vocab_size=len(words))
    base = dataclasses.replace(
        tcfg,
        steps=steps,
        warmup_steps=min(tcfg.warmup_steps, steps),
        device=device.type,
        amp=tcfg.amp and device.type == "cuda",
        compile=False,
        progress=False,
        ckpt_every=0,
        ckpt_minutes=0.0,
        seed=args.seed,
    )
    cfgs = {
        "deterministic=False": dataclasses.replace(base, deterministic=False),
        "deterministic=True": dataclasses.replace(base, deterministic=True),
    }
    outcomes: dict[str, list] = {k: [] for k in cfgs}

    def runner(key):
        return lambda: outcomes[key].append(_train_once(mcfg, cfgs[key], datasets, words))

    times = common.interleaved({k: runner(k) for k in cfgs}, device, repeats=args.repeats, warmup=0)
    identical = {k: all(_same(o[0], x) for x in o[1:]) for k, o in outcomes.items()}

    # the gather alone: (2B(k+1), n, d) rows out of (B, n, d), as in train/step.py
    B, k, n, d = base.batch_size, base.k_neg, mcfg.max_tokens, mcfg.d
    g = torch.Generator().manual_seed(args.seed)
    src = torch.randn(B, n, d, generator=g, device="cpu").to(device)
    idx = torch.randint(0, B, (2 * B * (k + 1),), generator=g).to(device)
    grad = torch.randn(len(idx), n, d, generator=g).to(device)

    def gather(fn):
        def go():
            for _ in range(20):
                x = src.detach().requires_grad_()
                fn(x).backward(grad)

        return go

    gather_times = common.interleaved(
        {
            "tokens[idx]": gather(lambda x: x[idx]),
            "index_select": gather(lambda x: x.index_select(0, idx)),
        },
        device,
        repeats=max(7, args.repeats),
        warmup=3,  # the first calls of either op were 10-100x slower on the shared VM
    )
    return {
        "preset": args.preset,
        "steps": steps,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "train_s": times,
        "identical": identical,
        "ratio": times["deterministic=True"] / times["deterministic=False"],
        "gather_s": {k: v / 20 for k, v in gather_times.items()},
        "gather_repeats": max(7, args.repeats),
        "gather_shape": [len(idx), n, d],
        "tags": tags,
    }


def render(res: dict[str, Any], info: dict[str, Any], cmd: str, device: torch.device) -> str:
    t = res["train_s"]
    rows = [
        [k, common.fmt_s(v), common.fmt_s(v / res["steps"]), "yes" if res["identical"][k] else "no"]
        for k, v in t.items()
    ]
    table = common.markdown_table(
        [f"train(), {res['preset']} preset, {res['steps']} steps", "time", "per step",
         f"{res['repeats']} runs bit-identical"],
        rows,
    )  # fmt: skip
    gs = res["gather_s"]
    notes = [
        f"**deterministic=True costs {common.fmt_ratio(res['ratio'])} the time of "
        f"deterministic=False** (median of {res['repeats']} interleaved runs each, "
        f"{res['threads']} threads).",
        f"the fusion gather alone, forward + backward of {tuple(res['gather_shape'])}: "
        f"`tokens[idx]` {common.fmt_s(gs['tokens[idx]'])}, `index_select` "
        f"{common.fmt_s(gs['index_select'])} "
        f"({common.fmt_ratio(gs['index_select'] / gs['tokens[idx]'])}), median of "
        f"{res['gather_repeats']} rounds of 20 after 3 warm-up rounds; only the second is "
        "deterministic with more than one CPU thread.",
        "'bit-identical' compares the loss history and every weight across the timed runs.",
    ]
    return common.section(f"Cost of determinism on {device.type}", info, cmd, table, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(NAME, "What same-seed reproducibility costs in training time.")
    p.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    args = p.parse_args(argv)
    device = common.pick_device(args.device)
    return common.run_and_report(NAME, args, argv, device, run, render)


if __name__ == "__main__":
    main()
