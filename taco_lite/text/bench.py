"""Time spaCy tagging with and without the caches: `python -m taco_lite.text.pos --bench`.

data/README.md documents the command and the figures it gave.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from taco_lite.text.tagging import clear_tag_cache, load_nlp, pipeline_key, tag_captions


def _bench_captions(num: int, seed: int = 0) -> list[str]:
    """`num` distinct captions in the style of the toy world (no world needed)."""
    import random

    rng = random.Random(seed)
    colors = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
    nouns = ["ball", "cube", "cup", "box", "ring", "star", "block", "plate", "bowl", "stick"]
    verbs = ["spins", "rolls", "jumps", "slides", "falls", "shakes", "grows", "shrinks"]
    mods = ["", " slowly", " quickly", " to the left", " onto the table", " twice"]
    out: set[str] = set()
    while len(out) < num:
        c, n, v, m = rng.choice(colors), rng.choice(nouns), rng.choice(verbs), rng.choice(mods)
        lead = rng.choice(["The", "A", "Then the", "Next, the"])
        out.add(f"{lead} {c} {n} {v}{m} {rng.randint(0, 10**6)} times.")
    return sorted(out)


def bench(num: int = 3000, cache_path: str | None = None) -> dict[str, float]:
    """Seconds to load the pipeline and tag `num` captions: cold, warm (memory), warm (disk)."""
    import time

    captions = _bench_captions(num)
    t0 = time.perf_counter()
    nlp = load_nlp()
    t_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(cache_path or Path(tmp) / "tags.json")
        path.unlink(missing_ok=True)
        clear_tag_cache()
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_mem = time.perf_counter() - t0
        clear_tag_cache()
        t0 = time.perf_counter()
        tag_captions(captions, nlp=nlp, cache_path=path)
        t_disk = time.perf_counter() - t0
    return {"load_s": t_load, "cold_s": t_cold, "warm_memory_s": t_mem, "warm_disk_s": t_disk}


def bench_parser_cost(num: int = 3000, rounds: int = 3) -> dict[str, float]:
    """Median seconds to tag `num` captions (no cache) with the kit's pipeline (parser kept)
    and with the parser also left out, in alternating rounds of one process."""
    import statistics
    import time

    import spacy

    captions = _bench_captions(num)
    kit = load_nlp()
    name = f"{kit.meta['lang']}_{kit.meta['name']}"
    no_parser = spacy.load(name, exclude=["parser", *kit.disabled, "ner", "lemmatizer"])
    times: dict[str, list[float]] = {"kit (parser kept)": [], "parser also left out": []}
    for r in range(rounds):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for key in order:
            nlp = kit if key.startswith("kit") else no_parser
            t0 = time.perf_counter()
            list(nlp.pipe(captions, batch_size=256))
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="taco_lite.text.pos utilities")
    ap.add_argument("--bench", action="store_true", help="time tagging of --num captions")
    ap.add_argument("--num", type=int, default=3000)
    ap.add_argument(
        "--parser-cost",
        action="store_true",
        help="time --num captions with the kit's pipeline and with the parser left out too",
    )
    args = ap.parse_args(argv)
    if args.parser_cost:
        print(f"pipeline {pipeline_key(load_nlp())}, {args.num} distinct captions, median of 3")
        res = bench_parser_cost(args.num)
        for k, v in res.items():
            print(f"  {k:>22}: {v:.3f} s")
        print(f"  {'ratio':>22}: {res['kit (parser kept)'] / res['parser also left out']:.2f}x")
    elif args.bench:
        res = bench(args.num)
        print(f"pipeline {pipeline_key(load_nlp())}, {args.num} distinct captions")
        for k, v in res.items():
            print(f"  {k:>14}: {v:.3f} s")
    else:
        ap.print_help()
