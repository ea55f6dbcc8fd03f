"""The floor plan of DESIGN.md, enforced: imports only point down, and units on one floor stay apart.

Every ``.py`` file under ``minivgg/`` is parsed with ``ast`` (nothing is
imported or run); every import -- absolute ``minivgg.x``, relative ``from ..x
import y``, at module level or inside a function -- is resolved to the unit
of the package it reaches (``ops``, ``training``, ``vgg`` ...). An import that
points up a floor, or from one unit to another on the same floor, fails the
test with the file, the line and both floors. A unit missing from
:data:`FLOORS` fails too, so the table stays complete.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minivgg"

#: unit -> floor (DESIGN.md, "The house, floor by floor"). ``_version`` is the
#: basement every floor may read; the package root and ``__main__`` sit on top.
FLOORS: dict[str, int] = {
    "_version": 0,
    "kernels": 1,
    "ops": 2,
    "layers": 3, "architectures": 3,  # the config tables: pure data, imports nothing of minivgg
    "configs": 4, "vgg": 4, "gradcheck": 4,
    "io": 5,
    "analysis": 6, "training": 6, "bench": 6, "visualize": 6, "exercises": 6,
    "cli": 7,
    "__main__": 8, "__init__": 8,
}

#: Same-floor imports that are part of the design: a model is built from its config.
ALLOWED_SIDEWAYS = {("vgg", "configs")}


class Import(NamedTuple):
    path: str  # importing file, relative to the package
    line: int
    source: str  # importing unit
    target: str  # imported unit
    module: str  # the dotted module named


def _module_of(path: Path, root: Path) -> list[str]:
    """``minivgg/ops/conv/__init__.py`` -> ``["ops", "conv"]`` (the package the file *is*, or is in)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts


def _imports(path: Path, root: Path) -> list[tuple[int, list[str]]]:
    """``(line, dotted parts under the package)`` for every import of the package in ``path``."""
    parts = _module_of(path, root)
    package = parts[:-1]  # where a relative import starts: a module's package, or the package an __init__ is
    found: list[tuple[int, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == root.name:
                    found.append((node.lineno, names[1:]))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = (node.module or "").split(".")
                if names[0] != root.name:
                    continue
                base = names[1:]
            else:
                up = node.level - 1
                if up > len(package):
                    raise AssertionError(f"{path}:{node.lineno}: relative import climbs out of the package")
                base = package[: len(package) - up] + (node.module.split(".") if node.module else [])
            if not base:
                # ``from . import ops`` / ``from minivgg import ops``: from the package root, each
                # name is a unit (or a name defined in the root's __init__, see _unit)
                for alias in node.names:
                    found.append((node.lineno, base + [alias.name]))
            else:
                found.append((node.lineno, base))
    return found


def _unit(parts: list[str], root: Path | None = None) -> str:
    """The top-level module or package ``parts`` lies in; a name of the root package itself is ``__init__``."""
    if not parts:
        return "__init__"
    if root is not None and not ((root / parts[0]).is_dir() or (root / f"{parts[0]}.py").is_file()):
        return "__init__"  # e.g. ``from .. import __version__``: a name defined in minivgg/__init__.py
    return parts[0]


def collect(root: Path) -> list[Import]:
    """Every import between units of the package below ``root`` (same-unit imports left out)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        src_parts = _module_of(path, root)
        source = _unit(src_parts) if src_parts != ["__init__"] else "__init__"
        for line, target_parts in _imports(path, root):
            target = _unit(target_parts, root)
            if target != source:
                out.append(Import(str(path.relative_to(root)), line, source, target, ".".join(target_parts)))
    return out


def violations(root: Path, floors: dict[str, int] = FLOORS) -> list[str]:
    """One line per import that breaks the floor plan, and per unit missing from ``floors``."""
    problems = []
    units = {_unit(_module_of(p, root)) for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    for unit in sorted(units - set(floors)):
        problems.append(f"{unit}: not in the floor table; add it to FLOORS (and to DESIGN.md's floor plan)")
    for imp in collect(root):
        if imp.source not in floors or imp.target not in floors:
            if imp.target not in floors:
                problems.append(f"{imp.path}:{imp.line}: imports {imp.module!r}, unit {imp.target!r} is not "
                                "in the floor table")
            continue
        fs, ft = floors[imp.source], floors[imp.target]
        where = f"{imp.path}:{imp.line}: {imp.source} (floor {fs}) imports {imp.module!r}"
        if ft > fs:
            problems.append(f"{where}, which is UP on floor {ft}")
        elif ft == fs and (imp.source, imp.target) not in ALLOWED_SIDEWAYS:
            problems.append(f"{where}, a sibling on the same floor {ft}")
    return problems


def test_the_package_follows_the_floor_plan():
    assert len(collect(PACKAGE)) > 50  # the walk found the package's imports
    problems = violations(PACKAGE)
    assert not problems, "floor plan broken:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------
# negative controls: the checker on a fake package catches each kind of breach
# ---------------------------------------------------------------------------

def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "minivgg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_accepts_downward_imports(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "from .vgg import VGG\n",
        "ops/__init__.py": "from ..kernels import relu\n",
        "kernels/__init__.py": "", "kernels/relu.py": "",
        "vgg.py": "from .configs import VGGConfig\nfrom . import ops\n",
        "configs.py": "import minivgg.ops\n",
        "training/trainer.py": "from ..io.files import atomic_write\nfrom .evaluate import f\n",
        "training/evaluate.py": "", "io/files.py": "from .._version import v\n", "_version.py": "",
        "cli/train.py": "def run():\n    from ..training import trainer\n",
    })
    assert violations(root) == []
    assert {(i.source, i.target) for i in collect(root)} >= {("ops", "kernels"), ("vgg", "configs"),
                                                             ("cli", "training"), ("training", "io")}


@pytest.mark.parametrize("files, words", [
    ({"ops/pool.py": "from ..layers import Dense\n", "layers.py": ""}, "UP on floor 3"),
    ({"kernels/k.py": "def f():\n    import minivgg.cli.train\n", "cli/train.py": ""}, "UP on floor 7"),
    ({"analysis/a.py": "from ..training import data\n", "training/data.py": ""}, "sibling on the same floor 6"),
    ({"bench/b.py": "from .. import analysis\n", "analysis/__init__.py": ""}, "sibling on the same floor 6"),
    ({"configs.py": "from . import vgg\n", "vgg.py": ""}, "sibling on the same floor 4"),
    ({"io/x.py": "from ... import cli\n"}, "relative import climbs out"),
    ({"visualise/v.py": "from ..ops import relu\n", "ops/relu.py": ""}, "visualise: not in the floor table"),
    ({"cli/c.py": "from .. import __version__\n", "__init__.py": "__version__ = '1'\n"}, "UP on floor 8"),
    ({"ops/o.py": "from minivgg import training\n", "training/__init__.py": ""}, "UP on floor 6"),
])
def test_checker_catches_each_breach(tmp_path, files, words):
    root = _fake_package(tmp_path, files)
    if "climbs out" in words:
        with pytest.raises(AssertionError, match=words):
            violations(root)
        return
    problems = violations(root)
    assert any(words in p for p in problems), problems
