"""The one binary encoding of the protocol: base64url without padding (RFC 4648 §5)."""

from __future__ import annotations

import base64
import binascii

_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
# Bits of the last character that carry no data, by length modulo 4 (1 is impossible).
_UNUSED_BITS = {0: 0, 2: 0x0F, 3: 0x03}


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode strictly: base64url alphabet only, no padding, unused trailing bits zero.

    Raises ``ValueError`` on anything else, so one byte string has one encoding.
    """
    if type(text) is not str or "+" in text or "/" in text or "=" in text:
        raise ValueError("not unpadded base64url")
    unused = _UNUSED_BITS.get(len(text) % 4)
    if unused is None or (text and _VALUE.get(text[-1], 0) & unused):
        raise ValueError("not canonical unpadded base64url")
    try:
        standard = text.encode("ascii").translate(_TO_STANDARD) + b"=" * (-len(text) % 4)
        return binascii.a2b_base64(standard, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("not unpadded base64url") from None
