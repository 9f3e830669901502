"""Received messages are remembered (to refuse replays as duplicates) only until they
expire: after that a replay is refused as expired, so the node forgets them and its
de-duplication table does not grow forever."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

import protocol
from node.db.models import InboundMessage
from node.federation.inbound import InboundProcessor, forget_expired
from node.runtime import open_node, utc_now
from tests.conftest import create_node
from tests.federation.conftest import RunningNode, admit, alert_payload, identity_of, recipient_of


def test_expired_messages_are_forgotten_and_their_replay_still_refused(tmp_path, database_url):
    cm = create_node(tmp_path / "CM", "CM", database_url=database_url)
    cf = create_node(tmp_path / "CF", "CF", port=8101)
    receiver = RunningNode("CM", cm.data_dir, 8100)
    sender = RunningNode("CF", cf.data_dir, 8101)
    admit(receiver, sender)
    start = utc_now()
    short = protocol.seal(
        identity_of(sender),
        recipient_of(receiver),
        alert_payload(),
        now=int(start.timestamp()),
        ttl=3600,
    )
    long = protocol.seal(
        identity_of(sender),
        recipient_of(receiver),
        alert_payload(),
        now=int(start.timestamp()),
        ttl=7 * 86400,
    )
    clock = {"now": start}
    node = open_node(cm, clock=lambda: clock["now"])
    try:
        processor = InboundProcessor(node)
        assert [r.status for r in processor.process_batch([short, long])] == ["accepted"] * 2
        assert processor.process(short).status == "duplicate"

        def remembered() -> int:
            with node.sessions() as session:
                return session.execute(
                    select(func.count()).select_from(InboundMessage)
                ).scalar_one()

        # Within the clock-skew allowance after its expiry the short one is still kept.
        clock["now"] = start + timedelta(seconds=3600 + cm.clock_skew_seconds)
        with node.sessions() as session:
            assert forget_expired(session, clock["now"], cm.clock_skew_seconds) == 0
            session.commit()
        assert processor.process(short).status == "duplicate"

        clock["now"] = start + timedelta(hours=3)
        with node.sessions() as session:
            assert forget_expired(session, clock["now"], cm.clock_skew_seconds) == 1
            session.commit()
        assert remembered() == 1
        replay = processor.process(short)
        assert (replay.status, replay.error) == ("rejected", "expired")
        assert processor.process(long).status == "duplicate"  # not expired: still known
    finally:
        node.close()
