"""The knob curve (issue 10): TACo - L1 against WorldConfig.twin_frac, at tiny size."""

from __future__ import annotations

import json

import pytest


@pytest.mark.timeout(600)
def test_knob_curve_end_to_end_at_tiny_size(tmp_path, capsys):
    from taco_lite.sweep.knob import TITLE, main

    out, results, fig = tmp_path / "knob", tmp_path / "results.md", tmp_path / "fig.png"
    results.write_text("# Results\n\nkeep me\n")
    argv = ["--values", "0,0.6", "--seeds", "0", "--preset", "fast", "--steps", "2",
            "--eval-clips", "12", "--n-eval", "20", "--jobs", "2", "--world-clips", "60",
            "--out", str(out), "--results", str(results), "--figure", str(fig)]  # fmt: skip
    text = main(argv)
    for value in ("0", "0.6"):
        folder = out / f"twin_frac={value}"
        recs = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
        assert sorted(r["exp"] for r in recs) == ["L1", "TACo"]
        for exp in ("L1", "TACo"):
            assert (folder / "ranks" / f"{exp}_s0_final.pt").is_file()
        assert f"| {value} | 0 |" in text
    doc = results.read_text()
    assert "keep me" in doc and TITLE in doc and "<!-- knob-twin_frac:start -->" in doc
    assert fig.is_file() and fig.stat().st_size > 1000
    # the settings are one world config with only the knob changed
    from taco_lite.sweep.knob import load_knob_data

    a = load_knob_data(tmp_path, 0.0, "val", 12, num_clips=60)
    b = load_knob_data(tmp_path, 0.6, "val", 12, num_clips=60)
    assert a["base"].config.twin_frac == 0.0 and b["base"].config.twin_frac == 0.6
    assert a["base"].config.seed == b["base"].config.seed
    c = load_knob_data(tmp_path, 7, "val", 12, num_clips=60, knob="seed")  # a fresh world seed
    assert c["base"].config.seed == 7 and isinstance(c["base"].config.seed, int)
    assert c["base"].config.twin_frac == a["base"].config.twin_frac + 0.1  # the shipped 0.1
    # --report alone redraws from what is on disk, training nothing
    capsys.readouterr()
    again = main([*argv, "--report"])
    assert again == text
