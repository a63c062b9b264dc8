"""features.py: the adapter for pre-extracted features, and every error it names."""

import json

import numpy as np
import pytest
import torch

from taco_lite.data import collate
from taco_lite.data.features import FeatureDataset, frame_range, subsample
from taco_lite.text import Vocab, pos

D = 6


@pytest.fixture(scope="module", autouse=True)
def _needs_nlp():
    try:
        pos.load_nlp()
    except OSError:
        pytest.skip("no English spaCy pipeline installed")


def write_release(root, segments, videos, fps=2.0):
    """A tiny release: features/<id>.npy with row t = [t, t, ...] + video number."""
    (root / "features").mkdir(parents=True, exist_ok=True)
    for k, (vid, T) in enumerate(videos.items()):
        arr = np.arange(T, dtype=np.float32)[:, None] + 1000 * k + np.zeros((1, D), np.float32)
        np.save(root / "features" / f"{vid}.npy", arr)
    (root / "segments.json").write_text(json.dumps(segments))
    if fps is not None:
        (root / "meta.json").write_text(json.dumps({"features_per_second": fps}))
    return root


SEGMENTS = [
    {"video_id": "v0", "caption": "Cut the onion.", "start": 1.0, "end": 3.0},
    {"video_id": "v0", "caption": "Fry the onion in oil.", "start": 3.0, "end": 4.9},
    {"video_id": "v1", "caption": "cut the Onion.", "start": 0.0, "end": 10.0},
]


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path, SEGMENTS, {"v0": 10, "v1": 40})


def test_items_rows_and_collate(release):
    ds = FeatureDataset(release, max_frames=8)
    assert len(ds) == 3 and ds.feature_dim == D
    it = ds[0]
    # 2 features per second: [1.0, 3.0) s -> rows [2, 6)
    assert it["frames"][:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert ds[1]["frames"][:, 0].tolist() == [6.0, 7.0, 8.0, 9.0]  # ceil(4.9 * 2) = 10
    # v1: 20 rows subsampled evenly to 8
    assert ds[2]["frames"][:, 0].tolist() == [1000 + r for r in [0, 2, 5, 7, 10, 12, 15, 17]]
    b = collate([ds[i] for i in range(3)])
    assert b.frames.shape == (3, 8, D) and b.frames.dtype == torch.float32
    assert b.video_mask.sum(1).tolist() == [4, 4, 8]
    assert (b.frames[~b.video_mask] == 0).all()
    assert b.gold_frames.shape == (3, b.text_ids.shape[1], 8) and not b.gold_frames.any()
    assert b.caption_ids.tolist() == [0, 1, 0]  # "Cut the onion." == "cut the Onion." (case)
    assert torch.allclose(b.token_weights.sum(1), torch.ones(3))


def test_whole_clip_captions_need_no_fps(tmp_path):
    segs = [{"video_id": "a", "caption": "A man plays guitar."}]
    root = write_release(tmp_path, segs, {"a": 5}, fps=None)
    ds = FeatureDataset(root)
    assert ds[0]["frames"].shape == (5, D)


def test_vocab_and_idf_passed_in_are_used(release):
    vocab = Vocab.build(["cut the onion"])
    ds = FeatureDataset(release, vocab=vocab)
    assert ds.vocab is vocab
    assert 1 in ds[1]["text_ids"].tolist()  # 'fry' is [UNK]


def test_frame_range_and_subsample():
    assert frame_range(None, None, None, 7) == (0, 7)
    assert frame_range(0.0, 0.1, 1.0, 7) == (0, 1)  # never empty
    assert frame_range(5.0, 7.4, 1.0, 7) == (5, 7)  # one step past the end is rounding
    assert subsample(3, 6, 10).tolist() == [3, 4, 5]
    assert len(subsample(0, 100, 48)) == 48


# ------------------------------------------------------------------ every error names the problem


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="feature folder .*nope not found"):
        FeatureDataset(tmp_path / "nope")


def test_missing_segments_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="segments.json"):
        FeatureDataset(tmp_path)


def test_missing_feature_file(release):
    segs = SEGMENTS + [{"video_id": "ghost", "caption": "The pan heats.", "start": 0, "end": 1}]
    (release / "segments.json").write_text(json.dumps(segs))
    with pytest.raises(FileNotFoundError, match=r"ghost\.npy not found"):
        FeatureDataset(release)


def test_corrupt_npy(release):
    (release / "features" / "v1.npy").write_bytes(b"this is not numpy")
    with pytest.raises(ValueError, match=r"cannot read .*v1\.npy.*corrupt"):
        FeatureDataset(release)


def test_truncated_npy(release):
    path = release / "features" / "v1.npy"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ValueError, match=r"cannot read .*v1\.npy"):
        FeatureDataset(release)


def test_wrong_ndim(release):
    np.save(release / "features" / "v1.npy", np.zeros((40, 2, D), np.float32))
    with pytest.raises(ValueError, match=r"v1\.npy has shape \(40, 2, 6\).*2-D \[T, D\]"):
        FeatureDataset(release)


def test_inconsistent_feature_dim(release):
    np.save(release / "features" / "v1.npy", np.zeros((40, D + 1), np.float32))
    with pytest.raises(ValueError, match=r"v1\.npy has D=7 .*v0\.npy has D=6"):
        FeatureDataset(release)


def test_segment_outside_the_video(release):
    segs = [dict(SEGMENTS[0], start=4.0, end=9.0)]  # v0 has 10 rows = 5 s
    (release / "segments.json").write_text(json.dumps(segs))
    with pytest.raises(ValueError, match="entry 0 \\(video 'v0'\\).*outside the video"):
        FeatureDataset(release)


def test_bad_start_end(release):
    (release / "segments.json").write_text(json.dumps([dict(SEGMENTS[0], start=3.0, end=1.0)]))
    with pytest.raises(ValueError, match="need 0 <= start < end"):
        FeatureDataset(release)
    (release / "segments.json").write_text(
        json.dumps([{"video_id": "v0", "caption": "x", "start": 1}])
    )
    with pytest.raises(ValueError, match="both 'start' and 'end'"):
        FeatureDataset(release)


def test_start_end_without_fps(release):
    (release / "meta.json").unlink()
    with pytest.raises(ValueError, match="features_per_second"):
        FeatureDataset(release)
    assert len(FeatureDataset(release, features_per_second=2.0)) == 3


def test_empty_caption(release):
    (release / "segments.json").write_text(json.dumps([dict(SEGMENTS[0], caption="  ")]))
    with pytest.raises(ValueError, match="entry 0 \\(video 'v0'\\): caption is empty"):
        FeatureDataset(release)


def test_bad_segments_json(release):
    (release / "segments.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        FeatureDataset(release)
    (release / "segments.json").write_text(json.dumps([{"caption": "The pan heats."}]))
    with pytest.raises(ValueError, match="needs 'video_id' and 'caption'"):
        FeatureDataset(release)


def test_nan_features_are_refused(release):
    arr = np.zeros((10, D), np.float32)
    arr[3, 1] = np.nan
    np.save(release / "features" / "v0.npy", arr)
    ds = FeatureDataset(release)
    with pytest.raises(ValueError, match="NaN or inf"):
        ds[0]
    assert torch.isfinite(ds[2]["frames"]).all()
