"""Every file and section that the kit cites is in the repository (issue 19).

Scans the notebooks, the package (docstrings, feedback strings), the tests, the benchmarks and
the docs for `docs/x.md §N` citations and repo paths such as `taco_lite/losses.py`, and fails
on a file that is not in the tree or a section that the cited file does not have. A section
`§N` resolves to a heading `## N. ...` of the cited file. The method card used to live outside
the repository (TACO_SPEC.md), so a student who cloned the kit could not open it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOPS = ("docs", "taco_lite", "tests", "data", "notebooks", "benchmarks")
PATH = re.compile(
    rf"(?<![\w./-])((?:{'|'.join(TOPS)})/[\w./-]*\.(?:md|py|ipynb|png|json|jsonl|pt|csv|yml|toml))"
)
CITE = re.compile(r"(docs/[\w./-]+\.md)`?\)?\s*((?:§\s*\d+(?:\s*-\s*\d+)?(?:\s*,\s*|\s+and\s+)?)+)")
SECTION = re.compile(r"§\s*(\d+)(?:\s*-\s*(\d+))?")
GONE = re.compile(r"TACO_SPEC")
# files whose missing paths are deliberate fixtures of a checker's own test
FIXTURES = {"tests/test_notebooks.py", "tests/test_citations.py"}


def sources() -> dict[str, str]:
    """{repo-relative path: text} of every tracked text file that can cite."""
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    files = out.stdout.splitlines() if out.returncode == 0 and out.stdout else [
        str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()]  # fmt: skip
    keep = {}
    for f in files:
        p = REPO / f
        if p.suffix in (".py", ".md", ".ipynb", ".toml") and p.is_file() and f not in FIXTURES:
            keep[f] = p.read_text(encoding="utf-8", errors="replace")
    return keep


def headings(text: str) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^#+\s*(\d+)\.", text, re.M)}


def broken_citations(texts: dict[str, str], exists=lambda p: (REPO / p).exists()) -> list[str]:
    """'where: what' for every cited path that is missing and every section its file lacks."""
    problems = []
    for where, text in texts.items():
        text = text.replace("\\n", "\n").replace('\\"', '"')  # notebook JSON
        if GONE.search(text):
            problems.append(f"{where}: cites TACO_SPEC, which is not in the repository "
                            "(the card is docs/method.md)")  # fmt: skip
        for m in PATH.finditer(text):
            path = m.group(1).rstrip(".")
            if "*" in path or path.startswith("runs/") or where.startswith(path):
                continue
            if not exists(path):
                problems.append(f"{where}: cites {path}, which is not in the repository")
        for m in CITE.finditer(text):
            target = m.group(1)
            if not exists(target):
                continue  # reported above
            have = headings((REPO / target).read_text(encoding="utf-8"))
            for s in SECTION.finditer(m.group(2)):
                lo, hi = int(s.group(1)), int(s.group(2) or s.group(1))
                for n in range(lo, hi + 1):
                    if n not in have:
                        problems.append(f"{where}: cites {target} §{n}, which has no section {n}")
    return sorted(set(problems))


def test_the_method_card_is_in_the_repository():
    card = (REPO / "docs" / "method.md").read_text(encoding="utf-8")
    assert set(range(1, 10)) <= headings(card), "docs/method.md lacks a section of §1-§9"


def test_every_cited_file_and_section_exists():
    problems = broken_citations(sources())
    assert not problems, "broken citations:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("see docs/method.md §12", "x.py: cites docs/method.md §12, which has no section 12"),
        ("(docs/method.md §3, §14)", "x.py: cites docs/method.md §14, which has no section 14"),
        ("`docs/method.md` §9-10", "x.py: cites docs/method.md §10, which has no section 10"),
        ("read docs/nowhere.md", "x.py: cites docs/nowhere.md, which is not in the repository"),
        ("taco_lite/losses_old.py", "x.py: cites taco_lite/losses_old.py, which is not in the repository"),
        ("the hint says TACO_SPEC §6", "x.py: cites TACO_SPEC, which is not in the repository "
         "(the card is docs/method.md)"),
    ],
)
def test_the_check_fails_on_a_missing_file_or_section(text: str, problem: str):
    assert broken_citations({"x.py": text}) == [problem]
    assert broken_citations({"x.py": "docs/method.md §3, §8 and taco_lite/losses.py"}) == []
