"""A node backed up with messages still to send, and restored into a new directory,
delivers them once it runs: its peer accepts it (same keys), and answers reach it.

The message is caught in the worst state: CM's sender has leased it and is waiting on
a peer that accepts the connection but never answers when CM is killed. The lease is
long (10 minutes), so a prompt delivery shows the restore released it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from node.config import load_settings
from node.db import make_engine
from node.db.models import OutboxMessage
from tests.conftest import fresh_postgres_database
from tests.federation.conftest import (
    RunningNode,
    alert_json,
    build_network,
    inbound_alerts,
    recipient_states,
    send_alert,
    wait_for,
)
from tests.node.conftest import KPNET, cli_env

PASSPHRASE = "Bangui-Yaoundé, cellules KP 2026"
LONG_LEASE = {"KPNET_DELIVERY_LEASE_SECONDS": "600"}


def silent_listener(port: int) -> socket.socket:
    """A socket listening on ``port`` that never answers: a peer that hangs."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


def outbox(node_dir: Path) -> list[OutboxMessage]:
    engine = make_engine(load_settings(node_dir).sqlalchemy_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(OutboxMessage)).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def kpnet(*args: str | Path) -> None:
    result = subprocess.run(
        [str(KPNET), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=cli_env(KPNET_BACKUP_PASSPHRASE=PASSPHRASE),
    )
    assert result.returncode == 0, result.stderr
    assert PASSPHRASE not in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("target", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_restored_node_delivers_what_was_pending_at_backup(tmp_path: Path, target):
    if target == "postgres" and not os.environ.get("KPNET_TEST_DATABASE_URL"):
        pytest.skip("KPNET_TEST_DATABASE_URL is not set")
    cm, cf = build_network(tmp_path, ("CM", "CF"))
    with ExitStack() as stack:
        stack.callback(cm.stop)
        stack.callback(cf.stop)
        hanging = stack.enter_context(silent_listener(cf.port))  # CF is down, and worse
        cm.start(extra_env=LONG_LEASE)
        sent = send_alert(cm, alert_json("Colis saisi à Garoua-Boulaï", recipients=["CF"]))
        leased = wait_for(lambda: [m for m in outbox(cm.data_dir) if m.leased_by])
        assert leased[0].status == "pending"
        cm.stop(signal.SIGKILL)  # mid-delivery: the lease stays in the database

        archive = tmp_path / "cm-backup.tar.gz"
        kpnet("backup", "--data-dir", cm.data_dir, archive)
        restored_dir = tmp_path / "CM-restored"
        if target == "postgres":
            url = stack.enter_context(fresh_postgres_database())
            kpnet("restore", archive, "--data-dir", restored_dir, "--database-url", url)
        else:
            kpnet("restore", archive, "--data-dir", restored_dir)
        assert [(m.status, m.leased_by) for m in outbox(restored_dir)] == [("pending", None)]

        # The restored node takes the old one's place (same port: CF's entry for it
        # holds), and CF comes back.
        restored = RunningNode("CM", restored_dir, cm.port, tokens=cm.tokens)
        stack.callback(restored.stop)
        restored.start(extra_env=LONG_LEASE)
        hanging.close()
        cf.start()

        arrived = wait_for(
            lambda: [a for a in inbound_alerts(cf) if a["alert_uuid"] == sent["alert_uuid"]],
            timeout=30,
        )
        wait_for(lambda: recipient_states(restored, sent["id"]) == {"CF": "delivered"})
        assert [m.status for m in outbox(restored_dir)] == ["delivered"]
        # And back: CF's acknowledgement, sealed to CM's keys, opens on the restored node.
        with cf.api("officer") as api:
            response = api.post(f"/api/v1/alerts/{arrived[0]['id']}/ack", json={"status": "read"})
            assert response.status_code == 200, response.text
        wait_for(lambda: recipient_states(restored, sent["id"]) == {"CF": "read"})
        assert "Traceback" not in restored.log_text()
