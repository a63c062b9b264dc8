"""Save and load a world: `world.json.gz` (the scene script) + `manifest.json` (checksums).

Only the script is stored; frames are re-rendered bit-exactly from it at load time, which
keeps data/ small. Every way a learner can end up with a broken file (missing, truncated,
not gzip, not JSON, edited, from another kit version) raises an error that names the file
and the command that regenerates it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any

from .types import FORMAT_VERSION, REGENERATE, SPLITS, World

SCRIPT_FILE = "world.json.gz"
MANIFEST_FILE = "manifest.json"


class WorldFileError(ValueError):
    """A world file exists but cannot be used (corrupt, edited or from another version)."""


def default_world_path() -> Path:
    """`$TACO_LITE_DATA` if set (the world folder itself, or a data folder holding `world/`),
    else `<repo>/data/world` found from this file's location."""
    env = os.environ.get("TACO_LITE_DATA")
    if env:
        p = Path(env).expanduser()
        return p if (p / MANIFEST_FILE).exists() or not (p / "world").is_dir() else p / "world"
    return Path(__file__).resolve().parents[2] / "data" / "world"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# The command-line knobs of `python -m taco_lite.world`, as (WorldConfig field, flag).
CLI_KNOBS = (
    ("num_clips", "--num-clips"),
    ("num_distractors", "--num-distractors"),
    ("distractor_action_prob", "--distractor-action-prob"),
    ("noise", "--noise"),
    ("twin_frac", "--twin-frac"),
)


def regenerate_command(config: Any, out: str | os.PathLike) -> str:
    """The command that makes this world again: its seed, every knob that is not the default,
    and the folder (e.g. `python -m taco_lite.world --seed 3 --num-clips 200 --out /tmp/w`)."""
    default = type(config)()
    knobs = [
        f"{flag} {getattr(config, name)}"
        for name, flag in CLI_KNOBS
        if getattr(config, name) != getattr(default, name)
    ]
    return " ".join(["python -m taco_lite.world", f"--seed {config.seed}", *knobs, f"--out {out}"])


def _fix(path: Path) -> str:
    """How to regenerate the world folder that holds `path` (the folder actually read, e.g. one
    named by $TACO_LITE_DATA, not always data/world), with the knobs its manifest records."""
    folder = Path(path).parent
    recorded = None
    try:
        recorded = json.loads((folder / MANIFEST_FILE).read_text()).get("regenerate")
    except (OSError, ValueError, AttributeError):
        pass
    exists = (folder / SCRIPT_FILE).exists() or (folder / MANIFEST_FILE).exists()
    again = " --overwrite" if exists else ""  # the world command never replaces files unasked
    repo_default = Path(__file__).resolve().parents[2] / "data" / "world"
    if folder.resolve() == repo_default:
        return f"regenerate it with `{recorded or REGENERATE}{again}` (from the repository root)"
    knobs = (recorded or REGENERATE).split(" --out ")[0]  # the knobs it was made with
    command = f"{knobs} --out {folder}"
    return f"regenerate it with `{command}{again}`"


def _shown(folder: Path) -> str:
    """data/world for the repository's own world folder (as REGENERATE says), else the path."""
    repo_default = Path(__file__).resolve().parents[2] / "data" / "world"
    return "data/world" if Path(folder).resolve() == repo_default else str(folder)


def save_world(world: World, path: str | os.PathLike, frames_sha256: bool = True) -> Path:
    """Write `world.json.gz` and `manifest.json` into the folder `path` (created if needed).

    The gzip header carries no timestamp, so the same world always gives the same bytes.
    `frames_sha256=True` renders every frame once to store their checksum (a few seconds).
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(world.script, separators=(",", ":")).encode()
    script_path = out / SCRIPT_FILE
    tmp = script_path.with_suffix(".tmp")
    with open(tmp, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    os.replace(tmp, script_path)
    manifest = {
        "format_version": world.version,
        "seed": world.config.seed,
        "counts": {
            "clips": len(world.clips),
            "segments": len(world.segments),
            "frames": sum(c.num_frames for c in world.clips),
            **{f"segments_{s}": len(world.split(s)) for s in SPLITS},
        },
        "files": {
            SCRIPT_FILE: {"sha256": _sha256(script_path), "bytes": script_path.stat().st_size}
        },
        "frames_sha256": world.frames_sha256() if frames_sha256 else None,
        "config": world.config.to_dict(),
        "regenerate": regenerate_command(world.config, _shown(out)),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def read_manifest(path: str | os.PathLike | None = None) -> dict:
    """The manifest of the world folder `path` (default: `default_world_path()`)."""
    folder = Path(path) if path is not None else default_world_path()
    mpath = folder / MANIFEST_FILE
    if not mpath.is_file():
        raise FileNotFoundError(
            f"no world manifest at {mpath}: the world has not been generated there; {_fix(mpath)}"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorldFileError(f"{mpath} is not valid JSON ({e}); {_fix(mpath)}") from e
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise WorldFileError(f"{mpath} has no format_version: not a taco_lite world; {_fix(mpath)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise WorldFileError(
            f"{mpath} has format version {manifest['format_version']!r} but this taco_lite reads "
            f"version {FORMAT_VERSION}; {_fix(mpath)}"
        )
    return manifest


def load_world(
    path: str | os.PathLike | None = None, verify: bool = True, verify_frames: bool = False
) -> World:
    """Load the world in folder `path` (default: `default_world_path()`).

    verify: check the script's sha256 against the manifest (cheap, on by default).
    verify_frames: also render every frame and check the frames' sha256 (a few seconds).
    """
    folder = Path(path) if path is not None else default_world_path()
    if folder.is_file():  # accept the script file itself
        folder = folder.parent
    spath = folder / SCRIPT_FILE
    if not spath.is_file():
        raise FileNotFoundError(f"no world file at {spath}; {_fix(spath)}")
    manifest = read_manifest(folder) if (verify or verify_frames) else None
    if manifest is not None:
        want = manifest.get("files", {}).get(SCRIPT_FILE, {}).get("sha256")
        got = _sha256(spath)
        if want != got:
            raise WorldFileError(
                f"{spath} does not match its manifest (sha256 {got[:12]}... expected "
                f"{str(want)[:12]}...): the file was changed or damaged; {_fix(spath)}"
            )
    try:
        with gzip.open(spath, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise WorldFileError(f"{spath} is not a readable gzip file ({e}); {_fix(spath)}") from e
    try:
        script = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorldFileError(f"{spath} does not hold valid JSON ({e}); {_fix(spath)}") from e
    if not isinstance(script, dict) or script.get("format_version") != FORMAT_VERSION:
        got_v = script.get("format_version") if isinstance(script, dict) else None
        raise WorldFileError(
            f"{spath} has format version {got_v!r} but this taco_lite reads version "
            f"{FORMAT_VERSION}; {_fix(spath)}"
        )
    try:
        world = World(script)
    except (KeyError, TypeError, ValueError) as e:
        raise WorldFileError(f"{spath} is missing parts of a world ({e!r}); {_fix(spath)}") from e
    if verify_frames:
        want = manifest.get("frames_sha256") if manifest else None
        got = world.frames_sha256()
        if want != got:
            raise WorldFileError(
                f"frames rendered from {spath} do not match the manifest's frames_sha256 "
                f"({got[:12]}... vs {str(want)[:12]}...): the renderer changed; {_fix(spath)}"
            )
    return world
