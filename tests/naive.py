"""Naive loop twins of the maths in `taco_lite.losses`, `cascade` and `metrics`.

Each function here spells out the paper's definition with Python loops over i, p, j, k and
`math` on Python floats, the way a learner would write it on paper. The vectorised versions
must match them (atol 1e-5 in float32). Notebooks may import these as reference checks.
Deliberately slow: use tiny inputs only.
"""

from __future__ import annotations

import math

import torch


def _logsumexp(xs: list[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(float(a[t]) * float(b[t]) for t in range(a.shape[0]))


def sentence_nce(text_global, video_global, tau=1.0, symmetric=False) -> float:
    """Eq. 3: mean over i of -log softmax_j(s1(i, :)/tau)[i] (+ video-to-text if symmetric)."""
    B = text_global.shape[0]
    s1 = [[_dot(text_global[i], video_global[j]) / tau for j in range(B)] for i in range(B)]
    t2v = sum(_logsumexp(s1[i]) - s1[i][i] for i in range(B)) / B
    if not symmetric:
        return t2v
    v2t = sum(_logsumexp([s1[i][j] for i in range(B)]) - s1[j][j] for j in range(B)) / B
    return 0.5 * (t2v + v2t)


def token_video_scores(text_tokens, video_tokens, video_mask) -> torch.Tensor:
    """out[i, p, j] = max over valid frames k of text_tokens[i, p] . video_tokens[j, k]."""
    Bt, n, _ = text_tokens.shape
    Bv, m, _ = video_tokens.shape
    out = torch.empty(Bt, n, Bv, dtype=torch.float64)
    for i in range(Bt):
        for p in range(n):
            for j in range(Bv):
                best = -math.inf
                for k in range(m):
                    if bool(video_mask[j, k]):
                        best = max(best, _dot(text_tokens[i, p], video_tokens[j, k]))
                out[i, p, j] = best
    return out


def token_nce(token_scores, token_weights, tau=1.0) -> float:
    """Eq. 4: sum_{i,p} w[i,p] * -log softmax_j(s(i,p,:)/tau)[i] / #texts with any weight."""
    B, n, _ = token_scores.shape
    total, texts = 0.0, 0
    for i in range(B):
        has_token = False
        for p in range(n):
            w = float(token_weights[i, p])
            if w == 0.0:
                continue
            has_token = True
            row = [float(token_scores[i, p, j]) / tau for j in range(B)]
            total += w * (_logsumexp(row) - row[i])
        texts += has_token
    return total / texts if texts else 0.0


def fusion_nce(logits) -> float:
    """L3, Eq. 5: mean over anchor rows of -log softmax(row)[0]."""
    A, cols = logits.shape
    total = 0.0
    for a in range(A):
        row = [float(logits[a, c]) for c in range(cols)]
        total += _logsumexp(row) - row[0]
    return total / A


def pair_scores(sim_global, token_scores, token_mask) -> torch.Tensor:
    """a(i, j) = s1(i, j) + sum over tokens of interest p of s(i, p, j) (unweighted)."""
    Bt, n, Bv = token_scores.shape
    out = torch.empty(Bt, Bv, dtype=torch.float64)
    for i in range(Bt):
        for j in range(Bv):
            a = float(sim_global[i, j])
            for p in range(n):
                if bool(token_mask[i, p]):
                    a += float(token_scores[i, p, j])
            out[i, j] = a
    return out


def hard_negative_scores(pair_scores, k) -> tuple[list[list[float]], list[list[float]]]:
    """The k best negative *scores* per text (row, j != i) and per video (column, i != j).

    Scores, not indices: with ties, several index lists are equally correct.
    """
    B = pair_scores.shape[0]
    per_text = [
        sorted((float(pair_scores[i, j]) for j in range(B) if j != i), reverse=True)[:k]
        for i in range(B)
    ]
    per_video = [
        sorted((float(pair_scores[i, j]) for i in range(B) if i != j), reverse=True)[:k]
        for j in range(B)
    ]
    return per_text, per_video


def weighted_token_scores(token_scores, token_weights) -> torch.Tensor:
    """s2(i, j) = sum over p with w[i, p] != 0 of w[i, p] * s(i, p, j)."""
    N, n, M = token_scores.shape
    out = torch.zeros(N, M, dtype=torch.float64)
    for i in range(N):
        for j in range(M):
            for p in range(n):
                w = float(token_weights[i, p])
                if w != 0.0:
                    out[i, j] += w * float(token_scores[i, p, j])
    return out


def retrieval_ranks(sim) -> list[int]:
    """1 + number of candidates scoring strictly higher than the ground truth (diagonal)."""
    N = sim.shape[0]
    return [1 + sum(float(sim[i, j]) > float(sim[i, i]) for j in range(N)) for i in range(N)]


def retrieval_metrics(sim) -> dict[str, float]:
    ranks = retrieval_ranks(sim)
    N = len(ranks)
    s = sorted(ranks)
    median = s[N // 2] if N % 2 else 0.5 * (s[N // 2 - 1] + s[N // 2])
    return {
        "R1": 100.0 * sum(r <= 1 for r in ranks) / N,
        "R5": 100.0 * sum(r <= 5 for r in ranks) / N,
        "R10": 100.0 * sum(r <= 10 for r in ranks) / N,
        "MedR": float(median),
        "MnR": sum(ranks) / N,
    }


def grounding_counts(token_frame_sim, gold_frames, token_mask, video_mask) -> tuple[int, int]:
    """Per token of interest with a gold frame: is its best valid frame (first on ties) gold?"""
    B, n, m = token_frame_sim.shape
    correct = scored = 0
    for b in range(B):
        valid = [k for k in range(m) if bool(video_mask[b, k])]
        for p in range(n):
            if not bool(token_mask[b, p]):
                continue
            if not any(bool(gold_frames[b, p, k]) for k in valid):
                continue
            scored += 1
            best = valid[0]
            for k in valid:
                if float(token_frame_sim[b, p, k]) > float(token_frame_sim[b, p, best]):
                    best = k
            correct += bool(gold_frames[b, p, best])
    return correct, scored
