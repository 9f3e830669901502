"""A receiver whose disk fills up (SQLite on a small tmpfs): it says it is not ready,
refuses peers' messages as retryable instead of failing to store them, and once space
is freed everything arrives, exactly once. Mounting needs root (CI runs as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import httpx

from tests.federation.conftest import (
    build_network,
    inbound_alerts,
    outbox_to,
    peer_row,
    queue_alerts,
    wait_for,
)

DISK_BYTES = 96 * 1024 * 1024


def fill(path: Path, leave: int) -> None:
    """Write a file that leaves ``leave`` bytes free on ``path``'s file system."""
    free = shutil.disk_usage(path).free
    with open(path / "filler", "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1024 * 1024)
        remaining = max(0, free - leave)
        while remaining > 0:
            f.write(chunk[: min(len(chunk), remaining)])
            remaining -= len(chunk)
        f.flush()
        os.fsync(f.fileno())


def test_a_receiver_with_a_full_disk_refuses_as_retryable_and_gets_everything_later(tmp_path):
    disk = tmp_path / "CF"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (needs root): {mounted.stderr}"
    try:
        cm, cf = build_network(tmp_path, ("CM", "CF"))
        try:
            cf.start()
            cm.start()
            fill(disk, 1024 * 1024)  # 1 MiB left: below the 64 MiB the node keeps free
            health = httpx.get(f"{cf.url}/healthz", timeout=10)
            assert health.status_code == 503 and health.json()["database"] == "error: disk_full"
            sent = queue_alerts(cm, 20, recipients=["CF"])
            wait_for(lambda: "unavailable" in (peer_row(cm, "CF")["last_error"] or ""))
            assert all(r.status == "pending" for r in outbox_to(cm, "CF"))
            (disk / "filler").unlink()
            wait_for(lambda: httpx.get(f"{cf.url}/healthz", timeout=10).status_code == 200)
            wait_for(lambda: all(r.status == "delivered" for r in outbox_to(cm, "CF")), timeout=60)
            received = Counter(a["alert_uuid"] for a in inbound_alerts(cf))
            assert set(received) == set(sent) and set(received.values()) == {1}
        finally:
            cm.stop()
            cf.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
