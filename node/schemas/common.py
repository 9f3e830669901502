"""Building blocks of every validated shape: bounded strings, country codes, partial
dates, strict input models and pages of results.

Every input model derives from ``Strict``: unknown fields are refused, and so is any
string holding U+0000, a lone surrogate or a Unicode non-character (the protocol's
``check_tree``, so the API, the console, CSV imports and peers refuse the same text).
Numbers are taken strictly (``WholeNumber``, ``Number``): ``true`` or ``"3"`` is not 3.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictType

from protocol import check_keys, check_tree

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# The pattern is checked on the raw input, so tidy it first: " cm " means CM.
Country = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-Z]{2}$"),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
MAX_INT64 = 2**63 - 1  # the largest integer a database driver binds
MAX_ROW_INT = 2**31 - 1  # ids and versions are INTEGER columns (32-bit on PostgreSQL)
# JSON numbers only: a boolean or a string is refused, not converted.
WholeNumber = Annotated[int, StrictType(), Field(ge=-MAX_INT64, le=MAX_INT64)]
Version = Annotated[int, StrictType(), Field(ge=1, le=MAX_ROW_INT)]
Number = Annotated[float, StrictType()]
_PARTIAL_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")

T = TypeVar("T")


def check_partial_date(value: str | None) -> str | None:
    """A date of birth: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (a real calendar date)."""
    if value is None:
        return None
    value = value.strip()
    if not _PARTIAL_DATE.match(value):
        raise ValueError("use YYYY, YYYY-MM or YYYY-MM-DD")
    if len(value) == 10:
        date.fromisoformat(value)
    return value


def reject_null(value: T | None) -> T:
    """In an update, an absent field stays as it is; ``null`` would erase a required one."""
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Member names first (an unknown one is named in the error), then each field's value,
    # so an error names the field that holds the character.
    @model_validator(mode="before")
    @classmethod
    def _storable_names(cls, data: Any) -> Any:
        return check_keys(data)

    @field_validator("*", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return check_tree(value)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
