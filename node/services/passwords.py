"""Password hashing for console accounts: scrypt (standard library), per-user salt.

A stored hash reads ``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>`` (base64url, no padding),
so the cost can be raised later and old hashes still verify (``needs_rehash`` tells
when to store a new one). Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP's minimum for scrypt: N = 2^17, r = 8, p = 1 (128 MiB, about half a second).
LOG2_N, R, P = 17, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MIN_LENGTH, MAX_LENGTH = 12, 256


class WeakPassword(ValueError):
    """A new password that does not meet the rules; ``code`` says which one."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * n * r * p,
        dklen=HASH_BYTES,
    )


def check_strength(password: str, *, username: str = "") -> None:
    """Raise ``WeakPassword`` unless ``password`` may be used."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword("too_short")
    if len(password) > MAX_LENGTH:
        raise WeakPassword("too_long")
    if username and username.casefold() in password.casefold():
        raise WeakPassword("contains_username")
    if len(set(password)) < 5:
        raise WeakPassword("too_simple")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed hash never matches."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${LOG2_N}${R}${P}$")


def burn_time(password: str) -> None:
    """Take as long as checking a real password (for an unknown user name, so timing
    does not tell which names exist)."""
    dummy = f"scrypt${LOG2_N}${R}${P}${_b64(b'0' * SALT_BYTES)}${_b64(b'0' * HASH_BYTES)}"
    verify_password(password, dummy)
