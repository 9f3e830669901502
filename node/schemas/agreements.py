"""Sharing agreements: what may be sent to a peer and answered for it.

Enforced when sending (nothing leaves that the peer may not see) and checked again on
receipt. The default shares every alert category up to TLP:AMBER and answers KYC
queries from the licensee registry only. The daily quotas of KYC queries and disclosure
requests accepted from the peer are the node's settings unless the agreement sets its
own.
"""

from __future__ import annotations

from pydantic import Field

from protocol import ALERT_CATEGORIES, AlertCategory, Handling, RecordKind, handling_rank

from .common import Strict

DEFAULT_KYC_RECORD_KINDS: tuple[RecordKind, ...] = ("licensee",)


class SharingAgreement(Strict):
    alert_categories: list[AlertCategory] = Field(
        default_factory=lambda: list(ALERT_CATEGORIES),
        description="Alert categories that may be sent to this peer",
    )
    max_handling: Handling = Field(
        default="AMBER", description="Highest TLP level of anything sent to this peer"
    )
    kyc_record_kinds: list[RecordKind] = Field(
        default_factory=lambda: list(DEFAULT_KYC_RECORD_KINDS),
        description="Record kinds this peer's KYC queries may be answered from",
    )

    kyc_queries_per_day: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="KYC queries from this peer answered per UTC day; null: the node's "
        "setting (KPNET_KYC_QUERIES_PER_PEER_PER_DAY)",
    )
    disclosure_requests_per_day: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Disclosure requests from this peer accepted per UTC day; null: the "
        "node's setting (KPNET_DISCLOSURE_REQUESTS_PER_PEER_PER_DAY)",
    )

    def alert_refusal(self, category: str, handling: str) -> str | None:
        """Why an alert may not go to this peer, or None if it may."""
        if category not in self.alert_categories:
            return f"category {category} is not in the sharing agreement"
        if handling_rank(handling) > handling_rank(self.max_handling):
            return f"TLP:{handling} is above the agreed TLP:{self.max_handling}"
        return None

    def allows_handling(self, handling: str) -> bool:
        return handling_rank(handling) <= handling_rank(self.max_handling)
