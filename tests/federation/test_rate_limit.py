"""A peer over its rate is told to slow down and served again once it has waited.

In-process, on the node's own clock set by the test: the limiter reads the time as
everything else in the node does, so waiting is moving the clock, not sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node.app import create_app
from node.config import load_settings
from protocol import seal
from tests.federation.conftest import (
    alert_payload,
    build_network,
    identity_of,
    recipient_of,
)

RATE = {"KPNET_PEER_RATE_PER_SECOND": "1", "KPNET_PEER_RATE_BURST": "3"}


def test_peer_over_its_rate_gets_429_with_retry_after_then_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cm, ga = build_network(tmp_path, ("CM", "GA"))  # GA accepts 1 message/s, bursts of 3
    for name, value in RATE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KPNET_SENDER_ENABLED", "false")
    clock = {"now": datetime.now(UTC).replace(microsecond=0)}
    sender, to = identity_of(cm), recipient_of(ga)
    at = int(clock["now"].timestamp())
    bodies = [seal(sender, to, alert_payload(), now=at) for _ in range(5)]

    app = create_app(load_settings(ga.data_dir), clock=lambda: clock["now"])
    with TestClient(app) as client:

        def post(body: bytes):  # type: ignore[no-untyped-def]
            return client.post(
                "/federation/v1/messages",
                content=body,
                headers={"content-type": "application/json"},
            )

        answers = [post(body) for body in bodies]  # at one instant: exactly the burst
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        for refused in answers[3:]:
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "rate_limited"

        clock["now"] += timedelta(milliseconds=500)  # not yet a whole message regained
        assert post(bodies[3]).status_code == 429

        clock["now"] += timedelta(milliseconds=500)  # waited as told
        later = post(bodies[3])
        assert (later.status_code, later.json()["status"]) == (200, "accepted"), later.text
        assert post(bodies[4]).status_code == 429  # and only that one
        clock["now"] += timedelta(seconds=1)
        assert post(bodies[4]).json()["status"] == "accepted"
