"""Measured costs of TACo's design choices (issue 7); see benchmarks/README.md.

Run from the repository root, e.g. `python -m benchmarks.token_loss --device cpu --write`.
"""
