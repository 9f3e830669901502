"""Slow links between real nodes, through a FaultyLink: GPRS-class 16 kbit/s with
1.4 KB alerts and 50 kbit/s with 9 KB alerts. Everything arrives exactly once, and no
message is uploaded more than twice (a batch that timed out is re-sent small, not in
full). One link per test module, so the two run side by side under xdist."""

from __future__ import annotations

from collections import Counter

from node.bench.faulty_link import FaultyLink, LinkShape
from tests.federation.conftest import (
    build_network,
    inbound_alerts,
    outbox_to,
    queue_alerts_sized,
    route_through,
    wait_for,
)

ALERTS = 100


def test_alerts_of_1_4_kb_cross_a_16_kbit_link_exactly_once(tmp_path):
    deliver_across(tmp_path, 16_000, 1400, 0.3)


def deliver_across(tmp_path, rate_bits: int, alert_bytes: int, latency: float) -> None:  # type: ignore[no-untyped-def]
    cm, cf = build_network(tmp_path, ("CM", "CF"))
    link = FaultyLink(cf.port, LinkShape(rate_bits=rate_bits, latency_seconds=latency)).start()
    try:
        route_through(cm, "CF", link.url)
        sent = queue_alerts_sized(cm, ALERTS, alert_bytes, recipients=["CF"])
        envelopes = [len(r.envelope) for r in outbox_to(cm, "CF")]
        assert abs(sum(envelopes) / len(envelopes) - alert_bytes) < 0.15 * alert_bytes
        cf.start()
        cm.start()
        # The link's own time for the envelopes, twice over, and a minute to spare.
        budget = 60 + 2 * sum(envelopes) * 8 / rate_bits
        wait_for(
            lambda: all(r.status == "delivered" for r in outbox_to(cm, "CF")),
            timeout=budget,
            interval=1.0,
        )
        received = Counter(a["alert_uuid"] for a in inbound_alerts(cf))
        assert set(received) == set(sent) and set(received.values()) == {1}
        attempts = Counter(r.attempts for r in outbox_to(cm, "CF"))
        assert max(attempts) <= 2, attempts
    finally:
        cm.stop()
        cf.stop()
        link.close()
