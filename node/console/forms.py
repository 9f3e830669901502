"""From HTML forms to the API's pydantic models, and their errors back to the fields.

Forms are validated with the same models the API uses (``node.schemas``); each pydantic
error is turned into a translated sentence shown next to the field it concerns. Multi-
valued fields are textareas, one value a line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from protocol import UNSTORABLE_MESSAGE

from .i18n import N_, Translator

ERROR_MESSAGES: dict[str, str] = {
    "missing": N_("Required."),
    "string_too_short": N_("Required."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "too_long": N_("At most %(max_length)s entries."),
    "too_short": N_("Give at least one."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "string_pattern_mismatch": N_("Use a two-letter country code, for example CD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_type": N_("Enter a date as YYYY-MM-DD."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_type": N_("Enter a date and time."),
    "float_parsing": N_("Enter a number."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "float_type": N_("Enter a number."),
    "greater_than_equal": N_("This number is too small."),
    "less_than_equal": N_("This number is too large."),
}
VALUE_ERRORS: dict[str, str] = {
    "use YYYY, YYYY-MM or YYYY-MM-DD": N_("Use YYYY, YYYY-MM or YYYY-MM-DD."),
    UNSTORABLE_MESSAGE: N_(
        "This text holds a character that cannot be stored (U+0000 or a non-character)."
    ),
}
INVALID = N_("This value is not valid.")


def lines(text: str | None) -> list[str]:
    """The non-blank lines of a textarea, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def whole_number(value: str | None) -> int | str | None:
    """A form's number as an int (models take numbers strictly); other text is left for
    the model to refuse, and a blank is None."""
    text = blank_to_none(value)
    if text is not None and text.isascii() and text.isdigit():
        return int(text)
    return text


def blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def message_for(error: Mapping[str, Any], t: Translator) -> str:
    kind = str(error.get("type", ""))
    if kind == "value_error":
        text = str(error.get("msg", "")).removeprefix("Value error, ")
        return t.gettext(VALUE_ERRORS.get(text, INVALID))
    msgid = ERROR_MESSAGES.get(kind, INVALID)
    context = error.get("ctx") or {}
    try:
        return t.gettext(msgid) % {
            k: v for k, v in context.items() if isinstance(v, (int, float, str))
        }
    except (KeyError, ValueError, TypeError):
        return t.gettext(msgid)


def field_errors(
    exc: ValidationError, t: Translator, where: Callable[[tuple[Any, ...]], str] | None = None
) -> dict[str, str]:
    """One translated message per form field (the first error of each).
    ``where`` names the form field of an error location (default: its first part)."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        name = where(loc) if where else str(loc[0]) if loc else "form"
        found.setdefault(name, message_for(error, t))
    return found
