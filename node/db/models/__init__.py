"""SQLAlchemy 2 models of the node's database, one module per area.

Schema changes go through Alembic migrations in ``migrations/versions``; nothing here
creates tables at run time. Importing this package registers every table on
``Base.metadata`` (the migrations and the relationships between modules need them all).
"""

from .accounts import ApiToken, ConsoleSession, User
from .alerts import Alert, AlertRecipient
from .audit import AuditEntry, AuditHead
from .base import NAMING, Base, table_of
from .federation import InboundMessage, OutboxMessage, Peer, PeerQuotaUse
from .kyc import AnsweredReference, Disclosure, KycCheck, KycPeerAnswer, SharedReference
from .matching import MatchId, MatchKey, MatchRecord
from .own_card import OwnCard
from .records import LicenceStatusChange, Licensee, RecordChange, RecordMixin, Subject

__all__ = [
    "NAMING",
    "Alert",
    "AlertRecipient",
    "AnsweredReference",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "Base",
    "ConsoleSession",
    "Disclosure",
    "InboundMessage",
    "KycCheck",
    "KycPeerAnswer",
    "LicenceStatusChange",
    "Licensee",
    "MatchId",
    "MatchKey",
    "MatchRecord",
    "OutboxMessage",
    "OwnCard",
    "Peer",
    "PeerQuotaUse",
    "RecordChange",
    "RecordMixin",
    "SharedReference",
    "Subject",
    "User",
    "table_of",
]
