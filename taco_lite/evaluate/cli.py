"""The command line: `python -m taco_lite.evaluate --checkpoint PATH`.

    python -m taco_lite.evaluate --checkpoint runs/fast/model.pt --splits test,comp
    python -m taco_lite.evaluate --checkpoint runs/big/model.pt --world runs/big_world
    python -m taco_lite.evaluate --checkpoint runs/feat/model.pt --features my_feats --splits test

It loads the checkpoint, re-encodes the splits exactly as in training
(`datasets_for_checkpoint`, or `feature_datasets_for_checkpoint` for real features), runs
`report.evaluate` and prints `report.format_report`. Without `--world`/`--features` it reads
the data the checkpoint records (`TrainConfig.data`: the shipped world, a world folder, or a
feature folder).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco_lite.evaluate.report import evaluate, format_report
from taco_lite.evaluate.retrieval import _device


def datasets_for_checkpoint(
    vocab_words: Sequence[str] | None,
    model_cfg: Any,
    train_cfg: Any,
    splits: Sequence[str],
    world: Any,
) -> dict[str, Any]:
    """The world's splits encoded exactly as in training: the checkpoint's vocabulary
    (unknown words -> [UNK], never rebuilt), its pos_tags and max_tokens, idf from train."""
    from taco_lite.data import WorldDataset
    from taco_lite.text import tokenize
    from taco_lite.text.pos import idf_table, tag_captions

    vocab, pos_tags = _checkpoint_text(vocab_words, model_cfg, train_cfg, "pixels")
    idf = idf_table([tokenize(world.segments[i].caption) for i in world.split("train")])
    seg_lists = {s: world.split(s) for s in splits}
    captions = [world.segments[i].caption for s in splits for i in seg_lists[s]]
    tags = tag_captions(captions)  # one spaCy call for every split
    out, start = {}, 0
    for s in splits:
        part = tags[start : start + len(seg_lists[s])]
        start += len(seg_lists[s])
        out[s] = WorldDataset(
            world, s, vocab, idf, pos_tags, tags=part, max_tokens=model_cfg.max_tokens
        )
    return out


_WRONG_INPUT = {
    "pixels": "this checkpoint was trained on pre-extracted features (video_input='features'); "
    "evaluate it with --features PATH, or call evaluate() with your own datasets",
    "features": "this checkpoint was trained on the toy world's frames (video_input='pixels'), "
    "so it cannot read pre-extracted features: drop --features, or evaluate a checkpoint "
    "trained with `python -m taco_lite.train --features PATH`",
}


def _checkpoint_text(
    vocab_words: Sequence[str] | None, model_cfg: Any, train_cfg: Any, video_input: str
) -> tuple[Any, str]:
    """(Vocab, pos_tags) of a checkpoint, checked: it has a vocabulary that matches its model,
    and its model reads `video_input` ("pixels" or "features")."""
    from taco_lite.text import Vocab
    from taco_lite.text.pos import DEFAULT_POS_TAGS

    if vocab_words is None:
        raise ValueError(
            "this checkpoint holds no vocabulary, so captions cannot be encoded as in "
            "training: evaluate a checkpoint written by taco_lite.train (model.pt or last.pt)"
        )
    if getattr(model_cfg, "video_input", "pixels") != video_input:
        raise ValueError(_WRONG_INPUT[video_input])
    vocab = Vocab.from_list(list(vocab_words))
    if len(vocab) != model_cfg.vocab_size:
        raise ValueError(
            f"the checkpoint's vocabulary has {len(vocab)} words but its model has vocab_size "
            f"{model_cfg.vocab_size}: the file is inconsistent, retrain it"
        )
    return vocab, train_cfg.pos_tags if train_cfg is not None else DEFAULT_POS_TAGS


def feature_datasets_for_checkpoint(
    vocab_words: Sequence[str] | None,
    model_cfg: Any,
    train_cfg: Any,
    splits: Sequence[str],
    root: str | Path,
) -> dict[str, Any]:
    """Real pre-extracted features (root/<split>, docs/real_data.md) encoded as in training:
    the checkpoint's vocabulary, pos_tags, max_tokens and max_frames, idf from root/train."""
    from taco_lite.data.features import FeatureDataset
    from taco_lite.data.sources import data_spec, feature_split_dir, training_idf

    vocab, pos_tags = _checkpoint_text(vocab_words, model_cfg, train_cfg, "features")
    root = Path(root)
    idf = training_idf(data_spec(features=str(root)))
    return {
        s: FeatureDataset(
            feature_split_dir(root, s),
            vocab=vocab,
            idf=idf,
            pos_tags=pos_tags,
            max_frames=model_cfg.max_frames,
            max_tokens=model_cfg.max_tokens,
        )  # fmt: skip
        for s in splits
    }


def _subset_size(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use 'all', 0 or a number of pairs") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: use 'all', 0 or a number")
    return value


