"""A run folder belongs to one run: ownership, a lock, and a writability check, before step 1.

`claim_run_dir(out, resume=..., overwrite=...)` is what `python -m taco_lite.train` does before
it loads any data:

- a folder that holds another run's checkpoint (`last.pt`, `model.pt`) is refused unless the
  run continues it (`--resume`) or the user asks to replace it (`--overwrite`);
- the folder is checked writable (a probe file is created and removed), so an unwritable
  `--out` fails now, not at the first save after the training steps;
- `OUT/.lock` is taken with `fcntl.flock` (and holds the owner's pid), so a second process
  pointed at the same folder is refused at once instead of replacing the first one's files.
  The kernel drops the lock when its process dies, so a killed run leaves no stale lock: the
  pid in the file is only there to name the owner in the message.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_FILE = ".lock"
RUN_FILES = ("last.pt", "model.pt")


class RunDirError(ValueError):
    """The run folder cannot be used: another run's files, another process, or no write access."""


def check_writable(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Create `folder` if needed and prove a file can be written there; else RunDirError."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"{what} {folder} is a file, not a folder: give a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunDirError(
            f"{what} {folder} is not writable ({err.strerror or err}): choose a folder you can "
            "write to, e.g. --out runs/NAME under your home"
        ) from None
    return folder


def existing_run_files(folder: str | os.PathLike) -> list[str]:
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


class RunDirLock:
    """An exclusive `flock` on OUT/.lock for as long as the object is held (or `release()`)."""

    def __init__(self, folder: str | os.PathLike):
        import fcntl

        self._fd: int | None = None
        self.path = Path(folder) / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            self._fd = None
            raise RunDirError(
                f"{Path(folder)} is in use by another training (pid {owner}): wait for it to "
                "finish, or give this run its own --out folder"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __del__(self) -> None:  # a run that failed in-process drops its lock when collected
        self.release()

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_run_dir(
    folder: str | os.PathLike, resume: bool = False, overwrite: bool = False
) -> RunDirLock:
    """Check and lock a run folder before training; returns the held lock (see module doc)."""
    folder = check_writable(folder)
    lock = RunDirLock(folder)
    found = existing_run_files(folder)
    if found and not (resume or overwrite):
        lock.release()
        raise RunDirError(
            f"{folder} already holds a run ({', '.join(found)}): continue it with --resume, "
            "replace it with --overwrite, or choose another --out"
        )
    return lock
