"""Per-peer daily quotas counted in the database (SQLite and PostgreSQL): the limit
holds within a UTC day, a new UTC day starts from zero, peers and kinds count apart, and
an agreement's own limit replaces the node's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from node.config import Settings
from node.runtime import open_node
from node.schemas.agreements import SharingAgreement
from node.services.peer_quotas import QuotaDefaults, take, used_ratios

LAST_SECOND = datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC)


def test_a_quota_holds_for_the_utc_day_and_starts_again_the_next(settings: Settings) -> None:
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            taken = [take(session, "CD", "kyc_query", 3, LAST_SECOND) for _ in range(5)]
            assert taken == [True, True, True, False, False]
            # 00:30 in Kinshasa (UTC+1) is still the same UTC day.
            kinshasa = LAST_SECOND.astimezone(timezone(timedelta(hours=1)))
            assert not take(session, "CD", "kyc_query", 3, kinshasa)
            # Others count apart: another peer, another kind.
            assert take(session, "CM", "kyc_query", 3, LAST_SECOND)
            assert take(session, "CD", "disclosure_request", 3, LAST_SECOND)
            session.commit()
        with node.sessions() as session:  # another transaction (another process) agrees
            assert not take(session, "CD", "kyc_query", 3, LAST_SECOND)
            midnight = LAST_SECOND + timedelta(seconds=1)
            assert take(session, "CD", "kyc_query", 3, midnight)
            ratios = used_ratios(
                session,
                [("CD", SharingAgreement(kyc_queries_per_day=4))],
                QuotaDefaults(),
                midnight,
            )
            assert ratios == {"CD": {"kyc_query": 0.25, "disclosure_request": 0.0}}
            session.rollback()
    finally:
        node.close()


def test_an_agreement_sets_its_own_limits_else_the_nodes() -> None:
    defaults = QuotaDefaults(kyc_query=500, disclosure_request=50)
    own = SharingAgreement(kyc_queries_per_day=20)
    assert defaults.limit(own, "kyc_query") == 20
    assert defaults.limit(own, "disclosure_request") == 50
    assert defaults.limit(SharingAgreement(), "kyc_query") == 500
