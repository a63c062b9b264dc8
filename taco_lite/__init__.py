"""taco_lite: a teaching kit for TACo (Yang, Bisk & Gao, ICCV 2021)."""

__version__ = "0.1.0"

from pathlib import Path


def repo_root() -> Path:
    """The folder that holds `taco_lite/`, `notebooks/`, `data/` and `docs/` (an editable install)."""
    return Path(__file__).resolve().parent.parent
