"""Smoke tests for benchmarks/: every script runs end to end at --tiny sizes on CPU.

They check that the scripts cannot rot (an API change in the package breaks them here, not on
the day someone needs a figure), that the tables are written between their markers without
touching the rest of the doc, and that the timing helpers really measure. The figures
themselves are not tested: on a shared CPU they are noise at these sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of scripts at the repo root
    sys.path.insert(0, str(REPO))

from benchmarks import common, fusion_step, retrieval, token_loss  # noqa: E402

TINY = ["--tiny", "--device", "cpu", "--repeats", "1"]


def _written(doc: Path, key: str) -> str:
    text = doc.read_text()
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    assert start in text and end in text, f"section {key} missing from {doc}"
    return text.split(start, 1)[1].split(end, 1)[0]


# ------------------------------------------------------------------------------ helpers


def test_write_section_replaces_only_its_own_block(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("# T\n\nintro\n\n<!-- a-cpu:start -->\nold a\n<!-- a-cpu:end -->\n\ntail\n")
    common.write_section("a-cpu", "new a", doc)
    common.write_section("b-cpu", "new b", doc)  # no markers yet: appended
    common.write_section("a-cpu", "newer a", doc)
    text = doc.read_text()
    assert "old a" not in text and "new a\n" not in text
    assert _written(doc, "a-cpu").strip() == "newer a"
    assert _written(doc, "b-cpu").strip() == "new b"
    assert text.startswith("# T\n\nintro\n") and "\ntail\n" in text
    assert text.count("<!-- a-cpu:start -->") == 1


def test_interleaved_reports_the_median_and_tells_slow_from_fast():
    import torch

    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.02)

    t = common.interleaved({"fast": fast, "slow": slow}, torch.device("cpu"), repeats=3, warmup=1)
    assert calls == {"fast": 4, "slow": 4}  # 1 warm-up + 3 timed rounds each
    assert t["slow"] >= 0.02 > t["fast"]


def test_machine_description_names_cpu_cores_and_torch():
    import torch

    info = common.machine(torch.device("cpu"))
    line = common.machine_line(info)
    assert info["cores"] >= 1 and info["torch"] == torch.__version__
    assert torch.__version__ in line and "cores" in line


def test_rss_peak_sees_a_large_allocation_after_a_reset():
    import torch

    if not common.reset_rss_peak():
        pytest.skip("this kernel does not allow resetting VmHWM")
    before = common.rss_now_bytes()
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched by the fill
    peak = common.rss_hwm_bytes() - before
    del x
    assert 48 * 2**20 <= peak < 1024 * 2**20, peak


def test_naive_twins_load_from_tests_folder():
    naive = common.load_naive()
    assert callable(naive.token_video_scores) and callable(naive.token_nce)


def test_all_pairs_loss_matches_a_loop_over_anchors():
    """The benchmark's own all-pairs L3 must be the L3 formula, positive first, 2B anchors."""
    import torch

    from taco_lite.batch import synthetic_batch
    from taco_lite.config import ModelConfig, TrainConfig
    from taco_lite.model import TacoModel
    from taco_lite.train.step import LossFns

    torch.manual_seed(0)
    B = 5
    model = TacoModel(ModelConfig(d=16, heads=2, text_layers=1, video_layers=1, fusion_layers=1,
                                  vocab_size=20, dropout=0.0)).eval()  # fmt: skip
    batch = synthetic_batch(B, 6, 4, vocab_size=20)
    tcfg = TrainConfig(batch_size=B, k_neg=2, lambda_t=0.0, losses="L1+L3")
    fns = LossFns()
    got = fusion_step.all_pairs_loss(model, batch, tcfg, fns)
    emb = model.embed(batch)
    L1 = fns.sentence_nce(emb.text_global, emb.video_global, tau=model.cfg.tau1)
    s3 = torch.empty(B, B)
    for i in range(B):
        for j in range(B):
            s3[i, j] = model.fuse(
                emb.text_tokens[i : i + 1],
                batch.text_mask[i : i + 1],
                emb.video_tokens[j : j + 1],
                batch.video_mask[j : j + 1],
            )[0]
    nll = [torch.logsumexp(s3[a], 0) - s3[a, a] for a in range(B)]  # text anchors
    nll += [torch.logsumexp(s3[:, a], 0) - s3[a, a] for a in range(B)]  # video anchors
    want = L1 + torch.stack(nll).mean()
    assert torch.allclose(got, want, atol=1e-5), (float(got), float(want))


