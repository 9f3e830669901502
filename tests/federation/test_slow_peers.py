"""Peers that hang, trickle or vanish, between real nodes through a FaultyLink: no peer
holds up another, and a peer that comes back is delivered to within seconds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from node.bench.faulty_link import FaultyLink, LinkShape
from node.config import load_settings
from node.db.models import Peer
from node.runtime import open_node
from tests.federation.conftest import (
    RunningNode,
    alert_json,
    build_network,
    outbox_to,
    peer_row,
    route_through,
    send_alert,
    wait_for,
)

# The backoff a peer has after five minutes of failed attempts from 2 s doubling:
# 9 failures, the next attempt 256-512 s away (the default cap allows 450-900 s).
FIVE_MINUTE_OUTAGE = (9, timedelta(seconds=450))


@pytest.fixture
def make_nodes(tmp_path: Path) -> Iterator[Callable[..., list[RunningNode]]]:
    built: list[RunningNode] = []

    def make(*node_ids: str) -> list[RunningNode]:
        nodes = build_network(tmp_path, node_ids)
        built.extend(nodes)
        return nodes

    try:
        yield make
    finally:
        for node in built:
            node.stop()


def set_backoff(node: RunningNode, peer: str, failures: int, wait: timedelta) -> None:
    """Put ``node``'s delivery to ``peer`` in the backoff state ``failures`` failed
    attempts leave: what an outage of that length leaves behind."""
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            session.execute(
                update(Peer)
                .where(Peer.node_id == peer)
                .values(consecutive_failures=failures, next_attempt_at=runtime.now() + wait)
            )
            session.commit()
    finally:
        runtime.close()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def test_a_trickling_peer_and_a_hung_peer_do_not_delay_a_healthy_one(make_nodes):
    cm, cf, cd, cg = make_nodes("CM", "CF", "CD", "CG")
    # CD answers one byte every 20 s; CG reads every request and never answers.
    trickle = FaultyLink(cd.port, LinkShape(trickle_seconds=20)).start()
    hung = FaultyLink(cg.port).start()
    try:
        trickle.set_mode("trickle")
        hung.set_mode("hang")
        route_through(cm, "CD", trickle.url)
        route_through(cm, "CG", hung.url)
        for node in (cf, cd, cg, cm):
            node.start()
        sent = []
        for i in range(30):
            sent.append(send_alert(cm, alert_json(f"Saisie n°{i} à Kenzou"))["id"])
            time.sleep(0.5)
        rows = wait_for(
            lambda: (r := outbox_to(cm, "CF")) and all(x.status == "delivered" for x in r) and r,
            timeout=30,
        )
        assert len(rows) == len(sent)
        latencies = [(r.delivered_at - r.created_at).total_seconds() for r in rows]
        assert p99(latencies) <= 2.0, sorted(latencies)
        # Both faulty peers were tried meanwhile, and neither got a receipt through.
        assert trickle.counters.used_connections > 0 and hung.counters.used_connections > 0
        assert not any(r.status == "delivered" for r in outbox_to(cm, "CG"))
        assert not any(r.status == "delivered" for r in outbox_to(cm, "CD"))
        # The hung peer's batch is given up at its deadline, not held for ever.
        wait_for(lambda: (peer_row(cm, "CG")["last_error"] or "").startswith("timed out"), 60)
    finally:
        trickle.close()
        hung.close()


def test_after_a_five_minute_outage_delivery_resumes_within_seconds(make_nodes):
    cm, cf = make_nodes("CM", "CF")
    link = FaultyLink(cf.port).start()
    try:
        route_through(cm, "CF", link.url)
        cf.start()
        # The default backoff, not the tests' shortened one.
        cm.start(
            extra_env={
                "KPNET_DELIVERY_BACKOFF_BASE_SECONDS": "2",
                "KPNET_DELIVERY_BACKOFF_CAP_SECONDS": "900",
            }
        )
        link.set_mode("down")
        send_alert(cm, alert_json("Pendant la coupure"))
        wait_for(lambda: (peer_row(cm, "CF")["last_error"] or "").startswith("unreachable"))
        set_backoff(cm, "CF", *FIVE_MINUTE_OUTAGE)
        time.sleep(1.0)  # the link stays down a moment in that state
        link.set_mode("up")
        returned = time.monotonic()
        wait_for(lambda: all(r.status == "delivered" for r in outbox_to(cm, "CF")), timeout=30)
        assert time.monotonic() - returned <= 5.0
    finally:
        link.close()


def test_a_message_from_a_peer_in_backoff_ends_its_backoff(make_nodes):
    cm, cf = make_nodes("CM", "CF")
    cm.start()
    cf.start()
    set_backoff(cm, "CF", *FIVE_MINUTE_OUTAGE)
    queued = send_alert(cm, alert_json("En attente pour CF"))
    time.sleep(2.0)  # CM's sender does not try CF: it is in backoff
    assert all(r.status == "pending" for r in outbox_to(cm, "CF"))
    send_alert(cf, alert_json("CF is back", recipients=["CM"]))
    started = time.monotonic()
    wait_for(lambda: all(r.status == "delivered" for r in outbox_to(cm, "CF")), timeout=15)
    assert time.monotonic() - started <= 5.0
    assert queued["id"]
