"""Action segmentation, COIN-style (paper Sec. 4.4; docs/method.md §6): a linear probe per frame.

The video encoder is frozen. Each frame's video_token x_t (the encoder's raw output, before
any normalisation) is a feature; a linear classifier trained on the train clips predicts the
frame's action label (0 = background, else 1 + action). Frame accuracy is the fraction of test
frames labelled right, pooled over all frames (COIN's frame accuracy). A better encoder gives
features from which the actions are linearly readable.

The probe is multinomial logistic regression on standardised features (train mean / std),
trained full-batch with Adam for a few hundred steps from zero weights: deterministic, about a
second for 20k frames, and convex, so every encoder gets the same fair optimisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from taco_lite.downstream.localize import encode_clip


@dataclass
class LinearProbe:
    weight: torch.Tensor  # (K, d)
    bias: torch.Tensor  # (K,)
    mean: torch.Tensor  # (d,) train feature mean
    std: torch.Tensor  # (d,) train feature std (floored)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, d) -> logits (N, K)."""
        z = (features.float() - self.mean) / self.std  # (N, d)
        return z @ self.weight.T + self.bias  # (N, K)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Labels (N,) long; ties go to the smallest label."""
        return self.logits(features).argmax(dim=1)


def _check(features: torch.Tensor, labels: torch.Tensor) -> None:
    if features.dim() != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"features has shape {tuple(features.shape)} and labels {tuple(labels.shape)}: "
            "need features (N, d) and labels (N,), one label per frame"
        )
    if features.shape[0] == 0:
        raise ValueError("no frames: the probe needs at least one labelled frame")
    if not torch.isfinite(features).all():
        raise ValueError("features hold NaN or inf: check the encoder's outputs")


def train_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
) -> LinearProbe:
    """Fit softmax regression on (N, d) features and (N,) labels in 0..K-1, full batch.

    weight_decay is an L2 penalty on the weights (not the bias) added to the mean
    cross-entropy; it keeps the solution finite when the classes are separable.
    """
    _check(features, labels)
    labels = labels.long()
    K = int(labels.max()) + 1 if num_classes is None else num_classes
    if int(labels.min()) < 0 or int(labels.max()) >= K:
        raise ValueError(
            f"labels must lie in 0..{K - 1}, got {int(labels.min())}..{int(labels.max())}"
        )
    x = features.float()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)  # (d,), (d,)
    z = (x - mean) / std  # (N, d)
    w = torch.zeros(K, x.shape[1], requires_grad=True)  # (K, d)
    b = torch.zeros(K, requires_grad=True)  # (K,)
    opt = torch.optim.Adam([w, b], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(z @ w.T + b, labels) + weight_decay * (w * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return LinearProbe(w.detach(), b.detach(), mean, std)


def frame_accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of frames whose predicted label equals the gold label (pooled over frames)."""
    if predicted.shape != labels.shape or labels.numel() == 0:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} must be the "
            "same non-empty shape"
        )
    return 100.0 * float((predicted.long() == labels.long()).float().mean())


def majority_accuracy(train_labels: torch.Tensor, test_labels: torch.Tensor) -> float:
    """Frame accuracy of always predicting the most frequent train label (the floor to beat)."""
    top = int(torch.bincount(train_labels.long()).argmax())
    return frame_accuracy(torch.full_like(test_labels, top), test_labels)


def video_features(
    model: Any, videos: Sequence[Any], window: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen per-frame features of every video, stacked: (sum T, d) and labels (sum T,).

    videos: `downstream_data.SegmentationVideo`s. model None: the frames themselves (e.g.
    real pre-extracted features) are the features, with no encoder.
    """
    feats, labels = [], []
    for v in videos:
        if model is None:
            x = torch.as_tensor(np.asarray(v.frames, dtype=np.float32))  # (T, D)
        else:
            x = encode_clip(model, v.frames, window, normalize=False)  # (T, d)
        if x.shape[0] != len(v.labels):
            raise ValueError(f"video {v.video_id}: {x.shape[0]} frames but {len(v.labels)} labels")
        feats.append(x.reshape(x.shape[0], -1))
        labels.append(torch.as_tensor(np.asarray(v.labels), dtype=torch.long))
    return torch.cat(feats), torch.cat(labels)


def segmentation_report(
    model: Any,
    train_videos: Sequence[Any],
    test_videos: Sequence[Any],
    num_classes: int | None = None,
    steps: int = 300,
    window: int | None = None,
) -> dict[str, float]:
    """Train the probe on `train_videos`' frames, report frame accuracy (%) on `test_videos`."""
    x_tr, y_tr = video_features(model, train_videos, window)
    x_te, y_te = video_features(model, test_videos, window)
    K = num_classes or int(max(int(y_tr.max()), int(y_te.max()))) + 1
    probe = train_probe(x_tr, y_tr, K, steps=steps)
    return {
        "frame_acc": frame_accuracy(probe.predict(x_te), y_te),
        "train_frame_acc": frame_accuracy(probe.predict(x_tr), y_tr),
        "majority": majority_accuracy(y_tr, y_te),
        "train_frames": int(y_tr.numel()),
        "test_frames": int(y_te.numel()),
    }
