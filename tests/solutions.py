"""The instructor notebooks' own solutions, as functions: what a learner who got it right wrote.

`solution("03", "my_token_nce")` executes the exercise cells of notebooks/03_*.ipynb (solutions
in place) in a fresh namespace with the notebooks' usual imports and returns the function. The
checks must pass these and fail the kit's own functions (course/integrity.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from taco_lite import course


@functools.cache
def _namespace(prefix: str) -> dict:
    from taco_lite.text.pos import IDF_FLOOR
    from taco_lite.train.step import taco_step

    (path,) = [p for p in course.lesson_notebooks() if p.name.startswith(prefix + "_")]
    ns: dict = {"torch": torch, "F": F, "np": np, "math": math, "IDF_FLOOR": IDF_FLOOR,
                "taco_step": taco_step, "__name__": f"solution_{prefix}"}  # fmt: skip
    for cell in course.read_notebook(path).cells:
        if cell.cell_type == "code" and course.cell_role(cell) == "exercise":
            exec(compile(cell.source, f"{path.name}", "exec"), ns)
    return ns


def solution(prefix: str, name: str):
    """The function `name` defined by the exercise cells of notebook `prefix` ("02")."""
    return _namespace(prefix)[name]
