"""The Table 3/4 sweep: rows, the score each row is ranked by, and the results.md section."""

from __future__ import annotations

import torch

from taco_lite.config import ModelConfig
from taco_lite.evaluate import ranked_retrieval
from taco_lite.evaluate.inference import Embedded
from taco_lite.model import TacoModel
from taco_lite.sweep import ROWS, ROWS_BY_SLUG, format_table, main, write_section


def _embedded(N: int = 6, n: int = 5, m: int = 4, d: int = 8) -> Embedded:
    g = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(N, n, d, generator=g), dim=-1)
    video = torch.nn.functional.normalize(torch.randn(N, m, d, generator=g), dim=-1)
    weights = torch.zeros(N, n)
    weights[:, 1] = 1.0
    return Embedded(
        text_tokens=text, text_mask=torch.ones(N, n, dtype=torch.bool),
        video_tokens=video, video_mask=torch.ones(N, m, dtype=torch.bool),
        text_global=text[:, 0], video_global=video.mean(1),
        token_weights=weights, token_interest=weights > 0,
        pos_ids=torch.zeros(N, n, dtype=torch.long),
        gold_frames=torch.zeros(N, n, m, dtype=torch.bool), seg_ids=torch.arange(N),
    )  # fmt: skip


def test_rows_cover_both_tables_and_the_extra_row():
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)) == 9
    assert {r.pos_tags for r in ROWS if r.losses == "L1+L2+L3"} == {
        "det+adp", "noun", "verb", "noun+verb", "all"
    }  # fmt: skip
    assert ROWS_BY_SLUG["l1"].losses == "L1"
    assert ROWS_BY_SLUG["l1-l2-l3-cascade-noun-verb"].pos_tags == "noun+verb"


def test_ranked_retrieval_uses_the_trained_scores():
    model = TacoModel(ModelConfig(d=8, heads=2, vocab_size=10)).eval()
    emb = _embedded()
    calls = []
    real_fuse = model.fuse

    def counting_fuse(*args):
        calls.append(args[0].shape[0])
        return real_fuse(*args)

    model.fuse = counting_fuse
    l1 = ranked_retrieval(model, emb, ("L1",))
    assert l1["ranked"] == l1["s1"] and not calls  # L1 alone: s1, no fusion
    ranked_retrieval(model, emb, ("L3",))
    assert sum(calls) == 6 * 6  # L3 alone: full fusion over N^2 pairs
    calls.clear()
    out = ranked_retrieval(model, emb, ("L1", "L2", "L3"), top_k=2)
    assert sum(calls) == 2 * 6 * 2  # cascade: N * top_k pairs per direction
    assert set(out) == {"s1", "ranked"}


def test_ranked_retrieval_of_l1_l2_sums_s1_and_lambda_s2():
    """An L1+L2 run is ranked by s1 / tau1 + lambda_t * s2 / tau2 (its docstring), not s1."""
    from taco_lite.evaluate.inference import coarse_scores, global_scores, token_scores_s2
    from taco_lite.metrics import retrieval_report

    model = TacoModel(ModelConfig(d=8, heads=2, vocab_size=10)).eval()
    emb = _embedded(N=12)
    s1, s2 = global_scores(emb), token_scores_s2(emb)
    tau1, tau2 = model.cfg.tau1, model.cfg.tau2
    want = retrieval_report(coarse_scores(s1, s2, 0.5, tau1, tau2))
    assert want != retrieval_report(s1)  # s2 changes the ranking here, so the test can fail
    out = ranked_retrieval(model, emb, ("L1", "L2"), lambda_t=0.5)
    assert out["ranked"] == want and out["s1"] == retrieval_report(s1)
    lam2 = ranked_retrieval(model, emb, ("L1", "L2"), lambda_t=2.0)["ranked"]
    assert lam2 == retrieval_report(coarse_scores(s1, s2, 2.0, tau1, tau2))


def test_write_section_replaces_only_its_block(tmp_path):
    path = tmp_path / "results.md"
    write_section(path, "a", "one\n", "## A")
    write_section(path, "b", "two\n", "## B")
    write_section(path, "a", "three\n", "## A")
    text = path.read_text()
    assert "three" in text and "one" not in text and "two" in text
    assert text.count("<!-- a:start -->") == 1


