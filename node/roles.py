"""Who may do what: the four roles and the permissions each holds.

One policy for every surface: the API's ``Allow``, the console's ``Require``, its forms'
CSRF-checked dependencies and the menus and buttons each user sees all ask it, so a
role never reads a page it may not use, nor is offered a button it may not press.
Deny by default: a permission names the roles that hold it, and nothing else does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

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
