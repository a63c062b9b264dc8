"""What every benchmark shares: timing, the machine's description, the docs writer, data.

Why one module: every figure in docs/benchmarks.md must be taken the same way, or ratios
between scripts mean nothing. The rules live here once:

- baseline and contender run in the same process, warm-up first, then `repeats` interleaved
  rounds (the order rotates each round, so neither side always runs on a cold cache);
- a figure is the median of its rounds; on CUDA every timed call ends with a synchronize;
- a written section carries the machine, the torch version and the exact command.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


# ------------------------------------------------------------------------------ command line


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes (`--device`, `--tiny`, `--repeats`, `--write`, ...)."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{prog}", description=description)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    p.add_argument("--tiny", action="store_true", help="smallest sizes: a smoke test, no figures")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per variant (median)")
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--doc", default=str(DOC), help="markdown file that --write edits")
    p.add_argument("--json", help="also dump the raw results to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    return p


def pick_device(name: str) -> torch.device:
    """`auto` = CUDA if present, else CPU; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} but this torch sees no CUDA GPU: use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {name}: the benchmarks support auto, cpu and cuda")
    return dev


def command(prog: str, argv: Sequence[str]) -> str:
    """The exact command that reproduces a run (what the docs print next to each table)."""
    return " ".join(["python -m", f"benchmarks.{prog}", *argv]).strip()


# ------------------------------------------------------------------------------ timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds for one call of `fn`, GPU work included (synchronize before and after)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(
    fns: dict[str, Callable[[], Any]],
    device: torch.device,
    repeats: int = 3,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds of each fn, measured in interleaved rounds after `warmup` calls each.

    Why interleaved: on a shared machine the load drifts; timing A three times and then B
    three times would put the drift into the ratio A / B. Rounds alternate, and the order
    rotates each round so that no variant always follows the same neighbour.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1 but is {repeats}")
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(time_once(fns[name], device))
    return {name: statistics.median(ts) for name, ts in times.items()}


# ------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    found = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    return found.group(1).strip() if found else platform.machine()


