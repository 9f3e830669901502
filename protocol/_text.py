"""Which strings the protocol carries: valid Unicode without U+0000 or non-characters.

U+0000 cannot be stored in a PostgreSQL text column and truncates strings in C code;
non-characters (U+FDD0–U+FDEF and the last two code points of every plane, U+xFFFE and
U+xFFFF) are reserved for a program's internal use, never for interchange; a lone
surrogate (from a JSON escape such as ``"\\ud800"``) is not a character at all and
cannot be encoded as UTF-8. Every payload string (and member name) is checked with
:func:`check_text`, and every node surface uses the same check, so such text is
refused at the door rather than failing in the database.
"""

from __future__ import annotations

import re
from typing import Any

_NONCHARACTERS = "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
UNSTORABLE = re.compile(f"[\x00\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")
UNSTORABLE_MESSAGE = "contains U+0000, a lone surrogate or a Unicode non-character"
# Every refused character, and every other character beyond U+FFFF: a class of ranges
# only, which the regex engine scans about ten times faster than UNSTORABLE's list of
# single code points above U+FFFF. Text without such characters is searched once.
_SUSPECT = re.compile("[\x00\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U00010000-\U0010ffff]")


def check_text(value: str) -> str:
    """``value`` itself, or ``ValueError`` if it holds a character the protocol refuses."""
    suspect = _SUSPECT.search(value)
    if suspect and UNSTORABLE.search(value, suspect.start()):
        raise ValueError(UNSTORABLE_MESSAGE)
    return value


def scrub_text(value: str) -> str:
    """``value`` with each refused character replaced by U+FFFD, to quote it safely."""
    return UNSTORABLE.sub("\ufffd", value)


def check_keys(value: Any) -> Any:
    """``value`` itself, after :func:`check_text` on its member names if it is a dict."""
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str):
                check_text(key)
    return value


def check_tree(value: Any) -> Any:
    """``value`` itself, after :func:`check_text` on every string and member name in it
    (nested dicts and lists); other values are left to the schema.

    The strings are gathered first and searched once, joined by a newline (a character
    the rule allows, so no refused character is added or hidden)."""
    strings: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)  # exact types first: parsed JSON holds nothing else
        if kind is str or (kind is not dict and isinstance(item, str)):
            strings.append(item)
        elif kind is dict or isinstance(item, dict):
            for key, member in item.items():
                if type(key) is str or isinstance(key, str):
                    strings.append(key)
                if type(member) is str:
                    strings.append(member)
                else:
                    stack.append(member)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    check_text("\n".join(strings))
    return value
