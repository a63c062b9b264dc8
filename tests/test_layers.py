"""The package's layering, read from the source with `ast`.

The layers are listed once, in the ```layers block of docs/design.md, lowest first. A unit
(a top-level module such as `losses`, or a subpackage such as `train`) may import units on its
own line or on lines above it, never below: the maths never imports the trainer, the trainer
never imports a widget. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "taco_lite"
DESIGN = ROOT / "docs" / "design.md"


def layers(text: str) -> dict[str, int]:
    """{unit: layer index} from the ```layers block (one line per layer, lowest first)."""
    m = re.search(r"```layers\n(.*?)```", text, re.S)
    assert m, "docs/design.md has no ```layers block"
    order: dict[str, int] = {}
    for i, line in enumerate(ln for ln in m.group(1).splitlines() if ln.strip()):
        for unit in line.split("#")[0].split():
            assert unit not in order, f"{unit} is listed twice in the layers block"
            order[unit] = i
    return order


def unit_of(dotted: str) -> str:
    """taco_lite.train.loop -> train; taco_lite.losses -> losses; taco_lite -> taco_lite."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, imported taco_lite unit) for every import in `source`, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, unit_of(a.name))
                for a in node.names
                if a.name.startswith("taco_lite.")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == "taco_lite":  # from taco_lite import viz, course
                found += [
                    (node.lineno, a.name)
                    for a in node.names
                    if (PACKAGE / a.name).exists() or (PACKAGE / f"{a.name}.py").exists()
                ]
            elif target.startswith("taco_lite."):
                found.append((node.lineno, unit_of(target)))
    return found


def upward_imports(order: dict[str, int], files: dict[str, str]) -> list[str]:
    """Every import from a lower layer into a higher one, as readable lines."""
    bad = []
    for module, source in files.items():
        src = unit_of(module)
        if src not in order:
            continue
        for line, tgt in imports_of(source, module):
            if tgt in order and order[tgt] > order[src]:
                bad.append(
                    f"{module}:{line} imports {tgt} (layer {order[tgt]}) from layer {order[src]} ({src})"
                )
    return bad


def package_sources() -> dict[str, str]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[module] = path.read_text()
    return out


def test_every_unit_has_a_layer():
    order = layers(DESIGN.read_text())
    units = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(units - set(order))
    assert not missing, f"add these to the ```layers block of docs/design.md: {missing}"
    stale = sorted(set(order) - units)
    assert not stale, f"the layers block names units that do not exist: {stale}"


def test_no_module_imports_upward():
    bad = upward_imports(layers(DESIGN.read_text()), package_sources())
    assert not bad, "upward imports (move the code down, or pass the value in):\n" + "\n".join(bad)


def test_the_checker_sees_an_upward_import():
    order = layers(DESIGN.read_text())
    files = {
        "taco_lite.losses": "import torch\n\ndef f():\n    from taco_lite.train.loop import train\n",
        "taco_lite.train.step": "from ..widgets import app\n",
        "taco_lite.metrics": "from taco_lite import viz\n",
        "taco_lite.widgets.app": "from taco_lite.train import train\n",  # downward: fine
    }
    bad = upward_imports(order, files)
    assert len(bad) == 3, bad
    assert any("taco_lite.losses:4 imports train" in b for b in bad)


def test_top_level_stays_small():
    modules = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 10, f"{len(modules)} top-level modules: {sorted(modules)}"
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, f"modules over 400 lines (split them by what they do): {long}"
