"""Building blocks of every validated shape: bounded strings, country codes, partial
dates, strict input models and pages of results."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# The pattern is checked on the raw input, so tidy it first: " cm " means CM.
Country = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-Z]{2}$"),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
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


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