def cores() -> int:
    """Cores this process may use (the affinity mask, which containers narrow), not the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def machine_line(info: dict[str, Any]) -> str:
    line = (
        f"{info['cpu']}, {info['cores']} cores ({info['torch_threads']} torch threads), "
        f"torch {info['torch']}, Python {info['python']}"
    )
    if info.get("gpu"):
        line = f"{info['gpu']} (CUDA {info.get('cuda')}); host: {line}"
    return line


# ------------------------------------------------------------------------------ markdown


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section(
    title: str, info: dict[str, Any], cmd: str, table: str, notes: Sequence[str] = ()
) -> str:
    """One section of docs/benchmarks.md: title, machine, command, table, notes."""
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    parts = [
        f"### {title}",
        "",
        f"- machine: {machine_line(info)}",
        f"- command: `{cmd}` ({stamp})",
        "",
        table,
    ]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    return "\n".join(parts)


def write_section(name: str, body: str, doc: str | os.PathLike = DOC) -> Path:
    """Put `body` between `<!-- name:start -->` and `<!-- name:end -->` in `doc`.

    The markers stay, so the next run replaces its own section and nothing else; a section
    whose markers are missing is appended at the end (the file is created if needed).
    """
    path = Path(doc)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text and text.index(start) < text.index(end):
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def finish(
    args: argparse.Namespace,
    name: str,
    body: str,
    results: dict[str, Any],
    device: torch.device,
) -> None:
    """Print the section; with --write put it in the doc, with --json dump the raw results."""
    print(body)
    key = f"{name}-{device.type}"
    if args.write:
        path = write_section(key, body, args.doc)
        print(f"\nwrote section {key!r} into {path}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def fmt_s(seconds: float) -> str:
    """Seconds in a readable unit (ms below one second)."""
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def fmt_ratio(x: float) -> str:
    """A ratio with as many digits as it deserves: 0.93x, 6.8x, 2,416x."""
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}" if unit == "GB" else f"{n / size:.0f} {unit}"
    return f"{n:.0f} B"


# ------------------------------------------------------------------------------ memory


def rss_peak_bytes() -> int:
    """Peak resident memory of this process so far (ru_maxrss, kB on Linux).

    Beware: a child process inherits its parent's ru_maxrss across fork + exec, so use
    `rss_hwm_bytes` (VmHWM, reset by exec and by `reset_rss_peak`) to measure inside a probe.
    """
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def rss_now_bytes() -> int:
    """Resident memory right now (VmRSS)."""
    return _proc_status_kb("VmRSS") * 1024


def rss_hwm_bytes() -> int:
    """Peak resident memory of this process image (VmHWM): since exec or `reset_rss_peak`."""
    return _proc_status_kb("VmHWM") * 1024


def reset_rss_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_probe(module: str, args: Sequence[str], timeout: float = 600) -> dict[str, Any]:
    """Run `python -m benchmarks.<module> <args>` in a fresh process; parse its last JSON line.

    Why a subprocess: a process's peak RSS only ever grows (unless the kernel lets us reset
    it), so a peak measured after other work in the same process would hide a smaller one.
    A fresh process measures one thing.
    """
    out = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"probe {module} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ shared inputs


def load_naive() -> ModuleType:
    """The loop twins of tests/naive.py (tests/ is not a package, so load it by path)."""
    path = REPO / "tests" / "naive.py"
    spec = importlib.util.spec_from_file_location("taco_naive", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the naive loop twins from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=4)
def world_datasets(
    splits: tuple[str, ...] = ("train", "val", "test", "comp"), max_tokens: int = 32
) -> tuple[dict[str, Any], list[str], str]:
    """The toy world's datasets, vocabulary and where the POS tags came from.

    spaCy tags as in training when an English pipeline is installed ("spacy"); otherwise the
    world's gold tags ("gold") so that the benchmarks still run on a bare GPU box. Timings do
    not depend on which tags are used; recall figures barely do (the tags agree on the toy
    world's captions, see taco_lite/world/agreement.py). Cached: the scripts share one build.
    """
    from taco_lite.world import load_world

    world = load_world()
    try:
        from taco_lite.data import build_datasets

        datasets, vocab, _ = build_datasets(world, splits=splits, max_tokens=max_tokens)
        return datasets, list(vocab.to_list()), "spacy"
    except (ImportError, OSError) as err:
        print(
            f"[benchmarks] spaCy tagging unavailable ({str(err).splitlines()[0]}); "
            "using the world's gold POS tags",
            file=sys.stderr,
        )
        return (*_gold_tag_datasets(world, splits, max_tokens), "gold")


def _gold_tag_datasets(
    world: Any, splits: tuple[str, ...], max_tokens: int
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Items for `data.collate` built from the world's own words and gold tags (no spaCy).

    The world's `words` are its captions' spaCy tokens (docs/design.md), so ids and weights
    match what `build_datasets` gives; gold grounding is left out (collate fills False).
    """
    import numpy as np

    from taco_lite.data import assign_caption_ids, encode_text_item
    from taco_lite.text import Vocab
    from taco_lite.text.pos import DEFAULT_POS_TAGS, idf_table

    def tokens(i: int) -> list[str]:
        return [w.lower() for w in world.segments[i].words]

    train_tokens = [tokens(i) for i in world.split("train")]
    vocab = Vocab.build(train_tokens)
    idf = idf_table(train_tokens)
    out: dict[str, list[dict[str, Any]]] = {}
    for s in splits:
        segs = [int(i) for i in world.split(s)]
        toks = [tokens(i) for i in segs]
        items = []
        for seg_id, tok, cap_id in zip(segs, toks, assign_caption_ids(toks), strict=True):
            seg = world.segments[seg_id]
            item = encode_text_item(tok, seg.gold_pos, vocab, idf, DEFAULT_POS_TAGS, max_tokens)
            frames = world.segment_frames(seg_id).transpose(0, 3, 1, 2)
            item["frames"] = torch.from_numpy(np.ascontiguousarray(frames))  # (m, 3, H, W) uint8
            item["seg_id"], item["caption_id"] = seg_id, cap_id
            items.append(item)
        out[s] = items
    return out, list(vocab.to_list())


def run_and_report(name, args, argv, device, run, render) -> dict:
    """The tail every benchmark shares: run, describe the machine, render, write, return."""
    res = run(args, device)
    info = machine(device)
    res["machine"] = info
    body = render(res, info, command(name, sys.argv[1:] if argv is None else argv), device)
    finish(args, name, body, res, device)
    return res
