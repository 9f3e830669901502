"""A peer's alert holding U+0000 or a non-character is refused alone, not its batch.

In-process on both databases: CM seals a batch of three alerts to GA, the middle one
with a title PostgreSQL cannot store. GA refuses that one as ``schema_invalid`` and
accepts the two others with receipts, so CM's sender is not made to retry them forever.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node.app import create_app
from node.config import load_settings
from protocol import Alert, seal
from tests.federation.conftest import alert_payload, build_network, identity_of, recipient_of


def _raw_alert(title: str) -> Alert:
    """An alert built without validation, as a hostile peer would send it."""
    good = alert_payload()
    return Alert.model_construct(**{**dict(good), "title": title})


@pytest.mark.parametrize("bad", ["Colis\x00saisi", "Colis \ufffe", "\ufdd0", "\U0010ffff"])
def test_a_batch_with_an_unstorable_alert_keeps_its_good_alerts(
    tmp_path: Path,
    database_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    bad: str,
) -> None:
    cm, ga = build_network(tmp_path, ("CM", "GA"), {"GA": database_url} if database_url else {})
    monkeypatch.setenv("KPNET_SENDER_ENABLED", "false")
    sender, to, now = identity_of(cm), recipient_of(ga), int(time.time())
    payloads = [alert_payload(title="avant"), _raw_alert(bad), alert_payload(title="après")]
    batch = b"[" + b",".join(seal(sender, to, p, now=now) for p in payloads) + b"]"

    with TestClient(create_app(load_settings(ga.data_dir))) as client:
        answer = client.post(
            "/federation/v1/messages",
            content=batch,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r.get("status", r.get("error")) for r in results] == [
            "accepted",
            "schema_invalid",
            "accepted",
        ]
        assert all(results[i]["receipt"] for i in (0, 2))

        alerts = client.get(
            "/api/v1/alerts",
            params={"direction": "inbound"},
            headers={"Authorization": f"Bearer {ga.tokens['officer']}"},
        ).json()
        assert sorted(a["title"] for a in alerts) == ["après", "avant"]
        assert json.dumps(alerts).count("\\u0000") == 0
