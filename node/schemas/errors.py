"""The bodies of error answers of the local API (docs/api.md §1).

Every refusal is ``{"detail": "…"}`` (401, 403, 404, 409, 413, 415, 429 …), except invalid
input (422), whose ``detail`` lists what is wrong where. The CSV import's 422 is its
report (``ImportReport``) when the file was read, this shape when the request was not.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong, in English")


class InvalidField(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "names", 0], ["query", "q"] …')
    msg: str
    type: str = Field(description="A stable code: missing, int_type, unstorable_text …")


class InvalidOut(BaseModel):
    detail: list[InvalidField]
