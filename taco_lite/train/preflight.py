"""What `python -m taco_lite.train` checks before the first step, so that nothing fails (or is
lost) after the training time was spent:

- the device string names a device this machine has (`--device cuda:abc` is refused now);
- `--features`: every split exists and has the train split's feature width D;
- the run folder is writable, locked for this process, and holds no other run's checkpoint
  unless the run continues it (`--resume`) or replaces it (`--overwrite`; runtime.rundir);
- a resumed run keeps its preset (`kept_preset`); another one named with --preset is refused.

`claim_and_check` also returns what every checkpoint of the run records (`train(record=...)`):
its preset and the fingerprint of its data (runtime.provenance).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from taco_lite.runtime.cli_errors import on_interrupt
from taco_lite.runtime.rundir import RUN_FILES, RunDirLock, claim_run_dir

RESULT_FILES = (*RUN_FILES, "result.json", "history.json")


def kept_preset(args: argparse.Namespace) -> dict[str, Any] | None:
    """Set `args.preset` for a resumed run from its checkpoint (refusing a different one given
    with --preset); returns the loaded checkpoint, or None when not resuming."""
    if args.resume is None:
        return None
    from taco_lite.runtime.checkpoint import load_checkpoint
    from taco_lite.train.cli import resume_path

    path = resume_path(args)
    state = load_checkpoint(path)
    saved = (state.get("extra") or {}).get("preset")
    if args.preset is not None and saved is not None and args.preset != saved:
        raise ValueError(
            f"cannot resume {path} with --preset {args.preset}: the run was started with "
            f"--preset {saved}. Resume with --preset {saved} (or without --preset), or start a "
            "new run in another --out folder"
        )
    args.preset = args.preset or saved or "fast"
    return state


def claim_and_check(
    args: argparse.Namespace, model_cfg: Any, train_cfg: Any, resume: Path | None
) -> tuple[RunDirLock, dict[str, Any]]:
    """The checks of the module doc; returns (the run folder's lock, the run's record)."""
    from taco_lite.data.sources import check_feature_splits, parse_data_spec
    from taco_lite.runtime.device import resolve_device
    from taco_lite.runtime.provenance import data_record

    resolve_device(train_cfg.device)
    kind, path = parse_data_spec(train_cfg.data)
    if kind == "features":
        check_feature_splits(path, ("train", "test"), model_cfg.feature_dim)
    record = {"preset": args.preset, "data": data_record(train_cfg.data)}
    out = Path(train_cfg.ckpt_dir)
    lock = claim_run_dir(out, resume=resume is not None, overwrite=args.overwrite)
    if args.overwrite and resume is None:  # asked for explicitly: the old run goes now
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
    on_interrupt(
        f"the last checkpoint (written every {train_cfg.ckpt_every or '-'} steps and every "
        f"{train_cfg.ckpt_minutes:g} minutes) is {out / 'last.pt'} if one was written yet; "
        "continue with the same command plus --resume"
    )
    return lock, record
