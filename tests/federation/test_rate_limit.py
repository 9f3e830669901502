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


REFUSALS = {"KPNET_REFUSAL_RATE_PER_ADDRESS": "1", "KPNET_REFUSAL_BURST_PER_ADDRESS": "3"}
JUNK = [b"[" + b",".join([b"{}"] * 101) + b"]", b"[" * 100, b"not json"]


def test_address_refused_too_often_gets_429_before_its_body_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusals before authentication are limited per client address: beyond the burst
    that address gets 429 with Retry-After, at once; another address, and a genuine
    peer's message from it, are not held up."""
    cm, ga = build_network(tmp_path, ("CM", "GA"))  # GA refuses an address 3 times, then 1/s
    for name, value in REFUSALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KPNET_SENDER_ENABLED", "false")
    clock = {"now": datetime.now(UTC).replace(microsecond=0)}
    genuine = seal(
        identity_of(cm), recipient_of(ga), alert_payload(), now=int(clock["now"].timestamp())
    )
    app = create_app(load_settings(ga.data_dir), clock=lambda: clock["now"])
    with (
        TestClient(app, client=("192.0.2.7", 4000)) as stranger,
        TestClient(app, client=("198.51.100.9", 4000)) as peer,
    ):

        def post(client: TestClient, body: bytes):  # type: ignore[no-untyped-def]
            return client.post(
                "/federation/v1/messages",
                content=body,
                headers={"content-type": "application/json"},
            )

        assert [post(stranger, junk).status_code for junk in JUNK] == [413, 200, 400]
        refused = post(stranger, JUNK[0])
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "rate_limited"
        assert refused.headers["retry-after"] == "1"
        # Even a genuine envelope from that address waits: nothing is read before.
        assert post(stranger, genuine).status_code == 429
        metrics = peer.get("/metrics").text
        assert 'kpnet_federation_refused_unauthenticated_total{reason="rate_limited"} 2.0' in (
            metrics
        )

        answer = post(peer, genuine)  # another address
        assert (answer.status_code, answer.json()["status"]) == (200, "accepted"), answer.text

        clock["now"] += timedelta(seconds=1)  # one refusal regained
        assert post(stranger, JUNK[2]).status_code == 400
        assert post(stranger, JUNK[2]).status_code == 429


def test_the_address_table_stays_bounded() -> None:
    """Strangers from ever new addresses neither grow the table past its bound nor get
    fresh allowances once it is full: they share one overflow bucket."""
    from node.federation.ratelimit import RateLimiter

    now = {"t": 0.0}
    limiter = RateLimiter(1.0, 2.0, clock=lambda: now["t"], max_keys=10)
    for i in range(1000):
        limiter.spend(f"203.0.113.{i}", 1)
    assert len(limiter) <= 11
    assert limiter.wait("198.51.100.1") > 0  # the overflow bucket is spent
    now["t"] += 60.0  # everyone has refilled: their buckets make room for new ones
    assert limiter.wait("198.51.100.1") == 0
    assert len(limiter) <= 11
