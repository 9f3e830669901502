"""Need-to-know within the node: what a caller's clearance lets it read, and the audit
entry naming the subjects a response returned.

A clearance is a TLP level (``node.roles``); a record, alert or disclosure marked above
it is filtered out in the query itself, so it is neither returned nor counted, and a
single read of it answers ``NotFound`` as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from protocol import HANDLING_LEVELS

from ..roles import readable_levels
from .actors import Actor
from .audit import AuditLog
from .errors import InvalidInput

# One audit entry names at most this many subjects: the largest page any list returns.
MAX_AUDITED_SUBJECTS = 500


def check_clearance(clearance: str) -> str:
    if clearance not in HANDLING_LEVELS:
        raise InvalidInput("clearance", f"one of {', '.join(HANDLING_LEVELS)}")
    return clearance


def within_clearance(column: Any, actor: Actor) -> ColumnElement[bool]:
    """The SQL condition: ``column`` (a TLP level) is one ``actor`` may read."""
    condition: ColumnElement[bool] = column.in_(readable_levels(actor.clearance))
    return condition


def audit_subjects_returned(
    session: Any,
    actor: Actor,
    action: str,
    refs: Iterable[str],
    *,
    now: datetime,
    **detail: Any,
) -> None:
    """One audit entry for one response: which subjects it returned (in order), at
    which clearance. Written even when none were returned, so that the question asked
    is on record too."""
    subjects = list(dict.fromkeys(refs))[:MAX_AUDITED_SUBJECTS]
    AuditLog(session).record(
        str(actor),
        action,
        now=now,
        target_kind="subject",
        detail={"subjects": subjects, "clearance": actor.clearance, **detail},
    )
