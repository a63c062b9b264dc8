"""Every command line answers a user's mistake with one line: what was wrong, what to do, no
traceback (issue 23). The inputs are tests/cli_inputs.py; benchmarks/bad_inputs.py runs the
same ones as subprocesses and counts the outcomes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_inputs import REPO, bad_inputs


def _cli(command: str):
    import importlib

    return importlib.import_module(f"taco_lite.{command}.__main__").cli


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return bad_inputs(tmp_path_factory.mktemp("bad"))


def test_every_command_gets_at_least_ten_bad_inputs(inputs):
    assert set(inputs) == {"world", "train", "evaluate", "sweep", "downstream", "course"}
    assert all(len(v) >= 10 for v in inputs.values())


@pytest.mark.parametrize("command", ["world", "train", "evaluate", "sweep", "downstream", "course"])
def test_bad_inputs_give_one_line_errors(inputs, command, capsys):
    cli, bad = _cli(command), []
    for label, argv in inputs[command]:
        with pytest.raises(SystemExit) as exit_:
            cli(argv)
        err = capsys.readouterr().err.strip().splitlines()
        last = err[-1] if err else ""
        ok = exit_.value.code == 2 and "error:" in last and "Traceback" not in "\n".join(err)
        ok = ok and len([ln for ln in err if not ln.startswith("usage:") and ln[:1] != " "]) == 1
        if not ok:
            bad.append(f"{label} {argv}: exit {exit_.value.code}, stderr {err}")
    assert not bad, "\n".join(bad)


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "taco_lite.evaluate", "--checkpoint", str(tmp_path / "x.pt"),
         "--debug"], cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "CheckpointError" in proc.stderr
