"""Which data a run trains on: the shipped world, another world folder, or real features.

`TrainConfig.data` names it, so every checkpoint records it (its `train_cfg`):

    ""                the shipped toy world (`world.load_world()`)
    "world:PATH"      a generated world folder, e.g. a larger one for a GPU
    "features:PATH"   pre-extracted features in the layout of docs/real_data.md, one folder per
                      split: PATH/train (required), PATH/val, PATH/test (read when asked for)

The command lines take `--world PATH` / `--features PATH` and write that string.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

KINDS = ("world", "features")


def data_spec(world: str | None = None, features: str | None = None) -> str:
    """The `TrainConfig.data` string for `--world` / `--features` (at most one of them)."""
    if world and features:
        raise ValueError("give --world or --features, not both: a run trains on one data set")
    if world:  # stored resolved, so the run can be evaluated from any folder
        return f"world:{Path(world).expanduser().resolve()}"
    if features:
        return f"features:{Path(features).expanduser().resolve()}"
    return ""


def parse_data_spec(spec: str) -> tuple[str, Path | None]:
    """("world", None) for the shipped world, else (kind, path); ValueError on a bad string."""
    if not spec:
        return "world", None
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS or not path:
        raise ValueError(
            f"data is {spec!r} but must be '' (the shipped world), 'world:PATH' or "
            "'features:PATH' (see taco_lite/data/sources.py)"
        )
    return kind, Path(path)


def feature_split_dir(root: Path, split: str) -> Path:
    """PATH/<split>, with a clear error naming the layout when it is missing."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--features {root}: no folder {folder} for the {split!r} split. Put each split in "
            f"its own folder ({root}/train, {root}/test, ...), each in the layout of "
            "docs/real_data.md (segments.json, features/<video_id>.npy, meta.json)"
        )
    return folder


def feature_dim(root: str | Path) -> int:
    """D of the features under root/train (read from the first .npy header only)."""
    import numpy as np

    files = sorted((feature_split_dir(Path(root), "train") / "features").glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"no .npy files in {Path(root) / 'train' / 'features'}")
    arr = np.load(files[0], mmap_mode="r", allow_pickle=False)
    if arr.ndim != 2:
        raise ValueError(f"{files[0]} has shape {arr.shape}: features must be 2-D [T, D]")
    return int(arr.shape[1])


def check_feature_splits(root: str | Path, splits: Sequence[str], dim: int | None = None) -> int:
    """Before training: every split folder exists and its features are 2-D [T, D] with the
    train split's D (checks the first .npy of each split); returns D."""
    import numpy as np

    want = dim if dim is not None else feature_dim(root)
    for split in splits:
        files = sorted((feature_split_dir(Path(root), split) / "features").glob("*.npy"))
        if not files:
            raise FileNotFoundError(
                f"--features {root}: no .npy files in {Path(root) / split / 'features'}"
            )
        arr = np.load(files[0], mmap_mode="r", allow_pickle=False)
        if arr.ndim != 2 or int(arr.shape[1]) != want:
            raise ValueError(
                f"--features {root}: {files[0]} has shape {tuple(arr.shape)} but the train "
                f"split's features are [T, {want}]: every split needs the same feature width D "
                "(extract them with the same backbone)"
            )
    return want


def training_idf(spec: str) -> dict[str, float]:
    """idf over the training captions of `TrainConfig.data`, as training computed it: the
    world's train split, or PATH/train/segments.json for real features."""
    from taco_lite.text import tokenize
    from taco_lite.text.pos import idf_table

    kind, path = parse_data_spec(spec)
    if kind == "features":
        from taco_lite.data.features import _read_json

        segments = _read_json(feature_split_dir(path, "train") / "segments.json", "segment list")
        return idf_table([tokenize(str(seg.get("caption", ""))) for seg in segments])
    from taco_lite.world import load_world

    return world_idf(load_world(path))


def world_idf(world: Any) -> dict[str, float]:
    """idf over a loaded world's train-split captions (`training_idf` for a world spec)."""
    from taco_lite.text import tokenize
    from taco_lite.text.pos import idf_table

    return idf_table([tokenize(world.segments[i].caption) for i in world.split("train")])


def model_config_for_data(model_cfg: Any, spec: str) -> Any:
    """`model_cfg` as it must be for `TrainConfig.data`: for real features the paper's video
    input (D-wide features read from the files, up to 48 steps); unchanged for a world."""
    import dataclasses

    kind, path = parse_data_spec(spec)
    if kind != "features":
        return model_cfg
    return dataclasses.replace(
        model_cfg, video_input="features", feature_dim=feature_dim(path), max_frames=48
    )


def load_datasets(
    spec: str,
    pos_tags: str,
    max_tokens: int,
    max_frames: int,
    splits: Sequence[str] = ("train", "test"),
) -> tuple[dict[str, Any], Any]:
    """(datasets by split, vocab) for `TrainConfig.data`; vocab and idf from the train split."""
    kind, path = parse_data_spec(spec)
    if kind == "world":
        from taco_lite.data.dataset import build_datasets
        from taco_lite.world import load_world

        world = load_world(path) if path is not None else load_world()
        datasets, vocab, _ = build_datasets(
            world, pos_tags=pos_tags, splits=tuple(splits), max_tokens=max_tokens
        )
        return datasets, vocab
    from taco_lite.data.features import FeatureDataset

    train = FeatureDataset(
        feature_split_dir(path, "train"),
        pos_tags=pos_tags,
        max_frames=max_frames,
        max_tokens=max_tokens,
    )
    datasets: dict[str, Any] = {"train": train}
    for split in splits:
        if split != "train":
            datasets[split] = FeatureDataset(
                feature_split_dir(path, split), vocab=train.vocab, idf=train.idf,
                pos_tags=pos_tags, max_frames=max_frames, max_tokens=max_tokens,
            )  # fmt: skip
    return datasets, train.vocab
