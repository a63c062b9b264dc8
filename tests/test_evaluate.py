"""taco_lite.evaluate and inference.py: scores over a split, cascade, grounding, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from taco_lite.config import ModelConfig, TrainConfig
from taco_lite.evaluate import (
    datasets_for_checkpoint,
    evaluate,
    evaluate_retrieval,
    format_report,
    grounding_accuracy_report,
    main,
)
from taco_lite.evaluate.inference import (
    Embedded,
    cascade_scores,
    coarse_scores,
    embed_dataset,
    full_fusion_scores,
    global_scores,
    token_scores_s2,
)
from taco_lite.metrics import retrieval_ranks
from taco_lite.model import TacoModel
from taco_lite.runtime.checkpoint import CheckpointError, save_checkpoint
from taco_lite.text import UNK_ID
from taco_lite.text.pos import upos_id

NOUN, VERB = upos_id("NOUN"), upos_id("VERB")


# ------------------------------------------------------------------------------ helpers


def random_embedded(N: int = 7, n: int = 6, m: int = 5, d: int = 8, seed: int = 0) -> Embedded:
    """Random tokens with padding on both sides and idf-like weights (rows sum to 1 or 0)."""
    g = torch.Generator().manual_seed(seed)
    text_len = torch.randint(3, n + 1, (N,), generator=g)
    vid_len = torch.randint(1, m + 1, (N,), generator=g)
    text_len[0], vid_len[0] = n, m
    text_mask = torch.arange(n)[None] < text_len[:, None]  # (N, n)
    video_mask = torch.arange(m)[None] < vid_len[:, None]  # (N, m)
    text_tokens = torch.randn(N, n, d, generator=g) * text_mask[..., None]
    video_tokens = torch.randn(N, m, d, generator=g) * video_mask[..., None]
    interest = text_mask & (torch.rand(N, n, generator=g) < 0.6)
    interest[:, 0] = False
    interest[-1] = False  # one text without tokens of interest: s2 = 0 for it
    w = torch.rand(N, n, generator=g) * interest
    w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    return Embedded(
        text_tokens=text_tokens, text_mask=text_mask, video_tokens=video_tokens,
        video_mask=video_mask, text_global=torch.randn(N, d, generator=g),
        video_global=torch.randn(N, d, generator=g), token_weights=w, token_interest=interest,
        pos_ids=torch.where(interest, NOUN, 0), gold_frames=torch.zeros(N, n, m, dtype=torch.bool),
        seg_ids=torch.arange(N),
    )  # fmt: skip


class StubFusion(nn.Module):
    """A fusion head with a known formula, counting every pair it scores.

    s3(i, j) = 3 * <first text token, mean of valid frames>: depends on both sides, so the
    ranking it induces differs from s1's.
    """

    def __init__(self, tau1: float = 1.0, tau2: float = 1.0) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.cfg = ModelConfig(d=8, heads=2, tau1=tau1, tau2=tau2)
        self.pairs = 0
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def fuse(self, text_tokens, text_mask, video_tokens, video_mask):
        self.pairs += text_tokens.shape[0]
        self.calls.append((text_tokens, video_tokens))
        vmean = (video_tokens * video_mask[..., None]).sum(1) / video_mask.sum(1, keepdim=True)
        return 3.0 * (text_tokens[:, 0] * vmean).sum(-1)  # (A,)


def naive_fusion(emb: Embedded, i: int, j: int) -> float:
    valid = emb.video_mask[j]
    return 3.0 * float(emb.text_tokens[i, 0] @ emb.video_tokens[j][valid].mean(0))


# ------------------------------------------------------------------------------ scores


def test_s2_matches_naive_loop():
    emb = random_embedded(N=6, seed=1)
    N, n, _ = emb.text_tokens.shape
    want = torch.zeros(N, N, dtype=torch.float64)
    for i in range(N):
        for j in range(N):
            total = 0.0
            for p in range(n):
                w = float(emb.token_weights[i, p])
                if w == 0.0:
                    continue
                best = -math.inf
                for k in range(emb.video_mask.shape[1]):
                    if emb.video_mask[j, k]:
                        best = max(best, float(emb.text_tokens[i, p] @ emb.video_tokens[j, k]))
                total += w * best
            want[i, j] = total
    for chunk in (1, 4, 64):  # chunking over videos must not change a thing
        torch.testing.assert_close(token_scores_s2(emb, chunk).double(), want, atol=1e-5, rtol=0)
    assert (token_scores_s2(emb)[-1] == 0).all()  # no token of interest -> s2 = 0, not NaN


def test_full_fusion_matches_pairwise_loop():
    emb, model = random_embedded(N=5, seed=2), StubFusion()
    s3 = full_fusion_scores(model, emb, chunk=7)
    want = torch.tensor([[naive_fusion(emb, i, j) for j in range(5)] for i in range(5)])
    torch.testing.assert_close(s3, want, atol=1e-5, rtol=0)
    assert model.pairs == 25


def test_perfect_embeddings_give_r1_100_for_s1():
    N = 6
    emb = random_embedded(N=N, d=8, seed=3)
    emb.text_global = torch.eye(N, 8)  # text i and video i share a direction, all others are 0
    emb.video_global = torch.eye(N, 8)
    res = evaluate_retrieval(StubFusion(), emb, top_k=3, full_fusion_subset=N, device="cpu")
    for direction in ("t2v", "v2t"):
        assert res["s1"][direction]["R1"] == 100.0
        assert res["s1"][direction]["MedR"] == 1.0
        assert res["subset"]["s1"][direction]["R1"] == 100.0
    emb.video_global = emb.video_global.roll(1, dims=0)  # every text now matches the wrong video
    res = evaluate_retrieval(StubFusion(), emb, top_k=3, full_fusion_subset=N, device="cpu")
    assert res["s1"]["t2v"]["R1"] == 0.0


@pytest.mark.parametrize("direction", ["t2v", "v2t"])
def test_cascade_with_top_k_n_is_the_full_sum(direction):
    emb, model = random_embedded(N=7, seed=4), StubFusion(tau1=0.5, tau2=0.25)
    s1, s2 = global_scores(emb), token_scores_s2(emb)
    coarse = coarse_scores(s1, s2, 0.5, 0.5, 0.25)
    torch.testing.assert_close(coarse, s1 / 0.5 + 0.5 * s2 / 0.25)
    full = coarse + full_fusion_scores(model, emb)  # (N, N) the paper's sum
    full = full if direction == "t2v" else full.T
    cascade = cascade_scores(model, emb, coarse, top_k=7, direction=direction)
    assert torch.equal(retrieval_ranks(cascade), retrieval_ranks(full.double()))
    torch.testing.assert_close(cascade, full.double(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("direction", ["t2v", "v2t"])
def test_cascade_rule_against_a_naive_reranker(direction):
    """Top-k by coarse, re-ordered by coarse + s3, all above the rest in coarse order."""
    N, k = 8, 3
    emb, model = random_embedded(N=N, seed=5), StubFusion()
    coarse = coarse_scores(global_scores(emb), token_scores_s2(emb), 0.5)
    cascade = cascade_scores(model, emb, coarse, top_k=k, direction=direction)
    queries = coarse if direction == "t2v" else coarse.T
    for q in range(N):
        order = sorted(range(N), key=lambda c: -float(queries[q, c]))
        top, rest = order[:k], order[k:]

        def total(c, q=q):
            i, j = (q, c) if direction == "t2v" else (c, q)
            return float(queries[q, c]) + naive_fusion(emb, i, j)

        ranking = sorted(top, key=lambda c: -total(c)) + rest
        got = sorted(range(N), key=lambda c: -float(cascade[q, c]))
        assert got == ranking, f"query {q}"


def test_cascade_calls_fusion_on_n_times_top_k_pairs():
    N, k = 9, 4
    emb, model = random_embedded(N=N, seed=6), StubFusion()
    coarse = coarse_scores(global_scores(emb), token_scores_s2(emb), 0.5)
    cascade_scores(model, emb, coarse, top_k=k, direction="t2v", chunk=5)
    assert model.pairs == N * k  # not N^2 = 81
    # and the pairs it fused are exactly each text's top-k videos by the coarse score
    fused_text = torch.cat([t[:, 0] for t, _ in model.calls])  # (N*k, d) first text token
    fused_video = torch.cat([v[:, 0] for _, v in model.calls])  # (N*k, d) first frame
    pairs = set()
    for a in range(fused_text.shape[0]):
        i = int((emb.text_tokens[:, 0] == fused_text[a]).all(1).nonzero()[0])
        j = int((emb.video_tokens[:, 0] == fused_video[a]).all(1).nonzero()[0])
        pairs.add((i, j))
    want = {(i, int(j)) for i in range(N) for j in coarse[i].topk(k).indices}
    assert pairs == want

    model.pairs = 0
    res = evaluate_retrieval(model, emb, top_k=k, full_fusion_subset=5, device="cpu")
    # whole split: 2 directions * N * k; subset: N_s^2 for the full sum + 2 * N_s * k
    assert model.pairs == 2 * N * k + 5 * 5 + 2 * 5 * k
    assert res["fusion_pairs"] == 2 * N * k
    assert res["subset"]["fusion_pairs_full"] == 25
    assert res["subset"]["speedup"] > 0


def test_subset_is_seeded_and_reports_the_gap():
    emb, model = random_embedded(N=12, seed=7), StubFusion()
    a = evaluate_retrieval(model, emb, top_k=12, full_fusion_subset=6, device="cpu", seed=1)
    b = evaluate_retrieval(model, emb, top_k=12, full_fusion_subset=6, device="cpu", seed=1)
    c = evaluate_retrieval(model, emb, top_k=12, full_fusion_subset=6, device="cpu", seed=2)
    assert a["subset"]["indices"] == b["subset"]["indices"] != c["subset"]["indices"]
    assert len(a["subset"]["indices"]) == 6
    # top_k >= N_s: cascade = full sum, so no gap at all
    assert a["subset"]["R1_gap"] == {"t2v": 0.0, "v2t": 0.0}
    assert a["subset"]["cascade"] == a["subset"]["sum"]
    small = evaluate_retrieval(model, emb, top_k=1, full_fusion_subset=6, device="cpu", seed=1)
    gap = small["subset"]["R1_gap"]["t2v"]
    assert gap == small["subset"]["cascade"]["t2v"]["R1"] - small["subset"]["sum"]["t2v"]["R1"]
    # with top_k = 1 the cascade keeps the coarse top-1, so its R@1 is the coarse R@1
    assert small["subset"]["cascade"]["t2v"]["R1"] == small["subset"]["s1+s2"]["t2v"]["R1"]


def test_subset_zero_skips_full_fusion():
    emb, model = random_embedded(N=6, seed=8), StubFusion()
    res = evaluate_retrieval(model, emb, top_k=2, full_fusion_subset=0, device="cpu")
    assert res["subset"] is None and model.pairs == 2 * 6 * 2
    text = format_report({"splits": {"test": {"retrieval": res,
                          "grounding": grounding_accuracy_report(model, grounding_case())}}})  # fmt: skip
    assert "cascade (top-2)" in text and "Table 11" not in text


# ------------------------------------------------------------------------------ grounding


def grounding_case() -> Embedded:
    """Two texts, 4 frames. Text 0: token 1 (NOUN) hits its gold frame, token 2 (VERB) misses;
    token 3 (NOUN) has no gold frame (not scored). Text 1 has 3 valid frames; frame 3 is padding
    and would win (a miss) if padding counted; its token 1 (VERB) hits."""
    N, n, m, d = 2, 5, 4, 4
    text_tokens = torch.zeros(N, n, d)
    video_tokens = torch.zeros(N, m, d)
    video_tokens[0] = torch.eye(4)  # frame k of video 0 = e_k
    text_tokens[0, 1] = torch.tensor([5.0, 1, 0, 0])  # argmax frame 0, gold {0}: hit
    text_tokens[0, 2] = torch.tensor([0.0, 1, 5, 0])  # argmax frame 2, gold {0, 1}: miss
    text_tokens[0, 3] = torch.tensor([0.0, 0, 0, 5])  # no gold frames: not scored
    video_tokens[1, :3] = torch.eye(4)[:3]
    video_tokens[1, 3] = torch.tensor([0.0, 0, 0, 100])  # padded frame, huge score
    text_tokens[1, 1] = torch.tensor([0.0, 2, 0, 1])  # valid argmax frame 1, gold {1}: hit
    gold = torch.zeros(N, n, m, dtype=torch.bool)
    gold[0, 1, 0] = True
    gold[0, 2, [0, 1]] = True
    gold[1, 1, 1] = True
    gold[1, 2, 3] = True  # token 2 of text 1 has gold on a padded frame only: not scored
    pos = torch.tensor([[0, NOUN, VERB, NOUN, 0], [0, VERB, VERB, 0, 0]])
    return Embedded(
        text_tokens=text_tokens, text_mask=torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).bool(),
        video_tokens=video_tokens, video_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool(),
        text_global=torch.zeros(N, d), video_global=torch.zeros(N, d),
        token_weights=torch.zeros(N, n), token_interest=pos > 0, pos_ids=pos,
        gold_frames=gold, seg_ids=torch.tensor([10, 11]),
    )  # fmt: skip


def test_grounding_hand_made_and_chance():
    rep = grounding_accuracy_report(StubFusion(), grounding_case(), device="cpu")
    assert rep["pos_source"] == "spacy"
    assert rep["NOUN"] == 100.0 and rep["VERB"] == 50.0
    assert rep["all"] == pytest.approx(200.0 / 3)
    assert rep["n_tokens"] == {"NOUN": 1, "VERB": 2, "all": 3}
    # chance = gold frames / valid frames: NOUN 1/4; VERBs 2/4 and 1/3
    assert rep["chance"]["NOUN"] == pytest.approx(25.0)
    assert rep["chance"]["VERB"] == pytest.approx(100.0 * (2 / 4 + 1 / 3) / 2)
    assert rep["chance"]["all"] == pytest.approx(100.0 * (1 / 4 + 2 / 4 + 1 / 3) / 3)


def test_grounding_uses_gold_pos_from_the_world():
    class Seg:
        def __init__(self, gold_pos):
            self.gold_pos = gold_pos

    class World:  # the world says text 0's words are VERB, NOUN, NOUN (spaCy said NOUN, VERB)
        segments = {10: Seg(["VERB", "NOUN", "NOUN"]), 11: Seg(["VERB", "NOUN"])}

    rep = grounding_accuracy_report(StubFusion(), grounding_case(), world=World(), device="cpu")
    assert rep["pos_source"] == "world"
    assert rep["n_tokens"] == {"NOUN": 1, "VERB": 2, "all": 3}
    assert rep["NOUN"] == 0.0 and rep["VERB"] == 100.0  # the same hits, other POS buckets


def test_grounding_without_scored_tokens_gives_none_not_nan():
    emb = grounding_case()
    emb.gold_frames = torch.zeros_like(emb.gold_frames)
    rep = grounding_accuracy_report(StubFusion(), emb, device="cpu")
    assert rep["NOUN"] is None and rep["all"] is None and rep["n_tokens"]["all"] == 0


# ------------------------------------------------------------------------------ on the world


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from taco_lite.data import build_datasets
    from taco_lite.world import WorldConfig, generate_world, save_world

    world = generate_world(WorldConfig(seed=0, num_clips=40))
    folder = save_world(world, tmp_path_factory.mktemp("world"), frames_sha256=False)
    datasets, vocab, _ = build_datasets(world, splits=("train", "test", "comp"))
    return world, folder, datasets, vocab


def tiny_model(vocab_size: int) -> TacoModel:
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, heads=2, text_layers=1, video_layers=1, fusion_layers=1,
                      vocab_size=vocab_size)  # fmt: skip
    return TacoModel(cfg)


def test_embed_dataset_pads_and_does_not_depend_on_batching(tiny_world):
    _, _, datasets, vocab = tiny_world
    model = tiny_model(len(vocab)).train()
    small = embed_dataset(model, datasets["test"], batch_size=3, device="cpu")
    big = embed_dataset(model, datasets["test"], batch_size=128, device="cpu")
    assert model.training  # mode restored
    N = len(datasets["test"])
    assert small.text_tokens.shape[0] == N == len(big)
    assert small.text_tokens.shape[1:] == big.text_tokens.shape[1:]
    assert small.gold_frames.shape == (N, small.text_mask.shape[1], small.video_mask.shape[1])
    torch.testing.assert_close(small.text_global, big.text_global, atol=1e-5, rtol=0)
    torch.testing.assert_close(small.video_tokens, big.video_tokens, atol=1e-5, rtol=0)
    assert torch.equal(small.seg_ids, torch.tensor(datasets["test"].seg_ids))


def test_evaluate_runs_each_encoder_once_per_batch(tiny_world, monkeypatch):
    world, _, datasets, vocab = tiny_world
    model = tiny_model(len(vocab))
    calls = {"text": 0, "video": 0}
    enc_text, enc_video = model.encode_text, model.encode_video

    def count_text(*a):
        calls["text"] += 1
        return enc_text(*a)

    def count_video(*a):
        calls["video"] += 1
        return enc_video(*a)

    monkeypatch.setattr(model, "encode_text", count_text)
    monkeypatch.setattr(model, "encode_video", count_video)
    res = evaluate(model, datasets, ("test", "comp"), top_k=4, full_fusion_subset=8,
                   device="cpu", world=world, batch_size=5)  # fmt: skip
    batches = sum(math.ceil(len(datasets[s]) / 5) for s in ("test", "comp"))
    assert calls == {"text": batches, "video": batches}
    assert res["splits"]["test"]["grounding"]["pos_source"] == "world"
    assert res["splits"]["test"]["grounding"]["n_tokens"]["all"] > 0
    text = format_report(res)
    assert "## test" in text and "## comp" in text and "cascade (top-4)" in text
    assert "nan" not in text.lower()


def test_cli_end_to_end_with_the_checkpoints_vocab(tiny_world, tmp_path, capsys):
    world, folder, datasets, vocab = tiny_world
    words = vocab.to_list()[:12]  # a short vocabulary: most words must become [UNK]
    model = tiny_model(len(words))
    ckpt = save_checkpoint(tmp_path / "model.pt", model, model_cfg=model.cfg,
                           train_cfg=TrainConfig(lambda_t=0.25, pos_tags="noun"), vocab=words)  # fmt: skip

    rebuilt = datasets_for_checkpoint(words, model.cfg, TrainConfig(), ("test",), world)
    ids = torch.cat([it["text_ids"] for it in rebuilt["test"]])
    assert int(ids.max()) < len(words) and (ids == UNK_ID).any()

    out = tmp_path / "res.json"
    res = main(["--checkpoint", str(ckpt), "--splits", "test", "--top-k", "3",
                "--full-fusion-subset", "6", "--device", "cpu", "--world", str(folder),
                "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "## test" in printed and "Grounding" in printed
    saved = json.loads(out.read_text())
    r = saved["splits"]["test"]["retrieval"]
    assert r["N"] == len(datasets["test"]) and r["top_k"] == 3 and r["subset"]["N"] == 6
    assert r["lambda_t"] == 0.25  # from the checkpoint's TrainConfig
    assert res["splits"]["test"]["retrieval"]["s1"] == r["s1"]


def test_cli_refuses_another_checkpoint_format(tiny_world, tmp_path):
    _, folder, _, vocab = tiny_world
    model = tiny_model(len(vocab))
    path = save_checkpoint(tmp_path / "old.pt", model, vocab=vocab.to_list())
    state = torch.load(path, weights_only=True)
    state["format_version"] = 999
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="format 999"):
        main(["--checkpoint", str(path), "--world", str(folder), "--device", "cpu"])


def test_table_11_runs_on_the_full_split_by_default():
    N = 9
    emb, model = random_embedded(N=N, seed=5), StubFusion()
    res = evaluate_retrieval(model, emb, top_k=3, device="cpu")
    assert res["subset"]["full"] and res["subset"]["N"] == N
    assert res["subset"]["indices"] == list(range(N))
    assert res["subset"]["fusion_pairs_full"] == N * N
    part = evaluate_retrieval(model, emb, top_k=3, full_fusion_subset=4, device="cpu")
    assert not part["subset"]["full"] and part["subset"]["N"] == 4
    assert (
        evaluate_retrieval(model, emb, top_k=3, full_fusion_subset=0, device="cpu")["subset"]
        is None
    )


def test_paired_difference_is_a_minus_b_and_refuses_other_queries():
    from taco_lite.evaluate.compare import format_comparison, paired_difference

    a = {"t2v": torch.tensor([1, 1, 1, 4]), "v2t": torch.tensor([1, 2, 3, 4])}
    b = {"t2v": torch.tensor([1, 2, 3, 4]), "v2t": torch.tensor([1, 1, 3, 4])}
    res = paired_difference(a, b, n_boot=200)
    assert res["t2v"]["R1_a"] == 75.0 and res["t2v"]["R1_b"] == 25.0
    assert res["t2v"]["diff"] == 50.0 and res["v2t"]["diff"] == -25.0
    assert res["t2v"]["lo"] <= 50.0 <= res["t2v"]["hi"]
    assert "| test | 4 | 75.0 / 25.0 | +50.0 [" in format_comparison({"test": res}, "a", "b")
    with pytest.raises(ValueError, match="same pairs"):
        paired_difference(a, {"t2v": torch.tensor([1, 2]), "v2t": torch.tensor([1, 2])})
