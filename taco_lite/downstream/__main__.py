"""`python -m taco_lite.downstream`: the command line of `taco_lite.downstream.cli.main`, with one-line errors
for user mistakes (`taco_lite.runtime.cli_errors`; `--debug` shows the traceback)."""

from collections.abc import Sequence
from typing import Any

from taco_lite.downstream.cli import main
from taco_lite.runtime.cli_errors import run_cli


def cli(argv: Sequence[str] | None = None) -> Any:
    return run_cli("python -m taco_lite.downstream", main, argv)


if __name__ == "__main__":
    cli()
