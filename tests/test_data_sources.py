"""`--world PATH` / `--features PATH` on `python -m taco_lite.train` (issue 12): the run trains
on the named data and its checkpoint records which (TrainConfig.data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from taco_lite.config import TrainConfig
from taco_lite.data.sources import data_spec, feature_dim, load_datasets, parse_data_spec

VERBS = ["cut", "wash", "peel", "stir", "pour", "fry"]
NOUNS = ["onion", "carrot", "tomato", "egg", "potato", "pepper", "apple", "garlic"]


def write_feature_release(root: Path, videos: int, seed: int, D: int = 12) -> None:
    """A tiny release in the layout of docs/real_data.md: 3 captioned segments per video."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True)
    segments = []
    for v in range(videos):
        vid = f"vid{seed}_{v}"
        np.save(root / "features" / f"{vid}.npy", rng.standard_normal((12, D)).astype(np.float32))
        for s in range(3):
            verb, noun = VERBS[(v + s) % len(VERBS)], NOUNS[(2 * v + s) % len(NOUNS)]
            segments.append({"video_id": vid, "caption": f"{verb} the {noun} in the pan",
                             "start": 4.0 * s, "end": 4.0 * s + 3.5})  # fmt: skip
    (root / "segments.json").write_text(json.dumps(segments))
    (root / "meta.json").write_text(json.dumps({"features_per_second": 1.0}))


def test_data_spec_strings_and_errors(tmp_path):
    assert data_spec() == "" and parse_data_spec("") == ("world", None)
    assert parse_data_spec(data_spec(world="w")) == ("world", Path("w").resolve())  # resolved
    assert parse_data_spec(data_spec(features="f")) == ("features", Path("f").resolve())
    with pytest.raises(ValueError, match="not both"):
        data_spec(world="w", features="f")
    with pytest.raises(ValueError, match="features:PATH"):
        parse_data_spec("pixels:x")
    with pytest.raises(ValueError, match="world:PATH"):
        TrainConfig(data="somewhere")
    with pytest.raises(FileNotFoundError, match="'train' split"):
        feature_dim(tmp_path)


def test_feature_folder_splits_share_the_train_vocabulary(tmp_path):
    write_feature_release(tmp_path / "train", 6, seed=0)
    write_feature_release(tmp_path / "test", 2, seed=1)
    datasets, vocab = load_datasets(f"features:{tmp_path}", "noun+verb", 32, 48, ("train", "test"))
    assert len(datasets["train"]) == 18 and len(datasets["test"]) == 6
    assert datasets["test"].vocab is vocab and feature_dim(tmp_path) == 12
    with pytest.raises(FileNotFoundError, match="'val' split"):
        load_datasets(f"features:{tmp_path}", "noun+verb", 32, 48, ("train", "val"))


@pytest.mark.timeout(300)
def test_train_cli_on_a_tiny_feature_folder_records_it(tmp_path):
    from taco_lite.runtime.checkpoint import load_checkpoint
    from taco_lite.train import main

    root = tmp_path / "release"
    write_feature_release(root / "train", 6, seed=0)
    write_feature_release(root / "test", 3, seed=1)
    out = tmp_path / "run"
    summary = main(["--preset", "fast", "--steps", "3", "--batch-size", "8", "--k-neg", "3",
                    "--device", "cpu", "--quiet", "--features", str(root), "--out", str(out),
                    "--token-chunk", "4"])  # fmt: skip
    assert summary["train_cfg"]["data"] == f"features:{root}"
    assert summary["train_cfg"]["token_chunk"] == 4  # L2 through the lowmem autograd function
    assert summary["model_cfg"]["video_input"] == "features"
    assert summary["model_cfg"]["feature_dim"] == 12 and summary["test"]["N"] == 9
    state = load_checkpoint(out / "model.pt")
    assert state["train_cfg"]["data"] == f"features:{root}"  # the checkpoint says what it saw
    assert state["model_cfg"]["video_input"] == "features"
    assert any(t.ndim == 2 and t.shape[-1] == 12 for t in state["model"].values())  # reads D
    assert torch.isfinite(torch.tensor(summary["final"]["loss"]))

    # `python -m taco_lite.evaluate` reads the data the checkpoint records, or --features PATH
    from taco_lite.evaluate.cli import main as evaluate_main

    args = ["--checkpoint", str(out / "model.pt"), "--splits", "test", "--device", "cpu",
            "--full-fusion-subset", "0", "--top-k", "4"]  # fmt: skip
    recorded = evaluate_main(args)
    explicit = evaluate_main([*args, "--features", str(root)])
    assert recorded["data"] == explicit["data"] == f"features:{root}"
    for res in (recorded, explicit):
        assert res["splits"]["test"]["retrieval"]["N"] == 9
    assert recorded["splits"]["test"]["retrieval"] == explicit["splits"]["test"]["retrieval"]
    itself = evaluate_main([*args, "--against", str(out / "model.pt")])["against"]["splits"]
    for d in ("t2v", "v2t"):  # the same model on the same queries: no difference at all
        assert itself["test"][d]["N"] == 9
        assert itself["test"][d]["diff"] == itself["test"][d]["lo"] == itself["test"][d]["hi"] == 0
    with pytest.raises(ValueError, match="video_input='features'"):
        evaluate_main([*args, "--world", "data/world"])  # a features model cannot see pixels


def test_evaluate_cli_refuses_features_for_a_pixel_checkpoint(tmp_path):
    from taco_lite.evaluate.cli import main as evaluate_main

    write_feature_release(tmp_path / "train", 2, seed=0)
    write_feature_release(tmp_path / "test", 2, seed=1)
    with pytest.raises(ValueError, match="video_input='pixels'"):
        evaluate_main(["--checkpoint", "data/checkpoints/taco.pt", "--splits", "test",
                       "--device", "cpu", "--features", str(tmp_path)])  # fmt: skip


@pytest.mark.timeout(300)
def test_sweep_run_on_a_feature_folder_records_it(tmp_path):
    from taco_lite.runtime.checkpoint import load_checkpoint
    from taco_lite.sweep.run import ROWS_BY_SLUG, build_parser, run_one

    root = tmp_path / "release"
    write_feature_release(root / "train", 12, seed=0)  # 36 pairs >= the fast preset's B = 32
    write_feature_release(root / "test", 3, seed=1)
    out = tmp_path / "sweep" / "l1" / "seed0"
    out.mkdir(parents=True)
    record = run_one(ROWS_BY_SLUG["l1"], 0, "fast", "test", out, 4, steps=2,
                     data=f"features:{root}")  # fmt: skip
    assert record["N"] == 9 and record["grounding"] == {"chance": {}}  # no grounding labels
    assert load_checkpoint(out / "model.pt")["train_cfg"]["data"] == f"features:{root}"
    args = build_parser().parse_args(["--features", str(root)])
    assert args.features == str(root) and args.world is None
