"""Who acts: the name and role behind every change, read and audit entry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A token or user name, its role and its clearance (the highest TLP level it may
    read). Tokens and console users always carry the clearance stored with them; the
    node's own processes (CLI, federation handlers, demo) act at RED."""

    name: str
    role: str
    clearance: str = "RED"  # a TLP level

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"
