"""One line per user error, on every command line (`python -m taco_lite.world`, `.train`, ...).

`run_cli(prog, main, argv)` calls `main(argv)`. A mistake the user can fix (a bad value, a
missing or damaged file, a folder that is not writable, a refused overwrite) prints one line,
`prog: error: <what was wrong and what to do>`, and exits with status 2, as argparse does for
a bad flag. Ctrl-C exits with status 130 and the line the command registered with
`on_interrupt` (training says where its last checkpoint is and how to resume). Anything else
is a real bug and keeps its full traceback. `--debug` anywhere on the command line (or
TACO_DEBUG=1) shows the traceback for every error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

DEBUG_FLAG = "--debug"


class UserError(Exception):
    """An error whose message tells the user what was wrong and what to do (no traceback)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's to fix: bad values (ValueError, which covers
    the world's WorldFileError), files (OSError: missing, a folder, no permission, disk full),
    unusable checkpoints (CheckpointError) and UserError."""
    from taco_lite.runtime.checkpoint import CheckpointError

    return (ValueError, OSError, CheckpointError, UserError)


_interrupt_hint: list[str] = []


def on_interrupt(hint: str) -> None:
    """The line to print if the user presses Ctrl-C from now on (the latest one wins)."""
    _interrupt_hint[:] = [hint]


def one_line(err: BaseException) -> str:
    """The error's message on one line (a file error keeps its file name)."""
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    return " ".join(text.split())


def run_cli(
    prog: str, main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None
) -> Any:
    """main(argv), with one-line errors for user mistakes and Ctrl-C (see the module doc)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args or os.environ.get("TACO_DEBUG", "").strip() in ("1", "true")
    args = [a for a in args if a != DEBUG_FLAG]
    _interrupt_hint.clear()
    try:
        return main(args)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = _interrupt_hint[0] if _interrupt_hint else "nothing was saved by this command"
        print(f"{prog}: interrupted (Ctrl-C): {hint}", file=sys.stderr)
        raise SystemExit(130) from None
    except user_error_types() as err:
        if debug:
            raise
        print(f"{prog}: error: {one_line(err)} ({DEBUG_FLAG} shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
