"""``kpnet demo --once``: three real nodes play the regional scenario end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KPNET = str(Path(sys.executable).parent / "kpnet")


def test_the_demo_scenario_holds_from_start_to_end(tmp_path):
    demo_dir = tmp_path / "demo"
    result = subprocess.run(
        [KPNET, "demo", "--once", "--data-dir", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Scenario: 9/9 checks passed; every step held." in out
    for outcome in (
        "CM received the alert from CF",
        "CD received the alert from CF",
        "CD reports Comptoir Kasaï Étoile SPRL with its licence revoked",
        "CM receives exactly the fields CF released",
        "CD received CM's alert after restarting",
    ):
        assert f"✔ {outcome}" in out
    assert "✘" not in out
    # The nodes were stopped: their directories stay, with their audit logs.
    assert {p.name for p in demo_dir.iterdir()} == {"CM", "CF", "CD"}
    verified = subprocess.run(
        [KPNET, "audit", "verify", "--data-dir", str(demo_dir / "CF")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_demo_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = subprocess.run(
        [KPNET, "demo", "--once", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path} is not empty; give the demo an empty or new directory"
    ]
    assert (tmp_path / "keep.txt").read_text() == "mine"