# ------------------------------------------------------------------------------ the scripts


def test_token_loss_tiny(tmp_path):
    doc = tmp_path / "bench.md"
    res = token_loss.main([*TINY, "--no-memory", "--write", "--doc", str(doc)])
    (row,) = res["rows"]
    assert row["vectorized_s"] > 0 and row["chunked_s"] > 0 and row["naive_s"] > 0
    assert row["naive_scale"] == (8 * 4 * 8) / (2 * 2) and row["naive_nce_scale"] == 8 / 2
    # the memory probe, in this process (the script runs it in a fresh one per figure)
    import torch

    mem = token_loss.probe("chunked-nograd", 8, True, torch.device("cpu"))
    assert mem["peak_bytes"] >= 0 and mem["how"].startswith("rss")
    body = _written(doc, "token_loss-cpu")
    assert "| 8 |" in body and "command: `python -m benchmarks.token_loss --tiny" in body


def test_fusion_step_tiny(tmp_path):
    res = fusion_step.main([*TINY, "--json", str(tmp_path / "r.json")])
    assert [(r["model"], r["B"]) for r in res["rows"]] == [("default", 6), ("paper", 6)]
    for row in res["rows"]:
        assert row["pairs_cascade"] == 2 * 6 * (2 + 1) and row["pairs_all"] == 36
        assert min(row["cascade_s"], row["rest_s"], row["all_s"]) > 0 and row["all_measured"]
        assert 0.0 <= row["fusion_share_cascade"] <= 1.0
    assert res["model"]["paper"]["d"] == 32  # the tiny stand-in for d = 768
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["B"] == 6
    # above --max-all-pairs the all-pairs step is predicted, not run; caps shrink the grid
    res = fusion_step.main([*TINY, "--max-all-pairs", "10", "--max-cascade-pairs", "paper=10"])
    (row,) = res["rows"]
    assert row["model"] == "default" and not row["all_measured"] and row["all_s"] is None
    want = row["rest_s"] + 36 * row["per_pair_s"]
    assert abs(row["all_pred_s"] - want) < 1e-12


def test_fusion_step_cell_model_is_the_linear_split():
    t = {"cascade": 3.0, "rest": 1.0}  # fusion 2 s over 2 * 4 * 3 = 24 pairs
    r = fusion_step._cell("default", 4, 2, t)
    assert r["per_pair_s"] == 2.0 / 24 and r["all_pred_s"] == 1.0 + 16 * 2.0 / 24
    assert abs(r["fusion_share_cascade"] - 2 / 3) < 1e-12
    assert r["all_over_cascade"] == r["all_pred_s"] / 3.0 and not r["all_measured"]
    # the step ratio tends to the pair ratio when the rest vanishes
    big = fusion_step._cell("paper", 512, 8, {"cascade": 100.0, "rest": 1e-9})
    assert abs(big["all_over_cascade"] - big["pair_ratio"]) < 1e-6


def check_retrieval_rows(res: dict) -> None:
    """What every retrieval run must hold; the dry run of gpu_check.sh runs the script (N = 16
    with all N^2 fusion passes, N = 32 with full fusion on 20 sampled queries per direction)."""
    assert [r["N"] for r in res["rows"]] == [16, 32]
    for r in res["rows"]:
        assert r["pairs_full"] == r["N"] ** 2 and r["pairs_cascade"] == 2 * r["N"] * 4
        for d in ("t2v", "v2t"):
            assert 0.0 <= r["metrics"]["cascade"][d]["R1"] <= 100.0
            lo, hi = r["R1_gap_ci"][d]
            assert lo <= r["R1_gap"][d] + 1e-9 and r["R1_gap"][d] - 1e-9 <= hi
        assert r["full_s"] > 0 and abs(r["speedup"] - r["full_s"] / r["cascade_s"]) < 1e-9
    measured, sampled = res["rows"]
    assert measured["full_how"] == "measured" and measured["queries_compared"] == 16
    assert sampled["full_how"] == "extrapolated from 20 of 32 query rows"
    assert sampled["queries_compared"] == 20


