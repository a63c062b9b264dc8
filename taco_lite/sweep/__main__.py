"""`python -m taco_lite.sweep`: the command line of `taco_lite.sweep.run.main`, with one-line errors
for user mistakes (`taco_lite.runtime.cli_errors`; `--debug` shows the traceback)."""

from collections.abc import Sequence
from typing import Any

from taco_lite.runtime.cli_errors import run_cli
from taco_lite.sweep.run import main


def cli(argv: Sequence[str] | None = None) -> Any:
    return run_cli("python -m taco_lite.sweep", main, argv)


if __name__ == "__main__":
    cli()
