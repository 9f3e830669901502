"""Who may do what: the four roles and the permissions each holds.

One policy for every surface: the API's ``Allow``, the console's ``Require``, its forms'
CSRF-checked dependencies and the menus and buttons each user sees all ask it, so a
role never reads a page it may not use, nor is offered a button it may not press.
Deny by default: a permission names the roles that hold it, and nothing else does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

from protocol import HANDLING_LEVELS, Handling, handling_rank

Role = Literal["admin", "analyst", "officer", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)


class Permission(StrEnum):
    READ = "read"  # records, alerts, KYC checks and disclosures; run checks, acknowledge alerts
    WRITE = "write"  # records, alerts, imports and exports; decide peers' disclosure requests
    ADMINISTER = "administer"  # peers, sharing agreements, API tokens, console accounts
    AUDIT = "audit"  # the audit log and its verification
    SIGNED_IN = "signed_in"  # what every role may see: this node, one's own account


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.READ: frozenset({"officer", "analyst"}),
    Permission.WRITE: frozenset({"analyst"}),
    Permission.ADMINISTER: frozenset({"admin"}),
    Permission.AUDIT: frozenset({"auditor"}),
    Permission.SIGNED_IN: frozenset(ROLES),
}


def is_role(value: str) -> bool:
    return value in ROLES


def may(role: str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission`` (an unknown role holds none)."""
    return role in GRANTS[permission]


# A clearance is the highest TLP level an account or token may read. Officers work
# cases up to AMBER; analysts curate the registry (RED records included) and decide
# peers' disclosure requests, so they need to read everything they maintain; admins
# and auditors read no records at all (their roles hold no READ), so CLEAR. An admin
# raises or lowers any account's or token's clearance.
DEFAULT_CLEARANCE: dict[str, Handling] = {
    "admin": "CLEAR",
    "analyst": "RED",
    "officer": "AMBER",
    "auditor": "CLEAR",
}


def default_clearance(role: str) -> Handling:
    """The clearance a new account or token of ``role`` gets (CLEAR for an unknown role)."""
    return DEFAULT_CLEARANCE.get(role, "CLEAR")


def readable_levels(clearance: str) -> tuple[Handling, ...]:
    """The TLP levels a holder of ``clearance`` may read, CLEAR first."""
    return HANDLING_LEVELS[: handling_rank(clearance) + 1]


def cleared_for(clearance: str, handling: str) -> bool:
    """Whether a holder of ``clearance`` may read something marked ``handling``."""
    return handling_rank(handling) <= handling_rank(clearance)
