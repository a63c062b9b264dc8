"""Switches read from the environment, parsed one way everywhere.

`env_flag("TACO_FAST")` is what every notebook's parameters cell calls (`FAST = fast_mode()`):
the usual spellings of true and false are accepted (1/0, true/false, yes/no, on/off, in any
case, with spaces around), unset or empty means the default, and anything else is refused
with a message: `TACO_FAST=2` used to give full mode without a word.
"""

from __future__ import annotations

import os

TRUE = ("1", "true", "yes", "on", "y", "t")
FALSE = ("0", "false", "no", "off", "n", "f")


def parse_flag(value: str | None, name: str = "flag", default: bool = False) -> bool:
    """True / False for a usual spelling, `default` for None or blank, else ValueError."""
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(
        f"{name}={value!r} is neither true nor false: use {name}=1 (or true, yes, on) or "
        f"{name}=0 (or false, no, off)"
    )


def env_flag(name: str, default: bool = False) -> bool:
    """The environment variable `name` as a bool (see `parse_flag`)."""
    return parse_flag(os.environ.get(name), name, default)


def fast_mode() -> bool:
    """TACO_FAST: fast mode shrinks sizes only (every check still runs)."""
    return env_flag("TACO_FAST")
