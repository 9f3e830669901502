"""Errors a user can fix, raised by the services and shown by every surface.

ServiceError         ``str()`` is the message to show
├── NotFound         no such record, alert, check, peer … (HTTP 404)
├── Conflict         the change clashes with the current state (HTTP 409)
└── InvalidInput     one field is wrong; ``field`` names it (HTTP 422)
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of errors a user can fix; ``str()`` is the message to show."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class InvalidInput(ServiceError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
