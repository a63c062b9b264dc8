"""Bad and careless inputs, run as a user would run them, each outcome classified (issue 23).

Every command line gets the inputs of tests/cli_inputs.py, plus scenarios that used to lose
data or mislead (two trainings into one folder, a new run over an old one, a world over the
shipped one, a tag cache over a user's file, a release over the instructor notebooks, an
all-inf score matrix, an infinite temperature, TACO_FAST spellings). Each runs in its own
subprocess, in a scratch copy-free temp folder, and gets one verdict:

    OK            exit 0 where success was right
    clear error   exit != 0, one `error:` line, no traceback
    traceback     a Python traceback on stderr
    silently wrong  exit 0 (or a wrong value) where the input should have been refused
    data loss     a file that existed before was changed or removed
    hang          still running after --timeout seconds

    python -m benchmarks.bad_inputs [--jobs 2] [--timeout 120] [--json runs/bad_inputs.json]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cli_inputs import bad_inputs  # noqa: E402

VERDICTS = ("OK", "clear error", "traceback", "silently wrong", "data loss", "hang")

# python -c snippets: (label, code, expect) with expect "error" (must raise a clear ValueError,
# printed as one line by the snippet) or "ok"
SNIPPETS = [
    ("retrieval_metrics of an all-inf matrix",
     "import torch; from taco_lite.metrics import retrieval_metrics; "
     "print(retrieval_metrics(torch.full((4, 4), float('inf'))))", "error"),
    ("sentence_nce(tau=inf)",
     "import torch; from taco_lite.losses import sentence_nce; "
     "print(sentence_nce(torch.randn(4, 8), torch.randn(4, 8), tau=float('inf')))", "error"),
    *[(f"TACO_FAST={v!r}", "from taco_lite.runtime.env import fast_mode; "
       f"import os; os.environ['TACO_FAST'] = {v!r}; assert fast_mode() is {want}", "ok")
      for v, want in (("true", True), ("yes", True), ("TRUE", True), (" 1", True), ("off", False))],
    ("TACO_FAST='2'", "from taco_lite.runtime.env import fast_mode; import os; "
     "os.environ['TACO_FAST'] = '2'; print(fast_mode())", "error"),
]  # fmt: skip


def _digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            out[str(q)] = hashlib.sha256(q.read_bytes()).hexdigest() if q.exists() else "-"
    return out


def _classify(rc: int | None, stderr: str, expect: str, before: dict, after: dict) -> str:
    if rc is None:
        return "hang"
    if any(after.get(k) != v for k, v in before.items()):
        return "data loss"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if expect == "ok":
        return "OK" if rc == 0 else "clear error"
    if rc == 0:
        return "silently wrong"
    lines = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith(("usage:", " "))]
    return "clear error" if lines and "error" in lines[-1].lower() else "traceback"


def _run(cmd: list[str], timeout: float, env: dict, cwd: Path) -> tuple[int | None, str]:
    """(exit status or None after `timeout`, stderr); a command still running is killed with
    its whole process group (a sweep's worker processes too)."""
    import signal

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return None, err or ""


def cases(tmp: Path) -> list[dict]:
    """Every input: {"command", "label", "argv" | "code", "expect", "guard" (files to keep)}."""
    out = []
    inputs = bad_inputs(tmp / "cli")
    keep = [tmp / "cli" / "world_here", tmp / "cli" / "notebooks", tmp / "cli" / "student",
            tmp / "cli" / "sweep_stale"]  # fmt: skip
    for command, items in inputs.items():
        for label, argv in items:
            out.append({"command": command, "label": label, "expect": "error", "guard": keep,
                        "argv": [sys.executable, "-m", f"taco_lite.{command}", *argv]})  # fmt: skip
    for label, code, expect in SNIPPETS:
        out.append({"command": "python", "label": label, "expect": expect, "guard": [],
                    "argv": [sys.executable, "-c", _one_line(code)]})  # fmt: skip
    # data-loss scenarios: an existing run folder, a user's file as tag cache
    run = tmp / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"another run's checkpoint")
    (run / "model.pt").write_bytes(b"another run's model")
    out.append({"command": "train", "label": "new run into a run folder", "expect": "error",
                "guard": [run], "argv": [sys.executable, "-m", "taco_lite.train", "--steps", "2",
                                         "--quiet", "--out", str(run)]})  # fmt: skip
    notes = tmp / "notes.txt"
    notes.write_text("my notes")
    out.append({"command": "python", "label": "TACO_TAG_CACHE=notes.txt", "expect": "error",
                "guard": [notes], "env": {"TACO_TAG_CACHE": str(notes)},
                "argv": [sys.executable, "-c", _one_line(
                    "from taco_lite.text.tagging import tag_captions; "
                    "tag_captions(['The ball rolls.'])")]})  # fmt: skip
    return out


def _one_line(code: str) -> str:
    """Wrap a snippet so that a ValueError prints one `error:` line and exits 2."""
    return (
        "import sys\ntry:\n    " + code.replace("; ", "\n    ") + "\nexcept ValueError as e:\n"
        "    print('error: ' + ' '.join(str(e).split()), file=sys.stderr); sys.exit(2)\n"
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bad_inputs", description=__doc__)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json", help="write every outcome to this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "cli").mkdir()
        todo = cases(tmp)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TACO_LITE_DATA": ""}

        def one(case: dict) -> dict:
            before = _digest(case["guard"])
            rc, err = _run(case["argv"], args.timeout, {**env, **case.get("env", {})}, tmp)
            verdict = _classify(rc, err, case["expect"], before, _digest(case["guard"]))
            last = err.strip().splitlines()[-1] if err.strip() else ""
            return {"command": case["command"], "label": case["label"], "verdict": verdict,
                    "rc": rc, "stderr_last": last[:300]}  # fmt: skip

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, todo))
    counts = collections.Counter(r["verdict"] for r in results)
    for r in results:
        if r["verdict"] not in ("OK", "clear error"):
            print(f"{r['verdict']:>14}: {r['command']} {r['label']}: {r['stderr_last']}")
    print(f"{len(results)} inputs: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
    summary = {"inputs": len(results), "counts": {v: counts.get(v, 0) for v in VERDICTS},
               "results": results}  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
