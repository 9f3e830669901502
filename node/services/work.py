"""One unit of work: who acts, at what moment, in which database session, on which node.

The API, the console and the CLI each build one ``UnitOfWork`` per request or command
and take their services from it, so every service of that request sees the same
session, the same actor and the same moment, and none is built by hand. Services never
commit: the surface that opened the unit commits it (or lets it roll back).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..runtime import Node
from .actors import Actor
from .alerts import AlertService
from .csv_import import CsvImport
from .disclosures import DisclosureService
from .endpoint_policy import EndpointPolicy
from .kyc import KycService
from .licensees import LicenseeRegistry
from .peers import PeerRegistry
from .records import RecordRegistry
from .subjects import SubjectRegistry
from .tokens import TokenService
from .users import UserAccounts


class UnitOfWork:
    def __init__(self, node: Node, session: Session, actor: Actor) -> None:
        self.node, self.session, self.actor = node, session, actor
        self.now = node.now()

    def alerts(self) -> AlertService:
        return AlertService(self.session, self.node.sealing, self.actor, self.now)

    def kyc(self) -> KycService:
        return KycService(self.session, self.node.sealing, self.actor, self.now)

    def disclosures(self) -> DisclosureService:
        return DisclosureService(self.session, self.node.sealing, self.actor, self.now)

    def peers(self) -> PeerRegistry:
        return PeerRegistry(
            self.session,
            self.actor,
            self.now,
            own_node_id=self.node.identity.node_id,
            endpoints=EndpointPolicy.from_settings(self.node.settings),
        )

    def licensees(self) -> LicenseeRegistry:
        return LicenseeRegistry(self.session, self.actor, self.now)

    def subjects(self) -> SubjectRegistry:
        return SubjectRegistry(self.session, self.actor, self.now)

    def registry(self, kind: type[RecordRegistry[Any]]) -> RecordRegistry[Any]:
        """The registry of one record kind (``LicenseeRegistry`` or ``SubjectRegistry``)."""
        return kind(self.session, self.actor, self.now)

    def imports(self) -> CsvImport:
        return CsvImport(self.session, self.actor, self.now)

    def tokens(self) -> TokenService:
        return TokenService(self.session, self.actor, self.now)

    def users(self) -> UserAccounts:
        return UserAccounts(self.session, self.actor, self.now)
