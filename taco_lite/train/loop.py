"""The training loop. Its command line, `python -m taco_lite.train --preset fast`, is `cli.py`.

`train()` is deliberately plain (nanoGPT style): Adam, linear warm-up then linear decay,
gradient clipping, optional bf16 autocast and torch.compile. It writes `last.pt` (full state)
every `ckpt_every` steps and after every `ckpt_minutes` of training, so a killed run loses at
most a couple of minutes: `python -m taco_lite.train ... --resume` continues it.

Reproducibility: the batch order is a pure function of (seed, epoch), the random negatives
have their own seeded generator, dropout uses the seeded global RNG, and every one of these
states travels in the checkpoint. With `deterministic=True` (the default) the same seed on the
same machine with the same thread count gives bit-identical histories and weights, and a run
killed and resumed ends exactly where an unbroken one does (docs/determinism.md).

A resumed run must use the configuration it was started with: `check_resume_config` refuses
any change that alters the numbers and names each differing field.

The maths of one step lives in `step.py` (`taco_step`, `LossFns`), re-exported here.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from taco_lite.config import ModelConfig, TrainConfig, config_from_dict
from taco_lite.model import TacoModel
from taco_lite.runtime.checkpoint import (
    config_differences,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
)
from taco_lite.runtime.device import (
    amp_context,
    compile_encoders,
    deterministic_mode,
    resolve_device,
)
from taco_lite.train.guards import DivergenceGuard, views_from_tensor, views_to_tensor
from taco_lite.train.schedule import (
    epoch_batches,
    iterate_batches,
    pair_view_summary,
    warmup_then_linear,
)
from taco_lite.train.step import LossFns, StepOutput, taco_step

__all__ = [
    "LossFns",
    "StepOutput",
    "TrainResult",
    "check_resume_config",
    "resolve_device",
    "taco_step",
    "train",
]

# TrainConfig fields that cannot change the numbers: a resumed run takes the new values.
FREE_ON_RESUME = ("progress", "log_every", "ckpt_dir", "ckpt_every", "ckpt_minutes", "num_workers")
# Fields a resumed run may change only with override=True (--override-resume-config): the run
# goes on, but no longer reproduces an unbroken one (steps stretches the LR decay).
OVERRIDABLE_ON_RESUME = ("steps", "device", "compile", "deterministic")


@dataclass
class TrainResult:
    model: TacoModel
    history: list[dict[str, Any]]  # one dict per step: step, lr, loss, L1, L2, L3, fusion_acc
    checkpoint: Path | None  # last.pt: full state, resumable
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: list[str] | None = None
    datasets: Mapping[str, Any] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def load_world_datasets(
    model_cfg: ModelConfig, train_cfg: TrainConfig, splits: Sequence[str] = ("train", "test")
) -> tuple[dict[str, Any], Any]:
    """The toy world's datasets and vocabulary (tokens of interest from `train_cfg.pos_tags`).

    With `train_cfg.data` set (`--world PATH`, `--features PATH`) that data set instead.
    """
    if train_cfg.data:
        from taco_lite.data.sources import load_datasets

        if train_cfg.endless_data:
            raise ValueError(
                "endless_data renders the shipped world: drop it with --world/--features"
            )
        return load_datasets(
            train_cfg.data, train_cfg.pos_tags, model_cfg.max_tokens, model_cfg.max_frames, splits
        )
    from taco_lite.data import build_datasets
    from taco_lite.world import load_world

    world = load_world()
    datasets, vocab, idf = build_datasets(
        world,
        pos_tags=train_cfg.pos_tags,
        splits=tuple(splits),
        max_tokens=model_cfg.max_tokens,
    )
    if train_cfg.endless_data:  # fresh clips every epoch, as many pairs as the train split
        from taco_lite.data.endless import EndlessTrainSet

        datasets["train"] = EndlessTrainSet(
            world, vocab, idf, seed=train_cfg.seed, pos_tags=train_cfg.pos_tags,
            max_tokens=model_cfg.max_tokens, pairs_per_epoch=len(world.split("train")),
        )  # fmt: skip
    return datasets, vocab


def check_resume_config(
    state: Mapping[str, Any],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    override: bool = False,
    where: str = "the checkpoint",
) -> TrainConfig:
    """The TrainConfig a resumed run really uses, or ValueError naming every differing field.

    The model config must match exactly. Of the TrainConfig, FREE_ON_RESUME fields (progress
    bar, logging, checkpoint folder and cadence, workers) take the new values; a change in
    OVERRIDABLE_ON_RESUME (steps, device, compile, deterministic) needs `override=True`; any
    other change (losses, seed, lr, negatives, batch size, ...) is refused. `steps` may never
    fall below the checkpoint's step.
    """
    step = int(state["step"])
    new_model = dataclasses.asdict(model_cfg)
    problems = [f"model {d}" for d in config_differences(state.get("model_cfg"), new_model)]
    saved_train = state.get("train_cfg")
    if saved_train is None:  # a checkpoint without its TrainConfig: nothing to compare
        used = train_cfg
    else:
        new_train = dataclasses.asdict(train_cfg)
        kept = dict(new_train)  # fields the checkpoint lacks (older kit) take the new values
        for k, new in new_train.items():
            if k in FREE_ON_RESUME or k not in saved_train or saved_train[k] == new:
                continue
            if k in OVERRIDABLE_ON_RESUME and override:
                continue
            kept[k] = saved_train[k]
            diff = f"{k}: checkpoint {saved_train[k]!r}, here {new!r}"
            if k in OVERRIDABLE_ON_RESUME:
                diff += " (allowed with --override-resume-config)"
            problems.append(diff)
        used = config_from_dict(TrainConfig, kept)
    if problems:
        raise ValueError(
            f"cannot resume from {where} with a different configuration; it differs in: "
            + "; ".join(problems)
            + ". Resume with the run's own settings (same --preset and flags), or start a new "
            "run in another --out folder"
        )
    if used.steps < step:
        raise ValueError(
            f"{where} is at step {step} but steps is {used.steps}: a run cannot end before the "
            f"point it has reached. Use --steps {step} or more, or evaluate the checkpoint as is"
        )
    return used


def _vocab_words(vocab: Any) -> list[str] | None:
    if vocab is None:
        return None
    return list(vocab.to_list()) if hasattr(vocab, "to_list") else [str(w) for w in vocab]


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    datasets: Mapping[str, Any] | None = None,
    vocab: Any = None,
    fns: LossFns | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    resume: str | Path | None = None,
    collate_fn: Callable | None = None,
    stop_at: int | None = None,
    override_resume_config: bool = False,
    record: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a TacoModel; returns the model, the per-step history and the checkpoint path.

    datasets: {"train": ..., ...} of items for `collate_fn` (default `data.collate`); None loads
      the toy world. vocab: a Vocab or list of words, stored in checkpoints and used to size
      the text embedding (`model_cfg.vocab_size = len(vocab)`).
    log: called with each step's dict. resume: a checkpoint written by a run of the same
      configs (`check_resume_config`; `override_resume_config=True` lets steps / device /
      compile / deterministic change); training continues at its step, with its RNG states.
      stop_at: stop after this global step (a checkpoint is written), e.g. to split a run.
    record: plain values every checkpoint keeps in its "extra" (the CLI's preset and the
      data's fingerprint, `runtime.provenance`); a resumed run keeps the checkpoint's.
    """
    t0 = time.perf_counter()
    fns = fns if fns is not None else LossFns()
    state = load_checkpoint(resume) if resume is not None else None
    if datasets is None:
        datasets, vocab = load_world_datasets(model_cfg, train_cfg)
    if collate_fn is None:
        from taco_lite.data import collate as collate_fn
    words = _vocab_words(vocab)
    if state is not None:
        saved_words = state.get("vocab")
        if words is not None and saved_words is not None and words != saved_words:
            raise ValueError(
                f"cannot resume from {resume}: its vocabulary ({len(saved_words)} words) is not "
                f"this run's ({len(words)} words), so the word embeddings would mean other "
                "words. Resume with the data (world, pos_tags) the run was started with"
            )
        words = words if words is not None else saved_words
        if words is not None:
            model_cfg = dataclasses.replace(model_cfg, vocab_size=len(words))
        train_cfg = check_resume_config(
            state, model_cfg, train_cfg, override_resume_config, where=str(resume)
        )
        model_cfg = config_from_dict(ModelConfig, state["model_cfg"])
    elif words is not None:
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(words))
    train_set = datasets["train"]
    B = train_cfg.batch_size
    if len(train_set) < B:
        raise ValueError(
            f"the train split has {len(train_set)} pairs but batch_size is {B}: "
            "lower batch_size or use a bigger world"
        )

    device = resolve_device(train_cfg.device)
    torch.manual_seed(train_cfg.seed)
    model = TacoModel(model_cfg).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_then_linear(train_cfg.warmup_steps, train_cfg.steps)
    )
    neg_generator = torch.Generator().manual_seed(train_cfg.seed + 1)  # random negatives
    step, history, views = 0, [], Counter()  # views: (epoch if endless else 0, seg_id) -> seen
    kept = {k: v for k, v in (record or {}).items()}
    if state is not None:
        step = restore_training_state(state, model, optimizer, scheduler)
        history = list(state["extra"].get("history", []))
        neg_generator.set_state(state["extra"]["neg_generator"])
        views = views_from_tensor(state["extra"].get("views"))  # the whole run's counts
        kept.update({k: state["extra"][k] for k in kept if k in state["extra"]})
    if train_cfg.compile:
        compile_encoders(model)

    ckpt_dir = Path(train_cfg.ckpt_dir)
    last = ckpt_dir / "last.pt"

    def save(path: Path, full: bool = True) -> Path:
        return save_checkpoint(
            path,
            model,
            optimizer if full else None,
            scheduler if full else None,
            step,
            model_cfg,
            train_cfg,
            words,
            extra={
                **kept,
                "history": history,
                "neg_generator": neg_generator.get_state(),
                "views": views_to_tensor(views),
            }
            if full
            else dict(kept),  # fmt: skip
            with_rng=full,
        )

    end = train_cfg.steps if stop_at is None else min(stop_at, train_cfg.steps)
    steps_per_epoch = len(train_set) // B
    endless = hasattr(train_set, "for_epoch")  # data.EndlessTrainSet: fresh pairs per epoch
    data_seconds, timer = 0.0, [0.0]  # building epochs / waiting for batches (collate)
    t_loop = time.perf_counter()
    bar = _progress(train_cfg, step)
    last_saved = time.monotonic()
    guard = DivergenceGuard(history, ckpt_dir, train_cfg.lr)
    model.train()
    with deterministic_mode(train_cfg.deterministic, device):
        while step < end:
            epoch, offset = divmod(step, steps_per_epoch)
            t_data = time.perf_counter()
            epoch_set = train_set.for_epoch(epoch) if endless else train_set
            data_seconds += time.perf_counter() - t_data
            index_lists = epoch_batches(len(epoch_set), B, train_cfg.seed, epoch)[offset:]
            batches = iterate_batches(epoch_set, index_lists, collate_fn, train_cfg.num_workers)
            for batch in _timed(batches, timer):
                if batch.seg_ids is not None:
                    views.update((epoch if endless else 0, s) for s in batch.seg_ids.tolist())
                batch = batch.to(device, non_blocking=True)
                lr = scheduler.get_last_lr()[0]
                with amp_context(device, train_cfg.amp):
                    out = taco_step(model, batch, train_cfg, fns, generator=neg_generator)
                optimizer.zero_grad(set_to_none=True)
                out.total.backward()
                if train_cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                row = {"step": step, "epoch": epoch, "lr": lr, **out.scalars()}
                guard.check(row)  # TrainingDiverged: nothing more is saved
                history.append(row)
                if log is not None:
                    log(row)
                if bar is not None:
                    bar.update(1)
                    if step % train_cfg.log_every == 0 or step == end:
                        bar.set_postfix(_postfix(row))
                by_steps = train_cfg.ckpt_every and step % train_cfg.ckpt_every == 0
                by_time = (
                    train_cfg.ckpt_minutes
                    and time.monotonic() - last_saved >= 60 * train_cfg.ckpt_minutes
                )
                if (by_steps or by_time) and step < end:  # the end is saved below
                    save(last)
                    last_saved = time.monotonic()
                if step >= end:
                    break
    if bar is not None:
        bar.close()
    loop_seconds = time.perf_counter() - t_loop
    data_seconds += timer[0]
    checkpoint = save(last)
    if step >= train_cfg.steps:
        save(ckpt_dir / "model.pt", full=False)  # slim: weights + configs + vocab, to ship
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        checkpoint=checkpoint,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        vocab=words,
        datasets=datasets,
        seconds=time.perf_counter() - t0,
        extra={
            "pair_views": pair_view_summary(views),
            "views": views,  # the raw counts of the whole run (across resumes)
            "data_seconds": data_seconds,
            "loop_seconds": loop_seconds,
            "data_share": data_seconds / max(loop_seconds, 1e-9),
        },
    )


def _timed(items: Iterator, acc: list[float]) -> Iterator:
    """Yield from `items`, adding the seconds spent waiting for each item to acc[0]."""
    while True:
        t0 = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            return
        acc[0] += time.perf_counter() - t0
        yield item


def _progress(train_cfg: TrainConfig, initial: int):
    if not train_cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=train_cfg.steps, initial=initial, desc="TACo", dynamic_ncols=True)


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    keys = ("L1", "L2", "L3", "fusion_acc")
    return {k: f"{record[k]:.3f}" for k in keys if record.get(k) is not None}
