"""Generate a world and write it to disk.

python -m taco_lite.world --seed 0 --num-clips 400 --out runs/world_small

The default folder is runs/world, never the shipped data/world; a folder that already holds a
world is replaced only with --overwrite (`--seed 0 --out data/world --overwrite` rebuilds the
shipped one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .generate import generate_world
from .io import MANIFEST_FILE, SCRIPT_FILE, default_world_path, save_world
from .types import SPLITS, WorldConfig


def main(argv: list[str] | None = None) -> None:
    d = WorldConfig()
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.world", description=__doc__.splitlines()[0]
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default="runs/world", help="output folder (default: runs/world)")
    p.add_argument("--overwrite", action="store_true", help="replace the world already in --out")
    p.add_argument("--num-clips", type=int, default=d.num_clips)
    p.add_argument("--num-distractors", type=int, default=d.num_distractors)
    p.add_argument("--distractor-action-prob", type=float, default=d.distractor_action_prob)
    p.add_argument("--noise", type=int, default=d.noise)
    p.add_argument("--twin-frac", type=float, default=d.twin_frac)
    args = p.parse_args(argv)
    out_dir = Path(args.out).expanduser().resolve()
    held = [n for n in (SCRIPT_FILE, MANIFEST_FILE) if (out_dir / n).exists()]
    if held and not args.overwrite:
        shipped = out_dir == default_world_path().resolve()
        p.error(
            f"--out {args.out} already holds {'the shipped' if shipped else 'a'} world "
            f"({', '.join(held)}); nothing written. Choose another --out, or add --overwrite "
            "to replace it"
            + (" (evaluating the shipped checkpoints needs the shipped world)" if shipped else "")
        )
    if out_dir.exists() and not out_dir.is_dir():
        p.error(f"--out {args.out} is a file, not a folder: give a folder path")
    cfg = WorldConfig(
        seed=args.seed,
        num_clips=args.num_clips,
        num_distractors=args.num_distractors,
        distractor_action_prob=args.distractor_action_prob,
        noise=args.noise,
        twin_frac=args.twin_frac,
    )
    if args.num_clips < 1:
        p.error(f"--num-clips is {args.num_clips} but a world needs clips: try {d.num_clips}")
    t0 = time.perf_counter()
    world = generate_world(cfg)
    empty = [s for s in SPLITS if len(world.split(s)) == 0]
    if empty:  # training, evaluation or the notebooks would fail later, far from the cause
        p.error(
            f"--num-clips {args.num_clips} leaves split(s) {', '.join(empty)} without a single "
            f"segment, an unusable world (nothing written): use more clips, e.g. the "
            f"default {d.num_clips}"
        )
    t1 = time.perf_counter()
    world.render_all()
    t2 = time.perf_counter()
    out = save_world(world, out_dir)
    t3 = time.perf_counter()
    print(world)
    print(
        f"scenes {t1 - t0:.2f} s, rendering all frames {t2 - t1:.2f} s, "
        f"generation total {t2 - t0:.2f} s, saving {t3 - t2:.2f} s"
    )
    print("segments per split: " + ", ".join(f"{s} {len(world.split(s))}" for s in SPLITS))
    for name in (SCRIPT_FILE, MANIFEST_FILE):
        print(f"wrote {Path(out) / name} ({(Path(out) / name).stat().st_size:,} bytes)")


def cli(argv: list[str] | None = None) -> None:
    """main() with one-line errors for user mistakes (the world layer imports nothing of ours,
    so this mirrors `taco_lite.runtime.cli_errors.run_cli`; --debug shows the traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("TACO_DEBUG", "").strip() in ("1", "true")
    args = [a for a in args if a != "--debug"]
    try:
        main(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("python -m taco_lite.world: interrupted (Ctrl-C): no world written", file=sys.stderr)
        raise SystemExit(130) from None
    except (ValueError, OSError) as err:
        if debug:
            raise
        text = " ".join(str(err).split())
        print(f"python -m taco_lite.world: error: {text} (--debug shows the traceback)",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None


if __name__ == "__main__":
    cli()
