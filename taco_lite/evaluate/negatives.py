"""What cascade negatives share with their anchor, measured on the shipped checkpoint.

Notebook 04 asks whether the cascade's hard negatives (paper Sec. 3.3, docs/method.md §4) share
more nouns and verbs with the anchor's caption than random negatives do. In fast mode its model
is trained for seconds on a tiny world, so one batch cannot show it; this command measures it
once on the shipped TACo checkpoint, over every full batch of the test split, the way the
notebook's full mode does (batch B = 32, K' = 8, a(i, j) from `cascade.pair_scores`), and writes
JSON that the notebook prints beside its own number:

    python -m taco_lite.evaluate.negatives --out docs/cascade_negatives.json [--force]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taco_lite.cascade import hard_negatives, pair_scores, random_negatives
from taco_lite.losses import token_video_scores

__all__ = ["negative_word_share", "main"]


def negative_word_share(
    model, dataset, world, batch_size: int = 32, k: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Share of cascade and of random negatives whose caption shares a noun or verb with the anchor.

    Text anchors only (videos_for_text), over consecutive full batches of `dataset` in order.
    Returns {"cascade": %, "random": %, "negatives": count per sampler, "batches", ...}.
    """
    from taco_lite.data import collate

    if batch_size < 2 or not 1 <= k <= batch_size - 1:
        raise ValueError(f"need batch_size >= 2 and 1 <= k <= batch_size - 1, got {batch_size}, {k}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    hits = {"cascade": 0, "random": 0}
    total = batches = 0
    model.eval()
    for start in range(0, len(dataset) - batch_size + 1, batch_size):
        batch = collate([dataset[i] for i in range(start, start + batch_size)]).to(device)
        with torch.no_grad():
            emb = model.embed(batch)
            tok = token_video_scores(emb.text_tokens, emb.video_tokens, batch.video_mask)  # (B, n, B)
            a = pair_scores((emb.text_global @ emb.video_global.T).float(), tok.float(),
                            batch.token_interest)  # fmt: skip  # (B, B)
        chosen = {"cascade": hard_negatives(a, k)[0],
                  "random": random_negatives(batch_size, k, generator=gen)[0]}  # fmt: skip
        segs = [world.segments[int(s)] for s in batch.seg_ids]
        words = [set(s.nouns + s.verbs) for s in segs]
        for name, vft in chosen.items():  # (B, k) videos for each text
            hits[name] += sum(bool(words[i] & words[int(j)]) for i in range(batch_size) for j in vft[i])
        total += batch_size * k
        batches += 1
    if not batches:
        raise ValueError(f"the split has {len(dataset)} pairs: fewer than one batch of {batch_size}")
    return {
        "cascade": 100.0 * hits["cascade"] / total,
        "random": 100.0 * hits["random"] / total,
        "negatives": total,
        "batches": batches,
        "batch_size": batch_size,
        "k": k,
        "seed": seed,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from taco_lite.evaluate.cli import datasets_for_checkpoint
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.world import load_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="data/checkpoints/taco.pt")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/cascade_negatives.json")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        sys.exit(f"{out} exists: pass --force to overwrite it")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    model, words, (mcfg, tcfg) = load_model(args.checkpoint)
    world = load_world()
    data = datasets_for_checkpoint(words, mcfg, tcfg, (args.split,), world)[args.split]
    record = negative_word_share(model, data, world, args.batch_size, args.k, args.seed)
    record.update(checkpoint=args.checkpoint, split=args.split,
                  command="python -m taco_lite.evaluate.negatives " + " ".join(sys.argv[1:] if argv is None else argv))  # fmt: skip
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
