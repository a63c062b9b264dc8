"""The paper's Tables 3 and 4 in miniature: every ablation row x seeds, into docs/results.md.

`python -m taco_lite.sweep` is the command line."""

from taco_lite.sweep.rows import ROWS, ROWS_BY_SLUG, Row
from taco_lite.sweep.run import build_parser, collect, main, run_one, run_sweep
from taco_lite.sweep.tables import format_table, machine, write_section

__all__ = [
    "Row",
    "ROWS",
    "ROWS_BY_SLUG",
    "run_one",
    "run_sweep",
    "collect",
    "machine",
    "format_table",
    "write_section",
    "build_parser",
    "main",
]
