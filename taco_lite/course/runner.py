"""Run notebooks top to bottom with nbclient, and read which cells raised.

Fast mode: `fast=True` sets `TACO_FAST=1` for the kernel, which shrinks sizes inside the
notebooks.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taco_lite.course.notebooks import (
    cell_role,
    lesson_notebooks,
    notebooks_dir,
    read_notebook,
    write_notebook,
)

__all__ = ["CellError", "execute_notebook", "error_cells", "execute", "record_times", "TIMES_FILE"]

TIMES_FILE = "notebooks/run_times.json"  # written by `course execute --times`, read by the docs' tests


@dataclass
class CellError:
    """One cell that raised during execution."""

    index: int
    role: str  # cell_role of the cell
    ename: str  # exception class name, e.g. "NotImplementedError"
    evalue: str
    grade_id: str | None

    def __str__(self) -> str:
        where = f"cell {self.index} ({self.role}{', ' + self.grade_id if self.grade_id else ''})"
        return f"{where}: {self.ename}: {self.evalue[:300]}"


def kernel_env(fast: bool | None) -> dict[str, str]:
    env = dict(os.environ)
    if fast is not None:
        env["TACO_FAST"] = "1" if fast else "0"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def execute_notebook(
    path_or_nb: str | os.PathLike | Any,
    timeout: int = 600,
    allow_errors: bool = False,
    fast: bool | None = None,
    cwd: str | os.PathLike | None = None,
) -> Any:
    """Run a notebook top to bottom with nbclient, one cell after the other; returns it executed.

    timeout: seconds per cell. allow_errors=True records a cell's error in its outputs and goes
    on with the next cell (use `error_cells` to read them); False stops at the first error
    (`nbclient.exceptions.CellExecutionError`). fast: sets TACO_FAST for the kernel (None keeps
    the environment's). cwd: the kernel's working directory (default: the notebook's folder).
    """
    from nbclient import NotebookClient

    if isinstance(path_or_nb, str | os.PathLike):
        path = Path(path_or_nb)
        nb = read_notebook(path)
        cwd = cwd if cwd is not None else path.parent
    else:
        nb = copy.deepcopy(path_or_nb)
        cwd = cwd if cwd is not None else notebooks_dir()
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=allow_errors,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    with _environment(kernel_env(fast)):
        client.execute()
    return nb


class _environment:
    """Temporarily replace os.environ (the kernel inherits the parent's environment)."""

    def __init__(self, env: Mapping[str, str]):
        self.env, self.saved = dict(env), None

    def __enter__(self) -> None:
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self.saved or {})


def error_cells(nb: Any) -> list[CellError]:
    """Every code cell whose outputs hold an error, with its role and exception name."""
    found = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                found.append(CellError(k, cell_role(cell), out["ename"], out["evalue"], grade_id))
    return found


def execute(
    out: str | os.PathLike,
    notebooks: Iterable[Path] | None = None,
    fast: bool | None = None,
    timeout: int = 900,
) -> dict[str, float]:
    """Executed copies of the lesson notebooks in `out` (for browsing); returns seconds per file."""
    out = Path(out)
    seconds = {}
    for path in notebooks if notebooks is not None else lesson_notebooks():
        t0 = time.perf_counter()
        nb = execute_notebook(path, timeout=timeout, allow_errors=True, fast=fast)
        seconds[Path(path).name] = time.perf_counter() - t0
        write_notebook(nb, out / Path(path).name)
        errors = error_cells(nb)
        status = "ok" if not errors else f"{len(errors)} error(s): {errors[0]}"
        print(f"{Path(path).name}: {seconds[Path(path).name]:.0f} s, {status}", flush=True)
    return seconds


def record_times(seconds: Mapping[str, float], fast: bool, path: str | os.PathLike) -> Path:
    """Merge one `execute` run's wall seconds per notebook into the JSON at `path`.

    {"fast": {"00_....ipynb": seconds, ...}, "full": {...}, "how": {"fast": "...", ...}}: the
    notebooks' README and docs/instructors.md quote these numbers, and a test keeps them equal.
    """
    import json
    import platform
    from datetime import datetime, timezone

    path = Path(path)
    data = json.loads(path.read_text()) if path.is_file() else {}
    mode = "fast" if fast else "full"
    data.setdefault(mode, {}).update({k: round(v, 1) for k, v in sorted(seconds.items())})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    data.setdefault("how", {})[mode] = (
        f"python -m taco_lite.course execute{' --fast' if fast else ''} --times {TIMES_FILE}; "
        f"wall seconds per notebook with nbclient, kernel start included; {os.cpu_count()} CPU "
        f"cores ({platform.machine()}), load average {load:.1f} at the end, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path
