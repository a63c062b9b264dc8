"""The models and cached embeddings behind the explorers (`widgets.py`): load once, reuse.

`load_explorer_models` finds the checkpoints ("load if present, else train", as the UvA DL
notebooks do), and `ExplorerState.build` runs each model's encoders once over the test split
(`inference.embed_dataset`), so that every widget callback only does a few small matrix
products: the retrieval browser stays under 0.5 s per query on a CPU.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import taco_lite
from taco_lite.text import UNK_ID, Vocab

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "STUDENT_CHECKPOINT",
    "ExplorerModel",
    "EncodedCaption",
    "ExplorerState",
    "repo_root",
    "load_explorer_models",
    "encode_caption",
]

# name shown in the model dropdown -> (shipped checkpoint, losses of the fallback training run)
DEFAULT_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "TACo": ("data/checkpoints/taco.pt", "L1+L2+L3"),
    "baseline (L1)": ("data/checkpoints/baseline_l1.pt", "L1"),
}
STUDENT_NAME = "student"
STUDENT_CHECKPOINT = "runs/student/model.pt"  # where notebook 05 saves the student's model


def repo_root() -> Path:
    """The repository root (see `taco_lite.repo_root`)."""
    return taco_lite.repo_root()


@dataclass
class ExplorerModel:
    """One trained model as the explorers use it."""

    name: str
    model: Any  # TacoModel, eval mode, CPU
    vocab: Vocab
    model_cfg: Any  # ModelConfig
    train_cfg: Any  # TrainConfig or None
    source: str  # where it came from (a path, or "trained now: ...")

    @property
    def losses(self) -> str:
        return getattr(self.train_cfg, "losses", "L1+L2+L3")

    @property
    def has_fusion(self) -> bool:
        """Only a model trained with L3 has a meaningful fusion score s3."""
        return "L3" in self.losses


def _train_fallback(name: str, losses: str, out: Path, log: Callable[[str], None]) -> Path:
    from taco_lite.train import main as train_main

    log(f"{name}: no shipped checkpoint, training the fast preset ({losses}) into {out} ...")
    train_main(["--preset", "fast", "--losses", losses, "--out", str(out), "--quiet"])
    return out / "model.pt"


def _student_path(root: Path) -> Path | None:
    for base in (root, Path.cwd(), Path.cwd().parent):
        p = base / STUDENT_CHECKPOINT
        if p.is_file():
            return p
    return None


def _load(name: str, path: Path) -> ExplorerModel:
    from taco_lite.runtime.checkpoint import load_model

    model, words, (model_cfg, train_cfg) = load_model(path, map_location="cpu")
    if words is None:
        raise ValueError(
            f"{path} holds no vocabulary, so typed captions cannot be encoded: use a "
            "checkpoint written by taco_lite.train (model.pt)"
        )
    return ExplorerModel(
        name, model.eval(), Vocab.from_list(words), model_cfg, train_cfg, str(path)
    )


def load_explorer_models(
    paths: Mapping[str, str | os.PathLike] | None = None,
    train_if_missing: bool = True,
    include_student: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, ExplorerModel]:
    """The models of the dropdowns: {"TACo", "baseline (L1)", "student" if present}.

    paths: {name: checkpoint}, used as given (a missing or unreadable file raises). Without it,
    each default model is loaded from `data/checkpoints/` (shipped), else from an earlier
    fallback run in `runs/explorer_<name>/model.pt`, else trained now with the fast preset
    (about a minute each on a 2-core CPU) when `train_if_missing`. A fallback run that no
    longer loads (written by an older taco_lite) is trained again. The student's model is added
    when notebook 05 saved one at `runs/student/model.pt` (repo root or the notebook's folder).
    """
    from taco_lite.runtime.checkpoint import CheckpointError

    if paths is not None:
        return {name: _load(name, Path(p)) for name, p in paths.items()}
    root = repo_root()
    models: dict[str, ExplorerModel] = {}
    for name, (rel, losses) in DEFAULT_CHECKPOINTS.items():
        slug = "taco" if losses == "L1+L2+L3" else "baseline_l1"
        shipped, cached = root / rel, root / "runs" / f"explorer_{slug}" / "model.pt"
        if shipped.is_file():
            models[name] = _load(name, shipped)
            continue
        if cached.is_file():
            try:
                models[name] = _load(name, cached)
                continue
            except (CheckpointError, RuntimeError, ValueError) as err:
                log(f"{name}: {cached} does not fit this taco_lite ({type(err).__name__})")
        if train_if_missing:
            models[name] = _load(name, _train_fallback(name, losses, cached.parent, log))
        else:
            log(f"{name}: no usable checkpoint at {shipped} or {cached}; skipped")
    student = _student_path(root) if include_student else None
    if student is not None:
        try:
            models[STUDENT_NAME] = _load(STUDENT_NAME, student)
        except (CheckpointError, RuntimeError, ValueError) as err:
            log(f"your model at {student} does not load ({err}); re-run notebook 05 to save it")
    if not models:
        raise FileNotFoundError(
            "no model for the explorers: ship data/checkpoints/taco.pt, or call "
            "load_explorer_models(train_if_missing=True)"
        )
    return models


@dataclass
class EncodedCaption:
    """A typed caption after the checkpoint's tokenizer, spaCy and the text encoder."""

    caption: str
    words: list[str]  # [CLS] w1 .. wk [SEP] as the model reads them, unknown words as [UNK]
    typed: list[str]  # the same positions as typed ('' for [CLS]/[SEP])
    tags: list[str]  # UPOS per position ('' for [CLS]/[SEP])
    interest: torch.Tensor  # (n,) bool, tokens of interest
    token_weights: torch.Tensor  # (n,) idf weights of Eq. 4, sum 1 or all 0
    text_tokens: torch.Tensor  # (n, d), as in `TacoModel.embed` (normalised if the model is)
    text_global: torch.Tensor  # (d,)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def all_unknown(self) -> bool:
        ids = self.words[1:-1]
        return bool(ids) and all(w == "[UNK]" for w in ids)


@torch.no_grad()
def encode_caption(em: ExplorerModel, caption: str, idf: dict[str, float]) -> EncodedCaption:
    """Encode one typed caption as `data.encode_text_item` + `TacoModel.embed` would.

    Raises `pos.CaptionError` for an empty or blank caption (the widgets turn it into a
    message). Unknown words, over-long captions and captions without tokens of interest are
    legal: they are encoded and explained in `notes`.
    """
    from taco_lite.data import encode_text_item
    from taco_lite.text.pos import check_caption, parse_pos_tags

    cfg = em.model_cfg
    pos_tags = getattr(em.train_cfg, "pos_tags", "noun+verb")
    report = check_caption(caption, em.vocab, pos_tags=pos_tags, max_tokens=cfg.max_tokens)
    if report.tags is None:
        raise RuntimeError("\n".join(report.problems))
    item = encode_text_item(
        report.tokens, report.tags, em.vocab, idf, parse_pos_tags(pos_tags), cfg.max_tokens
    )
    ids = item["text_ids"]  # (n,)
    k = ids.numel() - 2
    mask = torch.ones(1, ids.numel(), dtype=torch.bool)  # (1, n)
    y = em.model.encode_text(ids[None], mask)  # (1, n, d)
    glob = em.model.global_text(y)  # (1, d)
    if cfg.normalize:  # the same normalisation as TacoModel.embed
        y, glob = F.normalize(y, dim=-1), F.normalize(glob, dim=-1)
    words = (
        ["[CLS]"]
        + [
            "[UNK]" if int(i) == UNK_ID else t
            for i, t in zip(ids[1:-1], report.tokens[:k], strict=True)
        ]
        + ["[SEP]"]
    )
    return EncodedCaption(
        caption=caption,
        words=words,
        typed=[""] + report.tokens[:k] + [""],
        tags=[""] + report.tags[:k] + [""],
        interest=item["token_interest"],
        token_weights=item["token_weights"],
        text_tokens=y[0].float(),
        text_global=glob[0].float(),
        unknown=report.unknown,
        notes=list(report.problems),
    )


@dataclass
class ExplorerState:
    """Everything the three explorers share: the world, the models and their test embeddings.

    `embedded[name]` holds model `name`'s encoder outputs for the test segments `seg_ids`
    (row r = world segment seg_ids[r]), computed once. `softmax_fn` draws the "softmax over
    frames" view; notebook 07 may swap in the student's own function.
    """

    world: Any
    models: dict[str, ExplorerModel]
    seg_ids: list[int]
    embedded: dict[str, Any]  # name -> inference.Embedded
    idf: dict[str, float]  # idf of the training captions (Eq. 4's weights), as in training
    tags: list[list[str]]  # spaCy UPOS per word of each test caption (row order)
    lambda_t: float = 0.5
    softmax_fn: Callable[..., torch.Tensor] | None = None
    cascade_batch: int = 16  # B of the cascade sampler's batch of test segments
    cascade_seed: int = 0

    @classmethod
    def build(
        cls,
        models: Mapping[str, ExplorerModel],
        world: Any = None,
        split: str = "test",
        max_segments: int | None = None,
        cascade_batch: int = 16,
        seed: int = 0,
    ) -> ExplorerState:
        """Embed `split` once per model. max_segments keeps the first ones (TACO_FAST)."""
        from taco_lite.evaluate import datasets_for_checkpoint
        from taco_lite.evaluate.inference import embed_dataset
        from taco_lite.text import tokenize
        from taco_lite.text.pos import idf_table
        from taco_lite.world import load_world

        if not models:
            raise ValueError("no models given: load them with load_explorer_models()")
        if world is None:  # the shipped world: it must be the one each model was trained on
            from taco_lite.runtime.provenance import check_same_data

            for em in models.values():
                data = getattr(em.train_cfg, "data", "") or ""
                provenance = getattr(em.model, "provenance", None) or {}
                check_same_data(provenance, data, "", explicit=False, where=em.source)
        world = world if world is not None else load_world()
        embedded, seg_ids = {}, None
        idf = idf_table([tokenize(world.segments[i].caption) for i in world.split("train")])
        for name, em in models.items():
            ds = datasets_for_checkpoint(
                em.vocab.to_list(), em.model_cfg, em.train_cfg, [split], world
            )[split]
            emb = embed_dataset(em.model, ds, batch_size=128, device="cpu")
            if max_segments is not None:
                emb = emb.subset(torch.arange(min(max_segments, len(emb))))
            embedded[name] = emb
            seg_ids = emb.seg_ids.tolist()
        assert seg_ids is not None
        from taco_lite.text.pos import tag_captions

        tags = tag_captions([world.segments[s].caption for s in seg_ids])
        lambda_t = float(getattr(next(iter(models.values())).train_cfg, "lambda_t", 0.5))
        return cls(
            world=world, models=dict(models), seg_ids=seg_ids, embedded=embedded, idf=idf,
            tags=tags, lambda_t=lambda_t, cascade_batch=min(cascade_batch, len(seg_ids)),
            cascade_seed=seed,
        )  # fmt: skip

    def with_softmax(self, fn: Callable[..., torch.Tensor] | None) -> ExplorerState:
        """A copy that draws the softmax view with `fn` (e.g. the student's function)."""
        return dataclasses.replace(self, softmax_fn=fn)

    def caption_of(self, row: int) -> str:
        return self.world.segments[self.seg_ids[row]].caption