def test_retrieval_gap_interval_is_a_paired_bootstrap():
    import torch

    from taco_lite.metrics import retrieval_ranks

    full = torch.eye(50) + 0.01 * torch.rand(50, 50)  # every query right
    ranks = retrieval_ranks(full)
    assert retrieval.gap_interval(ranks, ranks) == (0.0, 0.0)  # same method: no gap at all
    worse = full.clone()
    worse[:10, :10] = worse[:10, :10].flip(1) * 2  # 10 queries lose their ground truth
    lo, hi = retrieval.gap_interval(retrieval_ranks(worse), ranks)
    assert -40.0 < lo < -20.0 < hi < 0.0  # around the true gap of -20 points


def test_ranks_at_matches_retrieval_ranks_off_the_diagonal():
    import torch

    from taco_lite.metrics import retrieval_ranks

    sim = torch.randn(12, 12, generator=torch.Generator().manual_seed(0))
    sim[3, 5] = sim[3, 3]  # a tie counts in the query's favour in both
    rows = torch.tensor([1, 3, 7])
    assert retrieval._ranks_at(sim[rows], rows).tolist() == retrieval_ranks(sim)[rows].tolist()


def test_cli_entry_point_runs_from_the_repo_root():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.fusion_step", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "--tiny" in out.stdout and "--write" in out.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_check_dry_run_runs_the_whole_plan_on_cpu_without_spacy(tmp_path):
    """Issue 12: the GPU plan, at tiny sizes on CPU, with spaCy unimportable (tag cache only)."""
    import os

    from taco_lite.text import tagging
    from taco_lite.world import WorldConfig, generate_world, save_world

    world = save_world(generate_world(WorldConfig(seed=0, num_clips=80)), tmp_path / "world",
                       frames_sha256=False)  # fmt: skip
    tags = tmp_path / "tags.json"
    tagging.write_world_cache(tags)  # the CPU machine's job: the benchmarks' shipped world
    tagging.write_world_cache(tags, world)  # ... and the small world the training uses
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "TAGS": str(tags), "PYTHON": sys.executable,
           "WORLD": str(world)}  # fmt: skip
    run = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--no-spacy"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=880,
    )  # fmt: skip
    summary = (out / "summary.md").read_text()
    assert run.returncode == 0, summary + run.stdout[-3000:]
    for name in ("pytest_gpu", "train_gpu", "evaluate_gpu", "bench_token_loss", "bench_fusion_step",
                 "bench_retrieval", "bench_throughput"):  # fmt: skip
        assert f"| {name} | ok |" in summary, summary
    assert "spaCy blocked: yes" in summary and "dry run" in summary
    state = json.loads((out / "train_gpu" / "result.json").read_text())
    assert state["train_cfg"]["data"] == f"world:{world}"  # trained on the small world
    assert state["train_cfg"]["amp"] and not state["train_cfg"]["compile"]
    doc = out / "benchmarks.md"
    for key in ("token_loss", "fusion_step", "retrieval", "throughput"):
        assert "| " in _written(doc, f"{key}-cpu")
    assert "spacy importable False" in (out / "env.txt").read_text()  # the block did act
    # each benchmark's tiny run, read back from its --json (no second run of the scripts here)
    check_retrieval_rows(json.loads((out / "retrieval.json").read_text()))
    (row,) = json.loads((out / "throughput.json").read_text())["rows"]
    assert row["preset"] == "fast" and row["clips_per_s"] > 0 and 0 < row["load_share"] < 1
    (row,) = json.loads((out / "token_loss.json").read_text())["rows"]
    assert row["lowmem_s"] > 0 and row["mem_lowmem"]["peak_bytes"] >= 0  # the custom autograd
    rows = json.loads((out / "fusion_step.json").read_text())["rows"]
    assert {r["model"] for r in rows} == {"default", "paper"}
    assert "Retrieval" in _written(doc, "retrieval-cpu")
    assert "clips/s" in _written(doc, "throughput-cpu")


def test_gpu_check_script_is_valid_bash():
    script = REPO / "benchmarks" / "gpu_check.sh"
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = script.read_text()
    for bench in ("token_loss", "fusion_step", "retrieval", "throughput"):
        assert f"benchmarks.{bench}" in text
    assert "-m gpu" in text and "--write" in text and "--dry-run" in text
    assert "TACO_TAG_CACHE" in text and "--compile" in text and "--amp" in text
