"""The GPU path needs no spaCy (issue 12): captions tagged once on a CPU machine into a tag
cache train and evaluate on a machine where spaCy cannot be imported at all.

The subprocesses set `sys.modules["spacy"] = None` before importing the kit, so any
`import spacy` raises ImportError: a run that passes never imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from taco_lite.text import tagging, tokenizer

REPO = Path(__file__).resolve().parents[1]
NO_SPACY = "import sys; sys.modules['spacy'] = None  # import spacy -> ImportError\n"


def _run(code: str, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TACO_TAG_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", NO_SPACY + textwrap.dedent(code)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_cache_stores_tokens_next_to_tags(tmp_path):
    cache = tmp_path / "tags.json"
    captions = ["The red ball spins.", "A  blue cube slides left."]
    tags = tagging.tag_captions(captions, cache_path=cache)
    data = json.loads(cache.read_text())
    assert data["tokens"] == {c: tokenizer.tokenize(c) for c in captions}
    assert data["tags"] == dict(zip(captions, tags, strict=True))
    assert all(len(data["tokens"][c]) == len(t) for c, t in zip(captions, tags, strict=True))


def test_cached_captions_need_no_spacy_and_a_new_caption_says_so(tmp_path):
    cache = tmp_path / "tags.json"
    captions = ["The red ball spins.", "A green cone rolls."]
    want = tagging.tag_captions(captions, cache_path=cache)
    out = _run(
        """
        import json
        from taco_lite.text import tokenize
        from taco_lite.text.tagging import tag_captions
        caps = ["The red ball spins.", "A green cone rolls."]
        print(json.dumps([tag_captions(caps), [tokenize(c) for c in caps]]))
        try:
            tag_captions(["A caption nobody tagged."])
        except ImportError:
            print("needs spacy")
        """,
        cache,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[0]) == [want, [tokenizer.tokenize(c) for c in captions]]
    assert lines[1] == "needs spacy"  # an uncached caption still needs the tagger


# Training and evaluation with spaCy unimportable run in
# tests/test_benchmarks.py::test_gpu_check_dry_run_runs_the_whole_plan_on_cpu_without_spacy
# (`gpu_check.sh --dry-run --no-spacy`: train, evaluate and every benchmark from a tag cache).
