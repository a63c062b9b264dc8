"""Release, execute and autograde the graded notebooks with nbgrader (instructor tooling).

    python -m taco_lite.course release --out build/student     # student versions
    python -m taco_lite.course execute --out notebooks/executed  # executed copies to browse
    python -m taco_lite.course autograde [--keep DIR]            # solutions vs untouched copies
    python -m taco_lite.course feedback DIR [--student S]        # nbgrader's HTML feedback
    python -m taco_lite.course points                            # docs/instructors.md's table

Why: student versions are *generated*, never kept by hand (nbgrader's rule), so that the
solution and the stub can never drift apart. Release runs nbgrader's own preprocessors
(ClearSolutions, ClearHiddenTests, ClearOutput) through nbconvert (`student.py`); autograde runs
the real `nbgrader generate_assignment` + `nbgrader autograde` in a throw-away course directory
(`grading.py`); execute runs each notebook with nbclient (`runner.py`).

Every `notebooks/[0-9][0-9]_*.ipynb` is picked up automatically (06 and 07 included once they
exist). Each notebook is its own nbgrader assignment, named after the file's stem.
Fast mode: `TACO_FAST=1` in the environment shrinks sizes inside the notebooks; `--fast`
sets it for the kernels started here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco_lite.course.grading import autograde, feedback
from taco_lite.course.notebooks import lesson_notebooks, read_notebook
from taco_lite.course.runner import TIMES_FILE, execute, record_times
from taco_lite.course.student import release

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.course", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="write student versions (nbgrader preprocessors)")
    r.add_argument("--out", default="build/student")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier student release")
    e = sub.add_parser("execute", help="write executed copies for browsing")
    e.add_argument("--out", default="notebooks/executed")
    e.add_argument("--fast", action="store_true", help="TACO_FAST=1 for the kernels")
    e.add_argument("--times", help=f"merge the wall seconds per notebook into this JSON (the docs "
                                   f"quote {TIMES_FILE})")  # fmt: skip
    a = sub.add_parser("autograde", help="nbgrader autograde: solutions and untouched releases")
    a.add_argument("--fast", action="store_true", help="TACO_FAST=1 for the kernels")
    a.add_argument("--keep", help="keep the course directory here instead of a temporary one")
    for q in (r, e, a):
        q.add_argument(
            "notebooks", nargs="*", help="notebooks (default: every notebooks/NN_*.ipynb)"
        )
    sub.add_parser("points", help="the points / questions / run-time table of docs/instructors.md")
    f = sub.add_parser("feedback", help="nbgrader generate_feedback in an autograded course dir")
    f.add_argument("course", help="the course directory (e.g. autograde --keep DIR)")
    f.add_argument("assignments", nargs="*", help="assignments, e.g. 03_token_nce (default: all)")
    f.add_argument("--student", help="one student id (default: every student)")
    return p


def main(argv: Sequence[str] | None = None) -> Any:
    args = build_parser().parse_args(argv)
    chosen = [Path(n) for n in getattr(args, "notebooks", [])] or None
    if args.command == "release":
        written = release(args.out, chosen, overwrite=args.overwrite)
        for w in written:
            print(w)
        return written
    if args.command == "points":
        from taco_lite.course.syllabus import points_table

        table = points_table()
        print(table)
        return table
    if args.command == "feedback":
        written = feedback(args.course, args.assignments or None, args.student)
        for w in written:
            print(w)
        return written
    if args.command == "execute":
        seconds = execute(args.out, chosen, fast=True if args.fast else None)
        if args.times:
            print("wrote", record_times(seconds, fast=args.fast, path=args.times))
        return seconds
    nbs = chosen or lesson_notebooks()
    solutions = {p.name: read_notebook(p) for p in nbs}
    results = autograde(
        {"solution": solutions, "untouched": None},
        nbs,
        workdir=args.keep,
        fast=True if args.fast else None,
    )
    for res in results:
        print(res)
        print(res.breakdown())
    return results