def test_format_table_reports_mean_and_std():
    record = {
        "row": "L1", "split": "val", "N": 100, "preset": "sweep", "top_k": 16, "seconds": 10.0,
        "scores": {"s1": {"t2v": {"R1": 10.0}}, "ranked": {
            "t2v": {"R1": 10.0, "R5": 30.0, "R10": 40.0, "MnR": 12.0},
            "v2t": {"R1": 5.0, "R5": 20.0, "R10": 30.0, "MnR": 14.0}}},
        "grounding": {"NOUN": 80.0, "VERB": 60.0, "chance": {"NOUN": 70.0, "VERB": 50.0}},
    }  # fmt: skip
    other = {
        **record,
        "scores": {**record["scores"], "ranked": {
            "t2v": {"R1": 20.0, "R5": 50.0, "R10": 60.0, "MnR": 8.0},
            "v2t": record["scores"]["ranked"]["v2t"]}},
    }  # fmt: skip
    table = format_table([record, other], "python -m taco_lite.sweep", 60.0)
    assert "| L1 | 3 | 2 | 15.0 ± 7.1 | 5.0 ± 0.0 |" in table
    assert "| L1 | 40.0 ± 14.1 | 50.0 ± 14.1 | 10.0 ± 2.8 | 20.0 ± 0.0 |" in table


def test_format_table_pairs_every_row_with_l1_over_queries_and_seeds(tmp_path):
    """R@1 - L1 comes from the saved ranks: the row finds 3 of 4 queries at rank 1 in both
    seeds, L1 finds 1 of 4, so the point difference is +50 points."""
    base = {"split": "test", "N": 4, "preset": "sweep", "top_k": 16, "seconds": 1.0,
            "eval_clips": 10, "endless": True, "pair_views": {"max": 1},
            "grounding": {"chance": {}}}  # fmt: skip
    recs = []
    for slug, name, ranks in (("l1", "L1", [1, 2, 3, 4]), ("l3", "L3", [1, 1, 1, 4])):
        for seed in (0, 1):
            folder = tmp_path / slug / f"seed{seed}"
            folder.mkdir(parents=True)
            r = torch.tensor(ranks)
            torch.save({"t2v": r, "v2t": r.flip(0)}, folder / "ranks.pt")
            m = {"R1": 25.0, "R5": 100.0, "R10": 100.0, "MnR": 2.5}
            recs.append({**base, "row": name, "seed": seed,
                         "scores": {"ranked": {"t2v": m, "v2t": m}}})  # fmt: skip
    table = format_table(recs, "cmd", None, tmp_path)
    assert "R@1 - L1, t2v | R@1 - L1, v2t |" in table
    l3 = next(line for line in table.splitlines() if line.startswith("| L3 |"))
    assert l3.split("|")[-3].strip().startswith("+50.0 [")
    assert "fresh clips every epoch" in table and "at most 1 time(s)" in table
    assert "- | - |" in next(line for line in table.splitlines() if line.startswith("| L1 |"))


def test_sweep_end_to_end_tiny(tmp_path, monkeypatch):
    """Two rows, one seed, 3 steps each, on fresh clips, scored on an extra eval world: runs
    in subprocesses, saves each run's ranks, writes results.md with the paired columns."""
    results = tmp_path / "results.md"
    main(["--preset", "fast", "--seeds", "0", "--rows", "l1", "l1-l2-l3-cascade-noun-verb",
          "--steps", "3", "--split", "val", "--jobs", "2", "--out", str(tmp_path / "runs"),
          "--endless", "--eval-clips", "12", "--n-eval", "30",
          "--results", str(results)])  # fmt: skip
    text = results.read_text()
    assert "<!-- sweep-val-endless:start -->" in text
    assert "| L1 | 3 | 1 |" in text and "| L1+L2+L3 cascade noun+verb |" in text
    assert "N = 30 pairs" in text and "at most 1 time(s)" in text
    for slug in ("l1", "l1-l2-l3-cascade-noun-verb"):
        assert (tmp_path / "runs" / slug / "seed0" / "model.pt").exists()
        ranks = torch.load(tmp_path / "runs" / slug / "seed0" / "ranks.pt")
        assert ranks["t2v"].shape == (30,) and int(ranks["v2t"].min()) >= 1
