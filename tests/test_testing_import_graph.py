"""The modules of ``hyperid_mfa`` import one another in one direction only.

A circle of imports works until someone imports its modules in another order, then
fails with a half-initialised module; an import hidden inside a function only moves
that failure to the first call. So every import counts here: top-level, inside
functions, under ``if TYPE_CHECKING:``. The modules are parsed, not imported: no
Django settings needed, and no import side effect can hide an edge.

An import of a package's submodule is an edge to that submodule, not to the package:
Python puts the package in ``sys.modules`` before running its ``__init__``, so a
submodule that only names its parent does not wait for it. Importing a name that the
``__init__`` defines (``from hyperid_mfa.testing import FakeHyperID``) is an edge to
the package.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import hyperid_mfa

PACKAGE = Path(hyperid_mfa.__file__).resolve().parent


def module_paths(package: Path) -> dict[str, Path]:
    """Every module below ``package`` (a directory), by dotted name."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """Each module of ``package`` -> the modules of ``package`` it imports -> first line."""
    modules = module_paths(package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        # The package that relative imports start from.
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported(node, here, modules):
                if target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def _imported(node: ast.AST, here: str, modules: Mapping[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            # "import a.b.c" runs a.b.c; its longest prefix that is one of ours.
            name = alias.name
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                yield name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = here.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            if node.module:
                base = f"{base}.{node.module}" if base else node.module
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in modules:
                yield submodule
            elif base in modules:
                yield base


def find_cycle(graph: Mapping[str, Mapping[str, int]]) -> list[str] | None:
    """One circle of imports as ``[a, b, ..., a]``, or None when there is none."""
    finished: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        path.append(module)
        for target in sorted(graph.get(module, {})):
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in finished:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        finished.add(module)
        return None

    for module in sorted(graph):
        if module not in finished:
            cycle = visit(module)
            if cycle is not None:
                return cycle
    return None


def describe(
    cycle: list[str], graph: Mapping[str, Mapping[str, int]], package: Path = PACKAGE
) -> str:
    modules = module_paths(package)
    steps = [
        f"  {modules[a].relative_to(package.parent)}:{graph[a][b]} imports {b}"
        for a, b in itertools.pairwise(cycle)
    ]
    return "these modules import one another in a circle:\n" + "\n".join(steps)


# ----------------------------------------------------------------------------- the package


def test_the_modules_of_hyperid_mfa_import_one_another_without_a_cycle() -> None:
    graph = import_graph(PACKAGE)
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph)


def test_the_graph_holds_the_imports_of_the_real_package() -> None:
    graph = import_graph(PACKAGE)
    # Relative, from the parent package, absolute through a package: all seen (the
    # lazy and TYPE_CHECKING kinds are proven on made-up packages below).
    assert "hyperid_mfa.testing.http_server" in graph["hyperid_mfa.testing.fake"]
    assert "hyperid_mfa.testing.fake" in graph["hyperid_mfa.testing.server"]
    assert "hyperid_mfa.constants" in graph["hyperid_mfa.testing.transactions"]
    assert "hyperid_mfa.testing" in graph["hyperid_mfa.management.commands.hyperid_mfa_simulator"]


def test_the_testing_package_alone_has_no_cycle() -> None:
    """Kept apart so that it keeps guarding testing/ should the whole-package check fail."""

    def in_testing(module: str) -> bool:
        return module == "hyperid_mfa.testing" or module.startswith("hyperid_mfa.testing.")

    graph = {
        module: {target: line for target, line in edges.items() if in_testing(target)}
        for module, edges in import_graph(PACKAGE).items()
        if in_testing(module)
    }
    assert "hyperid_mfa.testing.fake" in graph
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph)


# ----------------------------------------------------------------------------- the checker


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {"__init__.py": "", "a.py": "from .b import x\n", "b.py": "from .a import y\n"},
            id="top-level",
        ),
        pytest.param(
            {
                "__init__.py": "",
                "a.py": "from . import b\n",
                "b.py": "def f():\n    from .a import y\n    return y\n",
            },
            id="lazy",
        ),
        pytest.param(
            {
                "__init__.py": "",
                "a.py": "import pkg.sub.b\n",
                "sub/__init__.py": "",
                "sub/b.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..a import A\n",
            },
            id="type-checking-and-absolute",
        ),
        pytest.param(
            {
                "__init__.py": "from .a import A\n",
                "a.py": "def f():\n    from pkg import A\n",
            },
            id="through-the-package",
        ),
    ],
)
def test_the_checker_finds_every_kind_of_import_cycle(tmp_path: Path, files: dict[str, str]):
    cycle = find_cycle(import_graph(_package(tmp_path, files)))
    assert cycle is not None
    assert cycle[0] == cycle[-1]


def test_the_checker_passes_a_package_whose_init_imports_its_modules(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .a import A\nfrom .b import B\n",
            "a.py": "from . import b\nA = b.B\n",
            "b.py": "import pkg.c\nB = 1\n",
            "c.py": "import json\n",
        },
    )
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.a": 1, "pkg.b": 2},
        "pkg.a": {"pkg.b": 1},
        "pkg.b": {"pkg.c": 1},
        "pkg.c": {},
    }
    assert find_cycle(graph) is None
