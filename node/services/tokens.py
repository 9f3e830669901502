"""API tokens: random, shown once, stored as SHA-256, expiring and revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from ..db.models import ApiToken
from ..roles import ROLES, default_clearance
from .actors import Actor
from .audit import AuditLog
from .clearance import check_clearance
from .errors import NotFound

TOKEN_PREFIX = "kpn_"  # noqa: S105 (the public prefix, not a secret)
IN_CHUNK = 500  # tokens looked up per query (well under any database's bound parameters)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now

    def create(
        self,
        *,
        name: str,
        role: str,
        expires_days: int | None = None,
        clearance: str | None = None,
    ) -> tuple[ApiToken, str]:
        """Create a token; return the row and the secret (shown once, never stored).
        ``clearance`` defaults to the role's (``node.roles.DEFAULT_CLEARANCE``)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        clearance = check_clearance(clearance) if clearance else default_clearance(role)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=name,
            role=role,
            clearance=clearance,
            token_hash=hash_token(secret),
            prefix=secret[:10],
            created_at=self.now,
            created_by=self.actor.name,
            expires_at=self.now + timedelta(days=expires_days) if expires_days else None,
        )
        self.session.add(row)
        self.session.flush()
        AuditLog(self.session).record(
            str(self.actor),
            "token.create",
            now=self.now,
            target_kind="token",
            target_id=str(row.id),
            detail={
                "name": name,
                "role": role,
                "clearance": clearance,
                "expires_days": expires_days,
            },
        )
        return row, secret

    def set_clearance(self, token_id: int, clearance: str) -> ApiToken:
        """Raise or lower a token's clearance (audited when it changes)."""
        row = self.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}")
        clearance = check_clearance(clearance)
        if row.clearance != clearance:
            previous, row.clearance = row.clearance, clearance
            AuditLog(self.session).record(
                str(self.actor),
                "token.clearance",
                now=self.now,
                target_kind="token",
                target_id=str(token_id),
                detail={"name": row.name, "previous": previous, "clearance": clearance},
            )
        return row

    def all(self) -> list[ApiToken]:
        return list(self.session.execute(select(ApiToken).order_by(ApiToken.id)).scalars())

    def revoke(self, token_id: int) -> ApiToken:
        row = self.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = self.now
            AuditLog(self.session).record(
                str(self.actor),
                "token.revoke",
                now=self.now,
                target_kind="token",
                target_id=str(token_id),
                detail={"name": row.name},
            )
        return row


def authenticate(session: Session, secret: str, now: datetime) -> ApiToken | None:
    """The live token matching ``secret``, or None. Lookup is by hash of the secret,
    so no stored value is compared with attacker input."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return row


def live_tokens(session: Session, token_hashes: Iterable[str], now: datetime) -> dict[str, Actor]:
    """Of many tokens, named by the hash of their secret (``hash_token``), those still
    live (not revoked, not expired), each with who acts by it: what ``authenticate``
    decides for one, in one query for all."""
    hashes, live = list(dict.fromkeys(token_hashes)), dict[str, Actor]()
    query = select(ApiToken.token_hash, ApiToken.name, ApiToken.role, ApiToken.clearance).where(
        ApiToken.token_hash.in_(bindparam("hashes", expanding=True)),
        ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
    )
    for start in range(0, len(hashes), IN_CHUNK):
        rows = session.execute(query, {"hashes": hashes[start : start + IN_CHUNK]})
        live.update(
            (digest, Actor(name, role, clearance)) for digest, name, role, clearance in rows
        )
    return live
