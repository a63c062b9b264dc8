"""taco_lite: a teaching kit for TACo (Yang, Bisk & Gao, ICCV 2021)."""

__version__ = "0.1.0"
