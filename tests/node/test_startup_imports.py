"""What starting a process loads: a node whose database is at the latest migration
opens without Alembic, and a ``kpnet`` command loads only what it uses (``--help``
neither the web application nor the database layer). Each case runs in a fresh
interpreter, where nothing is imported yet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import create_node

OPEN_NODE = """
import json, sys
from node.config import load_settings
from node.runtime import open_node
open_node(load_settings(sys.argv[1])).close()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
HELP = """
import json, sys
from node.cli import app
try:
    app(["--help"], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def loaded(code: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_opening_an_up_to_date_node_does_not_load_alembic(tmp_path: Path) -> None:
    settings = create_node(tmp_path / "node")
    assert "alembic" not in loaded(OPEN_NODE, str(settings.data_dir))


def test_kpnet_help_loads_neither_the_app_nor_the_database_layer() -> None:
    modules = loaded(HELP)
    assert "node.cli" in modules
    for heavy in ("node.app", "fastapi", "sqlalchemy", "alembic", "uvicorn", "node.runtime"):
        assert heavy not in modules, heavy