def _positive_int(text: str) -> int:
    value = _subset_size(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use an integer >= 1, e.g. 16")
    return value


def _weight(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text}: lambda_t weighs s2 and must be finite, >= 0")
    return value


def parse_splits(text: str, kind: str) -> tuple[str, ...]:
    """The --splits list, refused when empty or (for a world) naming no world split."""
    from taco_lite.world import SPLITS

    splits = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not splits:
        raise ValueError(f"--splits {text!r} names no split: give e.g. --splits test,comp")
    unknown = [s for s in splits if kind == "world" and s not in SPLITS]
    if unknown:
        raise ValueError(
            f"--splits names {', '.join(map(repr, unknown))}, not a split of the world: "
            f"use some of {', '.join(SPLITS)}"
        )
    return splits


def _check_data(model: Any, train_cfg: Any, kind: str, path: Any, explicit: bool, where: Any):
    """Refuse data other than the checkpoint's (runtime.provenance), or warn if named on purpose."""
    import sys

    from taco_lite.data.sources import data_spec
    from taco_lite.runtime.provenance import check_same_data

    here = data_spec(**{kind: str(path)}) if path is not None else ""
    trained = getattr(train_cfg, "data", "") or ""
    note = check_same_data(getattr(model, "provenance", {}), trained, here, explicit, str(where))
    if note:
        print(f"warning: {note}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m taco_lite.evaluate",
        description="Evaluate a TACo checkpoint: retrieval per score, cascade, grounding.",
    )
    p.add_argument("--checkpoint", required=True, help="e.g. runs/fast/model.pt")
    p.add_argument("--splits", default="test,comp", help="comma-separated, e.g. test,comp")
    p.add_argument("--top-k", type=_positive_int, default=16, help="candidates re-scored by fusion")
    p.add_argument(
        "--full-fusion-subset",
        type=_subset_size,
        default=None,
        help="pairs on which Table 11 runs all N^2 fusion passes: 'all' (default, the full "
        "split; about 30 s for 406 pairs on a 2-core CPU), a number for a seeded random "
        "subset, or 0 to skip",
    )
    p.add_argument(
        "--lambda-t", type=_weight, help="weight of s2, >= 0 (default: the checkpoint's)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=_subset_size, default=0, help="seed of the subset, >= 0")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--world", help="a generated world folder (default: the checkpoint's data)")
    data.add_argument(
        "--features", help="real features: PATH/<split> in the layout of docs/real_data.md"
    )
    p.add_argument(
        "--against",
        help="a second checkpoint: R@1 of --checkpoint minus this one's "
        "on the same queries, with a paired bootstrap 95%% interval",
    )
    p.add_argument("--json", help="also write the results to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point: load the checkpoint, rebuild the datasets, print the report."""
    from taco_lite.data.sources import parse_data_spec
    from taco_lite.runtime.checkpoint import load_model
    from taco_lite.world import load_world

    args = build_parser().parse_args(argv)
    splits = parse_splits(args.splits, "features" if args.features else "world")
    device = _device(args.device, None)
    model, vocab_words, (model_cfg, train_cfg) = load_model(args.checkpoint, map_location=device)
    kind, path = parse_data_spec(getattr(train_cfg, "data", "") or "")
    if args.features:
        kind, path = "features", Path(args.features)
    elif args.world:
        kind, path = "world", Path(args.world)
    if kind != "features":
        parse_splits(args.splits, kind)
    explicit = bool(args.world or args.features)
    _check_data(model, train_cfg, kind, path, explicit, args.checkpoint)
    world = None
    if kind == "features":
        datasets = feature_datasets_for_checkpoint(vocab_words, model_cfg, train_cfg, splits, path)
    else:
        world = load_world(path)
        datasets = datasets_for_checkpoint(vocab_words, model_cfg, train_cfg, splits, world)
    lambda_t = args.lambda_t
    if lambda_t is None:
        lambda_t = train_cfg.lambda_t if train_cfg is not None else 0.5
    results = evaluate(
        model, datasets, splits, lambda_t=lambda_t, top_k=args.top_k,
        full_fusion_subset=args.full_fusion_subset, device=device, seed=args.seed, world=world,
    )  # fmt: skip
    results["checkpoint"] = str(args.checkpoint)
    results["data"] = f"{kind}:{path}" if path is not None else ""
    print(format_report(results))
    if args.against:
        from taco_lite.evaluate.compare import dataset_ranks, format_comparison, paired_difference

        other, other_words, (other_mcfg, other_tcfg) = load_model(args.against, map_location=device)
        _check_data(other, other_tcfg, kind, path, explicit, args.against)
        if kind == "features":
            other_sets = feature_datasets_for_checkpoint(
                other_words, other_mcfg, other_tcfg, splits, path
            )
        else:
            other_sets = datasets_for_checkpoint(other_words, other_mcfg, other_tcfg, splits, world)
        results["against"] = {"checkpoint": str(args.against), "splits": {
            s: paired_difference(
                dataset_ranks(model, datasets[s], train_cfg.terms, lambda_t, args.top_k),
                dataset_ranks(other, other_sets[s], other_tcfg.terms, other_tcfg.lambda_t,
                               args.top_k),
            ) for s in splits}}  # fmt: skip
        print(format_comparison(results["against"]["splits"], args.checkpoint, args.against))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results
