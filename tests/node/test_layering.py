"""Inside ``node/``, dependencies point down only (docs/architecture.md §2.1).

Surfaces (``cli``, ``api``, ``console``) sit on what the two web surfaces share
(``web``), which sits on ``federation``, which sits on ``services``, which sit on
``schemas``, ``matching`` and storage (``db``, settings, keys). A layer never imports a
layer above it, the API and the console never import each other, and the CLI imports
neither. (That ``protocol/`` never imports ``node`` is checked by
tests/protocol/test_layering.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SURFACES = ("node.cli", "node.api", "node.console", "node.demo", "node.bench", "node.app")
ABOVE_SERVICES = ("node.federation", "node.web", *SURFACES)

# importer package -> packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "node.services": ABOVE_SERVICES,
    "node.federation": ("node.web", *SURFACES),
    "node.web": SURFACES,
    "node.api": ("node.console", "node.cli"),
    "node.console": ("node.api", "node.cli"),
    "node.cli": ("node.api", "node.console"),
    "node.schemas": ("node.services", "node.matching", "node.db", *ABOVE_SERVICES),
    "node.matching": ("node.services", "node.schemas", *ABOVE_SERVICES),
    "node.db": ("node.services", "node.schemas", "node.matching", *ABOVE_SERVICES),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, nested ones included."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # ``from . import feed`` imports the module node.federation.feed
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        for layer, forbidden in FORBIDDEN.items():
            if not within(importer, layer):
                continue
            for imported in sorted(imports_of(path, root)):
                for upper in forbidden:
                    if within(imported, upper):
                        problems.append(f"{importer} imports {imported} ({layer} → {upper})")
    return problems


def test_the_scanner_catches_an_upward_import(tmp_path: Path) -> None:
    # Guard against a vacuous pass: a tree with one upward import of each kind fails.
    root = tmp_path / "node"
    for package in ("services", "federation", "api", "console", "web", "schemas"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "services" / "alerts.py").write_text("from ..federation import sender\n")
    (root / "api" / "deps.py").write_text("def f():\n    import node.console.auth\n")
    (root / "console" / "pages.py").write_text("from ..web.request import NodeDep\n")
    (root / "schemas" / "peers.py").write_text("from node.services.peers import x\n")
    assert violations(root) == [
        "node.api.deps imports node.console.auth (node.api → node.console)",
        "node.schemas.peers imports node.services.peers (node.schemas → node.services)",
        "node.schemas.peers imports node.services.peers.x (node.schemas → node.services)",
        "node.services.alerts imports node.federation (node.services → node.federation)",
        "node.services.alerts imports node.federation.sender (node.services → node.federation)",
    ]


def test_the_node_package_is_scanned() -> None:
    packages = {module_name(p, NODE_DIR) for p in NODE_DIR.rglob("__init__.py")}
    assert {
        "node.services",
        "node.federation",
        "node.api",
        "node.console",
        "node.cli",
        "node.web",
        "node.schemas",
        "node.matching",
        "node.db",
    } <= packages


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_layer_above_it(layer: str) -> None:
    assert [v for v in violations(NODE_DIR) if f"({layer} →" in v] == []
