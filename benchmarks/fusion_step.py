"""Benchmark 2: one training step with cascade negatives vs all B^2 pairs vs random negatives.

The fusion encoder f_m reads a (text, video) pair jointly, so it costs one transformer pass per
*pair*. Feeding it every pair of the batch costs B^2 passes; TACo's cascade (Sec. 3.3) feeds it
each anchor's positive and its K' hardest negatives, 2B(K'+1) passes, and finds those negatives
for free from the L1/L2 scores. This script times a full training step (encoders + fusion,
forward + backward + Adam) for the three choices, with the default preset's model.

    python -m benchmarks.fusion_step --device cpu --write

"All pairs" is not a kit feature: it is built here, with the same L1, L2 and the same L3
(`losses.fusion_nce`) over 2B anchors whose positive sits on the diagonal of the (B, B) fusion
scores (moved to column 0). Batches are synthetic (`batch.synthetic_batch`) with the toy
world's sizes, so no spaCy and no world are needed; only shapes matter for the time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmarks import common
from taco_lite.batch import Batch, synthetic_batch
from taco_lite.cascade import fusion_pair_count
from taco_lite.config import PRESETS, ModelConfig, TrainConfig
from taco_lite.model import TacoModel
from taco_lite.runtime.device import amp_context
from taco_lite.train.step import LossFns, taco_step

NAME = "fusion_step"


def sizes(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"Bs": [6], "k": 2, "n": 6, "m": 4, "vocab": 20,
                "model": {"d": 16, "heads": 2, "video_layers": 1, "text_layers": 1,
                          "fusion_layers": 1}}  # fmt: skip
    return {"Bs": [32, 64, 128], "k": 8, "n": 16, "m": 10, "vocab": 70, "model": {}}


def all_pairs_loss(model: TacoModel, batch: Batch, tcfg: TrainConfig, fns: LossFns) -> torch.Tensor:
    """L1 + lambda_t * L2 + L3 with the fusion head on all B^2 pairs (the cost TACo avoids).

    L3 keeps the same form as in `taco_step`: 2B anchor rows (B texts, B videos), positive in
    column 0, here followed by all B - 1 other items instead of K' sampled ones.
    """
    mcfg = model.cfg
    B = len(batch)
    emb = model.embed(batch)
    L1 = fns.sentence_nce(emb.text_global, emb.video_global, tau=mcfg.tau1)
    token_scores = fns.token_video_scores(emb.text_tokens, emb.video_tokens, batch.video_mask)
    L2 = fns.token_nce(token_scores, batch.token_weights, tau=mcfg.tau2)
    idx = torch.arange(B, device=batch.text_ids.device)
    text_idx, video_idx = idx.repeat_interleave(B), idx.repeat(B)  # (B^2,) row-major (i, j)
    s3 = model.fuse(
        emb.text_tokens[text_idx], batch.text_mask[text_idx],
        emb.video_tokens[video_idx], batch.video_mask[video_idx],
    ).float().view(B, B)  # (B, B), s3(text i, video j)  # fmt: skip
    others = torch.arange(B - 1, device=idx.device)[None, :]  # (1, B-1)
    others = others + (others >= idx[:, None]).long()  # (B, B-1), every index but the anchor
    order = torch.cat([idx[:, None], others], dim=1)  # (B, B): positive first
    rows = torch.cat([s3, s3.T], dim=0)  # (2B, B): text anchors, then video anchors
    L3 = fns.fusion_nce(rows.gather(1, order.repeat(2, 1)))  # (2B, B) -> scalar
    return L1 + tcfg.lambda_t * L2 + L3


def make_step(
    model: TacoModel,
    opt: torch.optim.Optimizer,
    batch: Batch,
    tcfg: TrainConfig,
    mode: str,
    device: torch.device,
) -> Callable[[], None]:
    """One optimiser step as in `train.train`: forward, backward, clip, Adam."""
    fns = LossFns()
    gen = torch.Generator().manual_seed(1)

    def step() -> None:
        with amp_context(device, tcfg.amp):
            if mode == "all":
                loss = all_pairs_loss(model, batch, tcfg, fns)
            else:
                loss = taco_step(model, batch, tcfg, fns, generator=gen).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()

    return step


def run(args: Any, device: torch.device) -> dict[str, Any]:
    s = sizes(args.tiny)
    mcfg, base_tcfg = PRESETS["default"].configs()
    mcfg = dataclasses.replace(mcfg, vocab_size=s["vocab"], **s["model"])
    ModelConfig.__post_init__(mcfg)
    k = s["k"]
    torch.manual_seed(args.seed)
    model = TacoModel(mcfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=base_tcfg.lr)
    rows = []
    for B in s["Bs"]:
        batch = synthetic_batch(B, s["n"], s["m"], vocab_size=s["vocab"], seed=args.seed)
        batch = batch.to(device)
        tcfg = {
            neg: dataclasses.replace(base_tcfg, batch_size=B, k_neg=k, negatives=neg,
                                     device=device.type, amp=args.amp)
            for neg in ("cascade", "random")
        }  # fmt: skip
        t = common.interleaved(
            {
                "cascade": make_step(model, opt, batch, tcfg["cascade"], "cascade", device),
                "random": make_step(model, opt, batch, tcfg["random"], "random", device),
                "all": make_step(model, opt, batch, tcfg["cascade"], "all", device),
            },
            device,
            args.repeats,
        )
        row = {"B": B, "k_neg": k, "pairs_cascade": fusion_pair_count(B, k), "pairs_all": B * B,
               **{f"{name}_s": sec for name, sec in t.items()}}  # fmt: skip
        row["peak_bytes"] = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                             else common.rss_peak_bytes())  # fmt: skip
        row["all_over_cascade"] = t["all"] / t["cascade"]
        row["all_over_random"] = t["all"] / t["random"]
        row["cascade_over_random"] = t["cascade"] / t["random"]
        rows.append(row)
        print(
            f"B={B}: cascade {common.fmt_s(t['cascade'])}, random {common.fmt_s(t['random'])}, "
            f"all pairs {common.fmt_s(t['all'])}",
            flush=True,
        )
    model_desc = {
        f: getattr(mcfg, f)
        for f in ("d", "video_layers", "text_layers", "fusion_layers", "heads", "mlp_ratio")
    }
    return {"sizes": {kk: v for kk, v in s.items() if kk != "Bs"}, "model": model_desc,
            "amp": args.amp, "rows": rows}  # fmt: skip


def render(res: dict[str, Any], info: dict[str, Any], cmd: str, device: torch.device) -> str:
    s = res["sizes"]
    rows = [
        [r["B"], f"{r['pairs_cascade']:,} / {r['pairs_all']:,}",
         common.fmt_ratio(r["pairs_all"] / r["pairs_cascade"]),
         common.fmt_s(r["cascade_s"]), common.fmt_s(r["random_s"]), common.fmt_s(r["all_s"]),
         f"**{common.fmt_ratio(r['all_over_cascade'])}**", common.fmt_ratio(r["all_over_random"]),
         common.fmt_ratio(r["cascade_over_random"]), common.fmt_bytes(r["peak_bytes"])]
        for r in res["rows"]
    ]  # fmt: skip
    table = common.markdown_table(
        ["B", "fusion pairs cascade (=random) / all", "pair ratio", "step cascade",
         "step random", "step all pairs", "all / cascade", "all / random", "cascade / random",
         "process peak memory so far"],
        rows,
    )  # fmt: skip
    m = res["model"]
    notes = [
        f"model: the `default` preset's ModelConfig (d = {m['d']}, {m['video_layers']} video / "
        f"{m['text_layers']} text / {m['fusion_layers']} fusion layers, {m['heads']} heads), "
        f"pixel frames 32x32; K' = {s['k']}; synthetic batches with n <= {s['n']} tokens and "
        f"m <= {s['m']} frames (the world's sizes); amp = {res['amp']}.",
        "a step = encoders + L1 + L2 + sampling + fusion + L3, forward + backward + gradient "
        "clipping + Adam, as in `train.train`; median of interleaved rounds after a warm-up.",
        "cascade and random feed the same 2B(K'+1) pairs to fusion; cascade / random is the "
        "price of the sampling itself (pair scores + two sorts).",
        "process peak memory: peak RSS (CPU) or torch.cuda.max_memory_allocated (CUDA) of the "
        "whole run up to this B; the all-pairs step sets it (B^2 fusion activations).",
    ]
    by_b = {r["B"]: r for r in res["rows"]}
    for r in res["rows"]:
        if r["pairs_all"] > r["pairs_cascade"] and r["all_s"] > r["cascade_s"]:
            per_pair = (r["all_s"] - r["cascade_s"]) / (r["pairs_all"] - r["pairs_cascade"])
            rest = r["cascade_s"] - r["pairs_cascade"] * per_pair
            r["fit"] = {"per_pair_s": per_pair, "rest_s": rest}
    if by_b.get(128, {}).get("fit"):
        fit = by_b[128]["fit"]
        share = 1 - fit["rest_s"] / by_b[128]["cascade_s"]
        notes.append(
            "where the time goes at B = 128, fitting step = rest + pairs x cost per pair to the "
            f"cascade and all-pairs times: {1e3 * fit['per_pair_s']:.2f} ms of fusion "
            f"(fwd+bwd) per pair and {common.fmt_s(fit['rest_s'])} for everything else "
            f"(pixel CNN + text encoder, L1, L2, sampling, Adam); fusion is {100 * share:.0f}% "
            "of the cascade step, so the step ratio all / cascade cannot reach the pair ratio."
        )
    if 128 in by_b:
        r = by_b[128]
        ratio = r["all_over_cascade"]
        if ratio >= 4:
            notes.append(
                f"target cascade >= 4x faster than all pairs at B = 128: met "
                f"({common.fmt_ratio(ratio)})."
            )
        else:
            notes.append(
                f"target cascade >= 4x faster than all pairs at B = 128: MISSED "
                f"({common.fmt_ratio(ratio)}, {4 - ratio:.1f}x short). The pair ratio is "
                f"{common.fmt_ratio(r['pairs_all'] / r['pairs_cascade'])}; the rest of the "
                "step (encoders, L1, L2, Adam) is paid by both and dilutes it."
            )
    return common.section(
        f"Fusion cost of one training step on {device.type}", info, cmd, table, notes
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(NAME, "One training step: cascade vs all B^2 pairs vs random.")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (as the gpu preset)")
    args = p.parse_args(argv)
    device = common.pick_device(args.device)
    return common.run_and_report(NAME, args, argv, device, run, render)


if __name__ == "__main__":
    main()
