"""The answer of ``POST /federation/v1/messages`` (docs/protocol.md §8), as declared in the
OpenAPI document: one result per envelope; a single envelope's result is also repeated
at the top level, with the HTTP status of its error code."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EnvelopeResult(BaseModel):
    id: str = Field(description="The envelope's id, or empty if it could not be read")
    status: str | None = Field(default=None, description="accepted or duplicate")
    receipt: str | None = Field(default=None, description="Our signed receipt (base64url)")
    error: str | None = Field(default=None, description="The protocol error code of a refusal")
    detail: str | None = None


class FederationAnswer(EnvelopeResult):
    id: str = ""
    results: list[EnvelopeResult] = Field(default_factory=list)
