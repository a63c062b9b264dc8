"""Temporary files for atomic writes, one per process: `.NAME.<pid>.<hex>.tmp` next to NAME.

A writer creates its file, fills it and `os.replace`s it over NAME. A file left by a killed
writer is stale and removed by the next save; a file whose process still runs is never touched,
so two processes saving into one folder cannot delete each other's file in flight.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def create_temp_file(path: Path) -> str:
    """A new empty file next to `path`, named for this process (`.NAME.<pid>.<hex>.tmp`), mode
    0666 minus the umask (mkstemp would give 0600)."""
    for _ in range(100):
        tmp = path.parent / f"{_temp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return str(tmp)
    raise OSError(f"could not create a temporary file next to {path}")


def _writer_alive(tmp: Path, prefix: str) -> bool:
    """Whether the process named in a temporary file's name still runs (never this one's)."""
    pid_text = tmp.name[len(prefix) :].split(".")[0]
    if not pid_text.isdigit() or len(tmp.name[len(prefix) :].split(".")) < 3:
        return False  # an older kit's `.NAME.<hex>.tmp`: its writer is gone
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete `.NAME.*.tmp` files that a writer of `path` killed mid-save left behind: this
    process's own and those of processes that no longer run, never a live process's file."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = _temp_prefix(path)
    stale = [t for t in sorted(path.parent.glob(f"{prefix}*.tmp")) if not _writer_alive(t, prefix)]
    for tmp in stale:
        try:
            tmp.unlink()
        except FileNotFoundError:  # another cleaner got there first
            pass
    return stale
