"""The rows of the paper's Tables 3 and 4 (plus "all tokens"), as the sweep trains them.

See `taco_lite.sweep.run` for the table of rows and the score each one is ranked by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    name: str  # as printed in the tables
    tables: str  # which of the paper's tables it belongs to
    losses: str
    negatives: str = "cascade"
    pos_tags: str = "noun+verb"
    paper_r1: str = ""  # YouCook2 R@1 from docs/method.md §7, for the side-by-side

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


ROWS: tuple[Row, ...] = (
    Row("L1", "3", "L1", paper_r1="14.1"),
    Row("L3", "3", "L3", negatives="random", paper_r1="13.3"),
    Row("L1+L3 random", "3", "L1+L3", negatives="random", paper_r1="13.9"),
    Row("L1+L3 cascade", "3, 4 (none)", "L1+L3", pos_tags="none", paper_r1="15.0"),
    Row("L1+L2+L3 cascade det+adp", "4", "L1+L2+L3", pos_tags="det+adp", paper_r1="14.7"),
    Row("L1+L2+L3 cascade noun", "4", "L1+L2+L3", pos_tags="noun", paper_r1="15.4"),
    Row("L1+L2+L3 cascade verb", "4", "L1+L2+L3", pos_tags="verb", paper_r1="15.3"),
    Row("L1+L2+L3 cascade noun+verb", "3, 4", "L1+L2+L3", paper_r1="15.8"),
    Row("L1+L2+L3 cascade all tokens", "beyond the paper", "L1+L2+L3", pos_tags="all"),
)
ROWS_BY_SLUG = {row.slug: row for row in ROWS}
