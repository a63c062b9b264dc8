"""Token grounding: does each noun's / verb's best frame fall inside its gold frames?

Reported next to chance (a random frame). It checks what L2's max over frames (paper Eq. 4)
should teach, directly rather than via retrieval; docs/evaluation.md explains the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from taco_lite.evaluate.inference import Embedded
from taco_lite.evaluate.retrieval import _device, _embedded
from taco_lite.metrics import grounding_counts

GROUNDING_POS = ("NOUN", "VERB")


def gold_pos_ids(emb: Embedded, world: Any) -> torch.Tensor:
    """(N, n) UPOS ids from the world's gold tags: word w of a caption sits at token w + 1."""
    from taco_lite.text.pos import upos_id

    ids = torch.zeros_like(emb.pos_ids)  # (N, n), 0 for specials and padding
    for r, seg_id in enumerate(emb.seg_ids.tolist()):
        n_r = int(emb.text_mask[r].sum())
        for w, tag in enumerate(world.segments[seg_id].gold_pos[: n_r - 2]):
            ids[r, w + 1] = upos_id(tag)
    return ids


def _pct(correct: float, total: int) -> float | None:
    return 100.0 * correct / total if total else None


@torch.no_grad()
def grounding_accuracy_report(
    model: Any,
    dataset: Embedded | Sequence,
    world: Any = None,
    device: torch.device | str | None = None,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Token grounding: is a word's best frame of *its own* video one of its gold frames?

    For every caption token whose POS is NOUN or VERB and that has gold frames, the prediction
    is argmax over the video's valid frames k of text_tokens[i, p] . video_tokens[i, k]. This
    checks what L2's max over frames (Eq. 4) should teach, directly rather than via retrieval.
    POS comes from the world's gold tags when `world` is given ("pos_source": "world"), else
    from the spaCy tags of the dataset ("spacy"). Returns accuracies in percent, None where no
    token was scored: {"NOUN", "VERB", "all", "n_tokens": {...}, "chance": {...}, "pos_source"}.
    "chance" is the mean, over scored tokens, of (gold frames / valid frames): what picking a
    random frame would score.
    """
    from taco_lite.text.pos import upos_id

    device = _device(device, model)
    emb = _embedded(model, dataset, device, batch_size)
    pos = gold_pos_ids(emb, world) if world is not None else emb.pos_ids  # (N, n)
    sim = torch.einsum("ipd,ikd->ipk", emb.text_tokens.float(), emb.video_tokens.float())
    gold = emb.gold_frames & emb.video_mask[:, None, :]  # (N, n, m)
    has_gold = gold.any(dim=2) & emb.text_mask  # (N, n)
    frac = gold.sum(2) / emb.video_mask.sum(1, keepdim=True).clamp_min(1)  # (N, n) chance
    out: dict[str, Any] = {"n_tokens": {}, "chance": {}}
    masks = {tag: (pos == upos_id(tag)) & has_gold for tag in GROUNDING_POS}
    masks["all"] = torch.stack(list(masks.values())).any(0)  # (N, n)
    for name, mask in masks.items():
        correct, scored = grounding_counts(sim, emb.gold_frames, mask, emb.video_mask)
        out[name] = _pct(correct, scored)
        out["n_tokens"][name] = scored
        out["chance"][name] = _pct(float(frac[mask].sum()), scored)
    out["pos_source"] = "world" if world is not None else "spacy"
    return out
