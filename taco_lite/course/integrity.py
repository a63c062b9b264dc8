"""Grade what the learner wrote: while a check runs the learner's function, the kit's own answer
to that exercise is hidden behind a sentinel that fails the check.

Why: the notebooks run inside the package, so `return token_nce(scores, w, tau)` would pass every
probe of exercise 03.2 (issue 19: 7 of 7 grade cells passed that way). `kit_hidden(name, fn)`
swaps every binding of the kit's answer (the package function, its re-exports and aliases in any
`taco_lite.*` module or class, `course.reference(name)`, and the learner's own globals) for a
sentinel while `fn` runs, then puts everything back. A call to the sentinel raises `KitAnswerUsed`
and is remembered, so a learner's `try/except` cannot hide it.

`KIT_ANSWERS` is the one registry of exercise name -> the kit's implementation(s); the checks,
`course.reference` and the integrity test all read it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["KIT_ANSWERS", "KitAnswerUsed", "kit_hidden", "kit_objects", "run_as_student"]

# exercise name -> dotted paths of the kit's own implementation (the first is "the" reference)
KIT_ANSWERS: dict[str, tuple[str, ...]] = {
    "segments_with_noun": (),
    "gold_clip_frames": (),
    "interest_mask": ("taco_lite.text.pos.interest_mask",),
    "idf_table": ("taco_lite.text.pos.idf_table",),
    "token_weights": ("taco_lite.text.pos.token_weights",),
    "video_global": ("taco_lite.model.TacoModel.global_video",),
    "sentence_nce": ("taco_lite.losses.sentence_nce",),
    "token_video_scores": ("taco_lite.losses.token_video_scores",),
    "token_nce": ("taco_lite.losses.token_nce",),
    "pair_scores": ("taco_lite.cascade.pair_scores",),
    "hard_negatives": ("taco_lite.cascade.hard_negatives",),
    "fusion_nce": ("taco_lite.losses.fusion_nce",),
    "train_step": (),
    "recall_at_k": (
        "taco_lite.metrics.retrieval_metrics",
        "taco_lite.metrics.retrieval_ranks",
        "taco_lite.metrics.rank_metrics",
        "taco_lite.metrics.retrieval_report",
    ),
    "device_step": (),
    "retrieval_ranks": ("taco_lite.metrics.retrieval_ranks",),
    "ordered_times": ("taco_lite.downstream.localize.ordered_times",),
    "softmax_over_frames": ("taco_lite.evaluate.alignment.softmax_over_frames",),
    "word_frame_block": ("taco_lite.evaluate.attention.word_frame_block",),
}


class KitAnswerUsed(RuntimeError):
    """The learner's function called the kit's own answer to the exercise it implements."""


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"cannot resolve {dotted}")


def kit_objects(name: str) -> dict[int, tuple[Any, str]]:
    """id -> (object, dotted name) of every kit implementation of exercise `name`."""
    from taco_lite.course.references import reference

    found: dict[int, tuple[Any, str]] = {}
    for dotted in KIT_ANSWERS.get(name, ()):
        obj = _resolve(dotted)
        found[id(obj)] = (obj, dotted)
    try:
        ref = reference(name)
    except ValueError:
        return found
    if id(ref) not in found:
        found[id(ref)] = (ref, f"taco_lite.course.reference({name!r})")
    return found


def _target(value: Any) -> Any:
    """The function behind a staticmethod / classmethod / partial (else the value itself)."""
    if isinstance(value, staticmethod | classmethod):
        return value.__func__
    if isinstance(value, functools.partial):
        return value.func
    return value


def _message(name: str, fn: Callable, dotted: str) -> str:
    mine = getattr(fn, "__name__", "your function")
    return (
        f"{mine} calls the kit's own answer {dotted}: this exercise asks you to write "
        f"{name} yourself (the check hides the kit's version while it runs your function). "
        "Use torch / numpy operations instead of the package's implementation"
    )


@contextmanager
def kit_hidden(name: str, fn: Callable) -> Iterator[list[str]]:
    """While the block runs, every binding of the kit's answer to `name` is a sentinel.

    Yields the list of kit names the block called (empty = it wrote its own). Bindings swapped:
    attributes of every loaded `taco_lite.*` module and of the classes they define, and the
    learner's globals (`fn.__globals__`). Everything is restored on exit.
    """
    objects = kit_objects(name)
    called: list[str] = []
    if not objects:
        yield called
        return

    def sentinel_for(dotted: str) -> Callable:
        def sentinel(*args: Any, **kwargs: Any) -> Any:
            called.append(dotted)
            raise KitAnswerUsed(_message(name, fn, dotted))

        return sentinel

    sentinels = {key: sentinel_for(dotted) for key, (_, dotted) in objects.items()}
    undo: list[Callable[[], None]] = []

    def swap(owner: Any, key: str, value: Any) -> None:
        hit = sentinels.get(id(_target(value)))
        if hit is None:
            return
        new = staticmethod(hit) if isinstance(value, staticmethod) else hit
        if isinstance(owner, dict):
            owner[key] = new
            undo.append(lambda: owner.__setitem__(key, value))
        else:
            setattr(owner, key, new)
            undo.append(lambda: setattr(owner, key, value))

    namespaces = [
        m for n, m in list(sys.modules.items()) if n == "taco_lite" or n.startswith("taco_lite.")
    ]
    try:
        for module in namespaces:
            space = vars(module)
            for key, value in list(space.items()):
                swap(space, key, value)
                if isinstance(value, type) and value.__module__ == module.__name__:
                    for attr, inner in list(vars(value).items()):
                        swap(value, attr, inner)
        learner = getattr(fn, "__globals__", None)
        if isinstance(learner, dict):
            for key, value in list(learner.items()):
                swap(learner, key, value)
        yield called
    finally:
        for restore in reversed(undo):
            restore()


def run_as_student(name: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs) with the kit's answer to `name` hidden; KitAnswerUsed if it was used.

    For grade cells that call the learner's function themselves (notebook 06's ordered
    decoder): `checks.run_as_student("ordered_times", my_ordered_times, sim)`.
    """
    if id(_target(fn)) in kit_objects(name):
        raise KitAnswerUsed(_message(name, fn, kit_objects(name)[id(_target(fn))][1]))
    with kit_hidden(name, fn) as called:
        try:
            out = fn(*args, **kwargs)
        except KitAnswerUsed:
            raise
        except Exception:
            if called:
                raise KitAnswerUsed(_message(name, fn, called[0])) from None
            raise
    if called:
        raise KitAnswerUsed(_message(name, fn, called[0]))
    return out
