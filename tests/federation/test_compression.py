"""Compressed batches on the federation endpoint: accepted from peers, answered
compressed, and never inflated beyond the batch limit (a gzip bomb is refused)."""

from __future__ import annotations

import gzip
import time

import httpx

import protocol
from node.bench.faulty_link import FaultyLink
from tests.federation.conftest import (
    alert_payload,
    build_network,
    identity_of,
    outbox_to,
    post_envelopes,
    recipient_of,
    route_through,
    send_alert,
    sized_alert,
    wait_for,
)


def batch_from(sender, receiver, count: int) -> bytes:  # type: ignore[no-untyped-def]
    now = int(time.time())
    envelopes = [
        protocol.seal(identity_of(sender), recipient_of(receiver), alert_payload(), now=now)
        for _ in range(count)
    ]
    return b"[" + b",".join(envelopes) + b"]"


def test_a_gzip_batch_is_accepted_and_answered_compressed(network):
    cm, cf, _ = network
    batch = batch_from(cm, cf, 20)
    response = post_envelopes(
        cf, gzip.compress(batch), **{"content-encoding": "gzip", "accept-encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 20
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["accept-encoding"] == "gzip"  # senders may compress (RFC 7694)
    assert int(response.headers["content-length"]) < len(response.content) * 0.8


def test_a_sender_compresses_once_the_peer_says_it_accepts_gzip(tmp_path):
    cm, cf = build_network(tmp_path, ("CM", "CF"))
    link = FaultyLink(cf.port).start()
    try:
        route_through(cm, "CF", link.url)
        cf.start()
        cm.start()
        uploads = []
        for i in range(2):
            before = link.counters.bytes_up
            send_alert(cm, sized_alert(f"Lot {i}", 9000, recipients=["CF"]))
            wait_for(lambda: all(r.status == "delivered" for r in outbox_to(cm, "CF")))
            uploads.append(link.counters.bytes_up - before)
        # The first batch went plain; CF's answer said Accept-Encoding: gzip, so the
        # second, of the same size, went compressed (base64 in JSON: a quarter less).
        assert uploads[1] < 0.85 * uploads[0], uploads
    finally:
        cm.stop()
        cf.stop()
        link.close()


def test_a_gzip_bomb_is_refused_without_inflating_it(network):
    _, cf, _ = network
    bomb = gzip.compress(b"[" + b" " * (200 * 1024 * 1024) + b"]", 9)
    assert len(bomb) < 300 * 1024
    started = time.monotonic()
    response = post_envelopes(cf, bomb, **{"content-encoding": "gzip"})
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert time.monotonic() - started < 10
    assert httpx.get(f"{cf.url}/livez", timeout=5).status_code == 200


def test_a_truncated_or_unknown_encoding_is_refused_clearly(network):
    cm, cf, _ = network
    packed = gzip.compress(batch_from(cm, cf, 2))
    truncated = post_envelopes(cf, packed[: len(packed) // 2], **{"content-encoding": "gzip"})
    assert truncated.status_code == 400 and truncated.json()["error"] == "malformed"
    unknown = post_envelopes(cf, packed, **{"content-encoding": "br"})
    assert unknown.status_code == 415 and unknown.json()["error"] == "unsupported_encoding"
    assert unknown.headers["accept-encoding"] == "gzip"
