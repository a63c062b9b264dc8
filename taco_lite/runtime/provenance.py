"""Which data a checkpoint was trained on, by content: the world's or the features' fingerprint.

A checkpoint's `train_cfg.data` names a path ("" = the shipped world), and a path can come to
hold other data: `python -m taco_lite.world` run over data/world, TACO_LITE_DATA pointing
elsewhere, a regenerated folder. So training also records `extra["data"]`:

    {"fingerprint": "world:<sha256 of world.json.gz>" | "features:<sha256 of the split files>",
     "regenerate": "<the command that makes that world>"}

The world's fingerprint is the script's sha256 that its manifest.json already stores.
`check_same_data` is what `evaluate`, the explorer and `downstream` call before scoring: a
mismatch is refused with a message, or only warned about when the user named the data on
purpose (`--world`, `--features`). Checkpoints written before fingerprints existed (the shipped
data/checkpoints/*.pt) carry none: one trained on the shipped world (data "") is compared with
the shipped world's fingerprint, pinned below; any other is accepted on its recorded path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

# sha256 of the shipped world.json.gz of data/world (its manifest.json), what the shipped
# checkpoints and every pre-fingerprint checkpoint with data "" were trained on.
SHIPPED_WORLD_SHA256 = "a8bea69270aa8675e430195fa68eae930a98cd8b8b86ffe7ccc3462dce938422"
FEATURE_FILES = ("segments.json", "meta.json")


class DataMismatchError(ValueError):
    """The data at hand is not the data the checkpoint was trained on."""


def data_record(spec: str) -> dict[str, Any]:
    """{"fingerprint", "regenerate"} of `TrainConfig.data` (see module doc), to store."""
    from taco_lite.data.sources import parse_data_spec

    kind, path = parse_data_spec(spec)
    if kind == "features":
        return {"fingerprint": features_fingerprint(path), "regenerate": None}
    from taco_lite.world.io import read_manifest

    manifest = read_manifest(path)
    return {
        "fingerprint": world_fingerprint(manifest),
        "regenerate": manifest.get("regenerate"),
    }


def world_fingerprint(manifest: dict[str, Any]) -> str:
    from taco_lite.world.io import SCRIPT_FILE

    sha = manifest.get("files", {}).get(SCRIPT_FILE, {}).get("sha256")
    return f"world:{sha}"


def features_fingerprint(root: str | Path) -> str:
    """sha256 over every split folder's segments.json and meta.json (names and bytes)."""
    h = hashlib.sha256()
    root = Path(root)
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in FEATURE_FILES:
            f = split_dir / name
            if f.is_file():
                h.update(f"{split_dir.name}/{name}|".encode())
                h.update(f.read_bytes())
    return f"features:{h.hexdigest()}"


def normalized_spec(spec: str) -> str:
    """`TrainConfig.data` with its path resolved (older checkpoints stored it as typed)."""
    from taco_lite.data.sources import data_spec, parse_data_spec

    kind, path = parse_data_spec(spec or "")
    if path is None:
        return ""
    return data_spec(**{kind: str(path)})


def recorded_fingerprint(extra: dict[str, Any] | None, train_data: str) -> str | None:
    """The checkpoint's fingerprint; for a pre-fingerprint one trained on the shipped world
    (data ""), the shipped world's; else None (nothing to compare)."""
    record = (extra or {}).get("data") or {}
    if record.get("fingerprint"):
        return str(record["fingerprint"])
    if not train_data:
        return f"world:{SHIPPED_WORLD_SHA256}"
    return None


def check_same_data(
    extra: dict[str, Any] | None,
    train_data: str,
    spec_here: str,
    explicit: bool,
    where: str = "the checkpoint",
) -> str | None:
    """None if the data at `spec_here` is what the checkpoint was trained on (or it cannot
    tell); else DataMismatchError, or with `explicit=True` (the user named this data on
    purpose) the text of a warning for the caller to show."""
    want = recorded_fingerprint(extra, train_data)
    if want is None:
        return None
    got = data_record(spec_here)["fingerprint"]
    if got == want:
        return None
    record = (extra or {}).get("data") or {}
    hint = record.get("regenerate") or (
        "python -m taco_lite.world --seed 0 --out data/world --overwrite"
        if not train_data
        else None
    )
    here = spec_here.partition(":")[2] or "the shipped world"
    text = (
        f"{where} was trained on {want.partition(':')[0]} {want.partition(':')[2][:12]}... but "
        f"{here} holds {got.partition(':')[0]} {got.partition(':')[2][:12]}...: the data changed "
        "since training (regenerated or overwritten?)"
    )
    if explicit:
        return text + "; scoring on it as you asked"
    fix = f"restore it (`{hint}`), " if hint else "restore that data, "
    raise DataMismatchError(
        f"{text}. {fix}or name the data on purpose with --world PATH / --features PATH"
    )
