"""One TACo training step: L = L1 + lambda_t * L2 + L3 (paper Eq. 6, docs/method.md §3-4).

`taco_step` runs the encoders once and hands their outputs to the pure functions of
`taco_lite.losses` and `taco_lite.cascade`. Those functions come in through a `LossFns` bundle,
so that a notebook can swap in a student's own `token_nce` (say) and train with it:

    fns = LossFns(token_nce=my_token_nce)
    out = taco_step(model, batch, tcfg, fns)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from taco_lite.batch import Batch
from taco_lite.config import TrainConfig
from taco_lite.model import TacoModel

_DEFAULT_HOME = {
    "sentence_nce": "losses",
    "token_video_scores": "losses",
    "token_nce": "losses",
    "fusion_nce": "losses",
    "pair_scores": "cascade",
    "hard_negatives": "cascade",
    "random_negatives": "cascade",
    "fusion_pairs": "cascade",
}


@dataclass
class LossFns:
    """The functional core of docs/method.md §8; any field left as None gets the package's own.

    Signatures (B pairs, n tokens, m frames, d width, k = k_neg):
      sentence_nce(text_global[B,d], video_global[B,d], tau, symmetric) -> scalar   (L1, Eq. 3)
      token_video_scores(text_tokens[B,n,d], video_tokens[B,m,d], video_mask[B,m]) -> [B,n,B]
      token_nce(token_scores[B,n,B], token_weights[B,n], tau) -> scalar           (L2, Eq. 4)
      pair_scores(sim_global[B,B], token_scores[B,n,B], token_mask[B,n]) -> [B,B]  (Sec. 3.3)
      hard_negatives(pair_scores[B,B], k[, caption_ids]) -> ([B,k], [B,k])
      random_negatives(B, k, generator=None, device=None) -> ([B,k], [B,k])
      fusion_pairs(videos_for_text[B,k], texts_for_video[B,k]) -> (text_idx, video_idx)
      fusion_nce(logits[2B,1+k]) -> scalar, positive in column 0                   (L3, Eq. 5)
    """

    sentence_nce: Callable | None = None
    token_video_scores: Callable | None = None
    token_nce: Callable | None = None
    pair_scores: Callable | None = None
    hard_negatives: Callable | None = None
    random_negatives: Callable | None = None
    fusion_pairs: Callable | None = None
    fusion_nce: Callable | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) is None:
                setattr(self, f.name, _package_fn(f.name))


def _package_fn(name: str) -> Callable:
    home = _DEFAULT_HOME[name]
    try:
        module = __import__(f"taco_lite.{home}", fromlist=[name])
        return getattr(module, name)
    except (ImportError, AttributeError) as err:
        raise ImportError(
            f"taco_lite.{home}.{name} is not available ({err}); pass your own, e.g. "
            f"LossFns({name}=my_{name})"
        ) from err


@dataclass
class StepOutput:
    """Everything one step produced. Disabled loss terms are None (never NaN)."""

    total: torch.Tensor  # scalar: L1 + lambda_t * L2 + L3 over the enabled terms
    L1: torch.Tensor | None = None
    L2: torch.Tensor | None = None
    L3: torch.Tensor | None = None
    fusion_acc: float | None = None  # share of the 2B anchors whose positive scores highest
    videos_for_text: torch.Tensor | None = None  # (B, k) the negatives L3 saw
    texts_for_video: torch.Tensor | None = None  # (B, k)
    fusion_pairs: int = 0  # pairs through f_m: 2B(k+1) instead of B^2 (the cascade's saving)

    def scalars(self) -> dict[str, float | None]:
        """Plain floats for logging (None for disabled terms)."""

        def f(t: torch.Tensor | None) -> float | None:
            return None if t is None else float(t.detach())

        return {
            "loss": f(self.total),
            "L1": f(self.L1),
            "L2": f(self.L2),
            "L3": f(self.L3),
            "fusion_acc": self.fusion_acc,
        }


def check_k_neg(k_neg: int, B: int) -> None:
    """K' hard negatives per anchor need at least K' + 1 pairs in the batch (docs/method.md §4)."""
    if k_neg > B - 1:
        raise ValueError(
            f"k_neg={k_neg} but this batch has B={B} pairs, so each anchor has only {B - 1} "
            f"negatives: lower k_neg to at most {B - 1} or raise batch_size"
        )


def taco_step(
    model: TacoModel,
    batch: Batch,
    tcfg: TrainConfig,
    fns: LossFns | None = None,
    generator: torch.Generator | None = None,
) -> StepOutput:
    """Compute the enabled TACo losses on one batch (no backward, no optimiser).

    The cascade (Sec. 3.3) needs no extra encoder pass: its sampling score
    a(i, j) = s1(i, j) + sum over tokens of interest of s(i, p, j) is computed under no_grad
    from the very tensors that L1 and L2 use. `generator` drives random negatives only.
    """
    fns = fns if fns is not None else LossFns()
    terms = tcfg.terms
    mcfg = model.cfg
    B = len(batch)
    k = tcfg.k_neg
    if "L3" in terms:
        check_k_neg(k, B)

    emb = model.embed(batch)
    out = StepOutput(total=torch.zeros((), device=batch.text_ids.device))
    if "L1" in terms:
        out.L1 = fns.sentence_nce(
            emb.text_global, emb.video_global, tau=mcfg.tau1, symmetric=tcfg.symmetric_l1
        )
        out.total = out.total + out.L1
    token_scores = None
    if "L2" in terms:
        token_scores = _token_scores_fn(fns, tcfg)(
            emb.text_tokens, emb.video_tokens, batch.video_mask
        )  # (B, n, B)
        out.L2 = fns.token_nce(token_scores, batch.token_weights, tau=mcfg.tau2)
        out.total = out.total + tcfg.lambda_t * out.L2
    if "L3" not in terms:
        return out

    with torch.no_grad():
        if tcfg.negatives == "cascade":
            if token_scores is None:  # L2 is off: token scores still feed the sampler
                token_scores = fns.token_video_scores(
                    emb.text_tokens, emb.video_tokens, batch.video_mask
                )  # (B, n, B)
            sim_global = emb.text_global @ emb.video_global.T  # (B, B) s1, no tau
            scores = fns.pair_scores(
                sim_global.float(), token_scores.detach().float(), batch.token_interest
            )  # (B, B)
            if tcfg.drop_false_negatives:
                vft, tfv = fns.hard_negatives(scores, k, caption_ids=batch.caption_ids)
            else:
                vft, tfv = fns.hard_negatives(scores, k)  # (B, k), (B, k)
        else:
            vft, tfv = fns.random_negatives(B, k, generator=generator, device=scores_device(batch))
    text_idx, video_idx = fns.fusion_pairs(vft, tfv)  # (2B(k+1),) each
    # index_select, not `tokens[idx]`: the backward of advanced indexing with repeated indices
    # is index_put_(accumulate=True), whose multi-threaded CPU kernel adds in a varying order,
    # so two runs with the same seed drift apart from step 2 (issue 11). index_select's
    # backward (index_add_) is deterministic on CPU, at no cost.
    logits = model.fuse(
        emb.text_tokens.index_select(0, text_idx),  # (2B(k+1), n, d)
        batch.text_mask.index_select(0, text_idx),
        emb.video_tokens.index_select(0, video_idx),  # (2B(k+1), m, d)
        batch.video_mask.index_select(0, video_idx),
    )  # (2B(k+1),)
    logits = logits.float().view(2 * B, k + 1)  # (2B, 1+k): rows 0..B-1 text anchors
    out.L3 = fns.fusion_nce(logits)
    out.total = out.total + out.L3
    with torch.no_grad():
        wins = logits[:, 0] > logits[:, 1:].max(dim=1).values  # (2B,) strict: ties lose
        out.fusion_acc = float(wins.float().mean())
    out.videos_for_text, out.texts_for_video = vft, tfv
    out.fusion_pairs = int(text_idx.numel())
    return out


def _token_scores_fn(fns: LossFns, tcfg: TrainConfig) -> Callable:
    """The package's token scores become the memory-bounded ones when `token_chunk` > 0.

    A learner's own `token_video_scores` is always used as given.
    """
    from taco_lite import losses

    if tcfg.token_chunk > 0 and fns.token_video_scores is losses.token_video_scores:
        return functools.partial(losses.token_video_scores_lowmem, chunk_size=tcfg.token_chunk)
    return fns.token_video_scores


def scores_device(batch: Batch) -> torch.device:
    return batch.text_ids.device
