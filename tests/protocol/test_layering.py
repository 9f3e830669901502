"""The protocol package is a pure library: standard library, PyNaCl and pydantic only.

It must never reach up into the node (web framework, database, HTTP client, metrics),
so that other implementations and tools can use it alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {"fastapi", "sqlalchemy", "httpx", "prometheus_client", "starlette", "uvicorn", "node"}
# pydantic_core is pydantic's own engine, installed and version-pinned by pydantic.
ALLOWED_THIRD_PARTY = {"nacl", "pydantic", "pydantic_core"}
OWN_PACKAGE = "protocol"


def imported_top_level_modules(source: str) -> set[str]:
    """Top-level module names of every absolute import anywhere in ``source``.

    Relative imports (``from ._x import y``) stay inside the package and are skipped;
    imports nested in functions, ``if TYPE_CHECKING:`` blocks or ``try:`` are included.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def protocol_sources() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def test_the_scanner_sees_the_package_and_catches_forbidden_imports() -> None:
    # Guard against a vacuous pass: the files exist and the scanner really finds imports.
    names = {path.name for path in protocol_sources()}
    assert {"__init__.py", "_envelope.py", "_card.py", "_canonical.py"} <= names
    sample = (
        "import os\nimport sqlalchemy.orm as orm\nfrom fastapi import APIRouter\n"
        "from . import _keys\nfrom .node import x\n"
        "def f():\n    import httpx\n"
        "try:\n    from node.db import models\nexcept ImportError:\n    pass\n"
    )
    assert imported_top_level_modules(sample) == {"os", "sqlalchemy", "fastapi", "httpx", "node"}


@pytest.mark.parametrize("path", protocol_sources(), ids=lambda p: p.name)
def test_no_node_or_server_imports(path: Path) -> None:
    found = imported_top_level_modules(path.read_text(encoding="utf-8"))
    assert not found & FORBIDDEN, f"{path.name} imports {sorted(found & FORBIDDEN)}"


@pytest.mark.parametrize("path", protocol_sources(), ids=lambda p: p.name)
def test_only_stdlib_nacl_and_pydantic(path: Path) -> None:
    found = imported_top_level_modules(path.read_text(encoding="utf-8"))
    third_party = found - set(sys.stdlib_module_names) - {OWN_PACKAGE}
    assert third_party <= ALLOWED_THIRD_PARTY, (
        f"{path.name} imports third-party {sorted(third_party - ALLOWED_THIRD_PARTY)}"
    )


def test_importing_protocol_loads_no_node_or_server_module() -> None:
    # Behavioural counterpart of the static scan: nothing forbidden ends up in sys.modules,
    # not even indirectly through a dependency.
    code = (
        "import sys, protocol\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROTOCOL_DIR.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == ""
