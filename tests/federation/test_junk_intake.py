"""A stranger's junk against a running node: refused without stalling it, and without
writing the audit log one row per refusal.

Real ``kpnet serve`` processes on SQLite and PostgreSQL. The junk: a 26 MB batch of
``{}`` items, a 26 MB run of ``[``, and a declared length beyond every batch. While
each is refused, ``/livez`` is asked again and again and must answer promptly. A
message whose signature verified and that is refused all the same is still audited
one by one; refusals before that are summed up in one ``message.refusals`` entry per
interval.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol import canonical_json, parse_json, seal
from tests.federation.conftest import (
    RunningNode,
    alert_payload,
    build_network,
    identity_of,
    metric_value,
    post_envelopes,
    recipient_of,
    wait_for,
)

MAX_BYTES = 262144
LIMIT = MAX_BYTES * 100
PROMPT = 2.0  # seconds: /livez answered within this while junk is refused (it was 20 s)
UNAUTHENTICATED = "kpnet_federation_refused_unauthenticated_total"


@pytest.fixture
def nodes(tmp_path: Path, database_url: str | None) -> Iterator[tuple[RunningNode, RunningNode]]:
    """CD, running on the database under test (no summary entry within a test), and CM,
    its peer, which only lends its keys."""
    cm, cd = build_network(tmp_path, ("CM", "CD"), {"CD": database_url} if database_url else {})
    cd.start(extra_env={"KPNET_REFUSAL_AUDIT_INTERVAL_SECONDS": "3600"})
    try:
        yield cm, cd
    finally:
        cd.stop()


def audit_total(node: RunningNode, **params: str) -> int:
    with node.api("auditor") as api:
        page = api.get("/api/v1/audit", params={"limit": 1, **params})
    assert page.status_code == 200, page.text
    return int(page.json()["total"])


def while_livez(node: RunningNode, attack: Callable[[], object]) -> tuple[object, list[float]]:
    """Run ``attack`` in a thread; meanwhile time ``/livez`` over and over. Returns what
    the attack returned and the /livez latencies (at least one, taken during it)."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(attack()))
    latencies: list[float] = []
    with httpx.Client(base_url=node.url, timeout=30.0) as client:
        worker.start()
        while worker.is_alive() or not latencies:
            start = time.perf_counter()
            assert client.get("/livez").status_code == 200
            latencies.append(time.perf_counter() - start)
    worker.join()
    return outcome[0], latencies


def post_junk(node: RunningNode, body: bytes) -> tuple[int, dict[str, object]]:
    response = post_envelopes(node, body)
    return response.status_code, response.json()


def declare_too_much(node: RunningNode) -> tuple[int, bytes]:
    """Headers declaring a body beyond every batch, then one byte: answered unread."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as conn:
        conn.sendall(
            b"POST /federation/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % (LIMIT + 1)
        )
        head, _, body = conn.recv(65536).partition(b"\r\n\r\n")
        while b"}" not in body:
            body += conn.recv(65536)
    return int(head.split(b" ")[1]), body


def test_junk_is_refused_promptly_and_not_audited(
    nodes: tuple[RunningNode, RunningNode],
) -> None:
    _, cd = nodes
    before = audit_total(cd)
    empties = b"[" + b",".join([b"{}"] * (26_000_000 // 3)) + b"]"
    nesting = b"[" * 26_000_000
    assert len(empties) < LIMIT and len(nesting) < LIMIT  # within the body limit: read

    (status, answer), latencies = while_livez(cd, lambda: post_junk(cd, empties))
    assert (status, answer["error"]) == (413, "too_large"), answer
    assert max(latencies) < PROMPT, latencies

    (status, answer), latencies = while_livez(cd, lambda: post_junk(cd, nesting))
    assert status == 200 and [r["error"] for r in answer["results"]] == ["malformed"], answer  # type: ignore[union-attr]
    assert max(latencies) < PROMPT, latencies

    (status, _), latencies = while_livez(cd, lambda: declare_too_much(cd))
    assert status == 413
    assert max(latencies) < PROMPT, latencies

    assert audit_total(cd) == before, "a stranger's junk was written to the audit log"
    assert metric_value(cd, UNAUTHENTICATED, reason="too_large") == 2
    assert metric_value(cd, UNAUTHENTICATED, reason="malformed") == 1


def test_refusal_of_a_verified_message_is_still_audited(
    nodes: tuple[RunningNode, RunningNode],
) -> None:
    """CM's genuine signature on an expired alert: CM is known to have sent it, so the
    refusal is audited with its code; the same envelope re-signed by a forger is not."""
    cm, cd = nodes
    expired = seal(
        identity_of(cm), recipient_of(cd), alert_payload(), now=int(time.time()) - 8 * 86400
    )
    before = audit_total(cd, action="message.rejected")
    response = post_envelopes(cd, expired)
    assert (response.status_code, response.json()["error"]) == (400, "expired"), response.text
    assert audit_total(cd, action="message.rejected") == before + 1
    with cd.api("auditor") as api:
        entry = api.get("/api/v1/audit", params={"action": "message.rejected", "limit": 1}).json()[
            "items"
        ][0]
    assert entry["actor"] == "claimed:CM"
    assert entry["detail"]["code"] == "expired"
    assert entry["target_id"] == response.json()["id"]

    doc = parse_json(expired)
    forged = canonical_json({**doc, "id": str(uuid.uuid4())})  # no longer what CM signed
    response = post_envelopes(cd, forged)
    assert response.json()["error"] == "bad_signature", response.text
    assert audit_total(cd, action="message.rejected") == before + 1


def test_refusals_before_authentication_are_summed_up_in_one_entry(
    tmp_path: Path, database_url: str | None
) -> None:
    """With a one-second interval: three refusals give a ``message.refusals`` entry
    counting them by reason (two, should they straddle an interval), no other row."""
    _, cd = build_network(tmp_path, ("CM", "CD"), {"CD": database_url} if database_url else {})
    cd.start(extra_env={"KPNET_REFUSAL_AUDIT_INTERVAL_SECONDS": "1"})
    try:
        before = audit_total(cd)
        for body in (b"not json", b"[" * 40, b"[" + b",".join([b"{}"] * 101) + b"]"):
            assert post_envelopes(cd, body).status_code in {200, 400, 413}

        def summaries() -> list[dict[str, Any]]:
            with cd.api("auditor") as api:
                page = api.get("/api/v1/audit", params={"action": "message.refusals"})
            items: list[dict[str, Any]] = page.json()["items"]
            return items if sum(e["detail"]["total"] for e in items) >= 3 else []

        entries = wait_for(summaries)
        reasons: Counter[str] = Counter()
        for entry in entries:  # one, or two if the refusals straddled an interval
            assert entry["actor"] == "claimed:?"
            assert entry["detail"]["interval_seconds"] == 1
            assert entry["detail"]["total"] == sum(entry["detail"]["reasons"].values())
            reasons.update(entry["detail"]["reasons"])
        assert reasons == {"malformed": 2, "too_large": 1}
        assert len(entries) <= 2
        assert audit_total(cd) == before + len(entries)
    finally:
        cd.stop()
