"""Who acts: the name and role behind every change, read and audit entry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A token or user name and its role."""

    name: str
    role: str

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"
