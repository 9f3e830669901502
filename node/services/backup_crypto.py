"""The encryption of ``kpnet backup`` archives: one passphrase, Argon2id once, BLAKE2b
subkeys per purpose, and members zlib-compressed then encrypted in chunks with
libsodium's secretstream (XChaCha20-Poly1305), each chunk bound to the member's name
(see ``node.services.backup`` for the archive's layout)."""

from __future__ import annotations

import hashlib
import io
import unicodedata
import zlib
from dataclasses import dataclass
from typing import IO, Any, Protocol

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.pwhash import argon2id

CIPHER = "xchacha20poly1305-secretstream"
COMPRESSION = "zlib"
COMPRESSION_LEVEL = 6
CHUNK_BYTES = 64 * 1024  # compressed bytes per encrypted chunk
# What a manifest may ask a restore to hold per chunk.
MIN_CHUNK_BYTES, MAX_CHUNK_BYTES = 256, 16 * 1024 * 1024

MIN_PASSPHRASE_CHARS = 12
KDF_OPSLIMIT = argon2id.OPSLIMIT_MODERATE
KDF_MEMLIMIT = argon2id.MEMLIMIT_MODERATE
# A manifest may not make a restore spend more than this on key derivation.
KDF_MAX_OPSLIMIT = 16
KDF_MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE


# -- passphrase and encryption -----------------------------------------------------------

_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_TAG_BYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


@dataclass(frozen=True)
class Keys:
    """What one passphrase gives, each part for one purpose."""

    keys: bytes  # encrypts the key files
    data: bytes  # encrypts the config and the tables
    mac: bytes  # authenticates the manifest
    check: str  # recorded in the manifest: a wrong passphrase does not give it


def derive_keys(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> Keys:
    """One Argon2id derivation; subkeys from BLAKE2b keyed with its output."""
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    master = argon2id.kdf(32, secret, salt, opslimit=opslimit, memlimit=memlimit)

    def subkey(purpose: bytes) -> bytes:
        return nacl.hash.blake2b(
            b"",
            digest_size=32,
            key=master,
            person=b"kpnet.bk." + purpose,
            encoder=nacl.encoding.RawEncoder,
        )

    return Keys(subkey(b"keys"), subkey(b"data"), subkey(b"mac"), subkey(b"check").hex())


def manifest_mac(key: bytes, manifest: bytes) -> str:
    return nacl.hash.blake2b(manifest, key=key, digest_size=32).decode("ascii")


class Sealer:
    """Write one member: zlib-compressed, then encrypted with secretstream into ``out``
    (the header, chunks of ``chunk_bytes`` compressed bytes, the last tagged final and
    possibly shorter or empty), every chunk authenticated with the member's name. Keeps
    the size and SHA-256 of what it writes."""

    def __init__(self, out: IO[bytes], key: bytes, name: str, chunk_bytes: int) -> None:
        self._out, self._ad, self._chunk = out, name.encode("utf-8"), chunk_bytes
        self._digest, self.size = hashlib.sha256(), 0
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._emit(sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key))
        self._zip = zlib.compressobj(COMPRESSION_LEVEL)
        self._pending = bytearray()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)
        self.size += len(data)

    def _push(self, tag: int) -> None:
        chunk = bytes(self._pending[: self._chunk])
        del self._pending[: self._chunk]
        self._emit(
            sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, self._ad, tag)
        )

    def write(self, data: bytes) -> None:
        self._pending += self._zip.compress(data)
        while len(self._pending) >= self._chunk:
            self._push(_TAG_MESSAGE)

    def close(self) -> str:
        """Write the last chunk; the SHA-256 of the member."""
        self._pending += self._zip.flush()
        while len(self._pending) > self._chunk:
            self._push(_TAG_MESSAGE)
        self._push(_TAG_FINAL)
        return self._digest.hexdigest()


class Undecryptable(Exception):
    """Why an encrypted member cannot be read."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_exactly(stream: Readable, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream."""
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


class Unsealed(io.RawIOBase):
    """The plaintext of a member written by ``Sealer``, read from its stored bytes one
    chunk at a time. Raises ``Undecryptable`` if a chunk does not authenticate, or the
    member ends before its final chunk or goes on after it."""

    def __init__(self, stream: Readable, key: bytes, name: str, chunk_bytes: int) -> None:
        super().__init__()
        self._stream, self._ad = stream, name.encode("utf-8")
        self._block = chunk_bytes + _TAG_BYTES
        header = read_exactly(stream, _HEADER_BYTES)
        if len(header) != _HEADER_BYTES:
            raise Undecryptable("it is cut short, before its first chunk")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self._zip = zlib.decompressobj()
        self._plain = memoryview(b"")
        self._final = self._flushed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._plain:
            if self._zip.unconsumed_tail:
                self._plain = memoryview(
                    self._zip.decompress(self._zip.unconsumed_tail, self._block)
                )
            elif not self._final:
                self._plain = memoryview(self._zip.decompress(self._next_chunk(), self._block))
            elif not self._flushed:
                self._flushed = True
                self._plain = memoryview(self._zip.flush())
            elif not self._zip.eof or self._zip.unused_data:
                raise Undecryptable("its compressed content is incomplete")
            else:
                return 0
        size = min(len(buffer), len(self._plain))
        buffer[:size] = self._plain[:size]
        self._plain = self._plain[size:]
        return size

    def _next_chunk(self) -> bytes:
        block = read_exactly(self._stream, self._block)
        if not block:
            raise Undecryptable("it is cut short, before its final chunk")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, block, self._ad
            )
        except nacl.exceptions.CryptoError:
            raise Undecryptable("a chunk does not decrypt") from None
        if tag == _TAG_FINAL:
            self._final = True
            if self._stream.read(1):
                raise Undecryptable("it goes on after its final chunk")
        elif tag != _TAG_MESSAGE:
            raise Undecryptable(f"a chunk has the unexpected tag {tag}")
        return bytes(plain)


def unsealed_reader(stream: Readable, key: bytes, name: str, chunk_bytes: int) -> io.BufferedReader:
    return io.BufferedReader(
        Unsealed(stream, key, name, chunk_bytes),
        buffer_size=max(chunk_bytes, io.DEFAULT_BUFFER_SIZE),
    )
