"""``kpnet bench ingest``: inbound alerts accepted per second by one node process,
against requests per second of a trivial endpoint (``/livez``) of the same app.

A receiving node runs as its own ``kpnet serve`` process (one process, SQLite by
default or ``--database-url``); a sending node's keys seal realistic alerts to it
beforehand, so the timed part is only what the receiver does: size and schema checks,
signature, decryption, de-duplication, storage, audit entry and the signed receipt.
Envelopes go in batches, as the node's own outbox sender sends them. The same HTTP
client, with the same concurrency, then times ``/livez``.

The server's own CPU time (``/proc``), read just before and after the timed ingest, is
divided by the messages accepted (``cpu_us_per_msg``) and compared with the ceiling
measured in this process in the same run, before and after the ingest
(``ceiling_us_per_msg``): the CPU time of the cryptography alone that the node must do
for each message, with PyNaCl's primitives on the same inputs — the Ed25519
verification of each prepared envelope's signed bytes and the crypto_box
(X25519 + XSalsa20-Poly1305) opening of its own ciphertext, then the Ed25519 signature
and the crypto_box sealing of a receipt as large as the node's real receipt. It leaves
out everything else the protocol library does (JSON, canonical form, base64, schema
and text checks). Their quotient is ``cpu_ceiling_ratio``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from nacl.bindings import crypto_box_easy, crypto_box_open_easy
from nacl.signing import VerifyKey

import protocol

from ..bootstrap import init_node
from ..keystore import load_identity
from ..readiness import free_port, start_serve
from ..runtime import open_node
from ..services.actors import Actor
from ..services.endpoint_policy import LOOPBACK_PEERS, EndpointPolicy
from ..services.peers import PeerRegistry
from .process_stats import cpu_seconds

SETUP = Actor("bench", "admin")


def sample_alert(now: int, n: int) -> protocol.Alert:
    return protocol.Alert(
        alert_id=str(uuid.uuid4()),
        category="seizure",
        severity="urgent",
        title=f"Saisie n°{n} : colis de diamants bruts à Garoua-Boulaï",
        body=(
            "Les douanes ont saisi un colis de pierres brutes dans un bus en provenance de "
            "Berbérati. Le certificat KP présenté porte un numéro inexistant. "
        )
        * 4,
        subjects=[
            protocol.Party(
                kind="person", names=["NGOUANDJIKA Marcel"], date_of_birth="1981", nationality="CF"
            )
        ],
        place=protocol.Place(country="CM", locality="Garoua-Boulaï"),
        handling="AMBER",
        references=[f"KP-CF-2026-{n:06d}"],
        issued_at=now,
    )


@dataclass(frozen=True)
class _Prepared:
    data_dir: Path  # the receiver's
    envelopes: list[bytes]  # sealed by the sender to the receiver
    receiver: protocol.NodeIdentity
    directory: protocol.StaticDirectory  # the sender's keys, as the receiver knows them
    sender: protocol.Recipient  # where the receiver seals its receipts to


def _prepare(base: Path, database_url: str | None, messages: int) -> _Prepared:
    now = datetime.now(UTC)
    receiver = init_node(
        base / "CM",
        node_id="CM",
        name="Bench receiver",
        url="http://127.0.0.1:1",
        now=now,
        database_url=database_url,
        options=LOOPBACK_PEERS,
    )
    sender = init_node(
        base / "CF", node_id="CF", name="Bench sender", url="http://127.0.0.1:2", now=now
    )
    sender_identity = load_identity(sender.keys_dir, "CF")
    node = open_node(receiver, migrate=False)
    try:
        with node.sessions() as session:
            PeerRegistry(
                session,
                SETUP,
                now,
                own_node_id="CM",
                endpoints=EndpointPolicy.from_settings(receiver),
            ).add(sender.card_path.read_bytes(), fingerprint=sender_identity.fingerprint)
            session.commit()
        recipient = protocol.Recipient("CM", node.card.current_key("enc", int(now.timestamp())))
    finally:
        node.close()
    ts = int(now.timestamp())
    envelopes = [
        protocol.seal(sender_identity, recipient, sample_alert(ts, n), now=ts)
        for n in range(messages)
    ]
    sender_card = protocol.verify_card(sender.card_path.read_bytes())
    return _Prepared(
        receiver.data_dir,
        envelopes,
        load_identity(receiver.keys_dir, "CM"),
        protocol.StaticDirectory({"CF": sender_card.public_keys()}),
        protocol.Recipient("CF", sender_card.current_key("enc", ts)),
    )


@dataclass(frozen=True)
class _Crypto:
    """What the ceiling times, taken from the prepared envelopes and one real receipt."""

    verify: Callable[[bytes, bytes], bytes]  # the sender's Ed25519 key
    sender_enc: bytes  # the sender's X25519 public key
    receiver_enc: bytes  # the receiver's X25519 secret key
    envelopes: list[tuple[bytes, bytes, bytes, bytes]]  # signed bytes, signature, nonce, ciphertext
    receipt_signed: bytes  # a real receipt's signed bytes
    receipt_plaintext: bytes  # as long as a real receipt's encrypted document


def _crypto(prepared: _Prepared) -> _Crypto:
    now = int(time.time())
    envelopes = []
    for raw in prepared.envelopes:
        doc = protocol.parse_json(raw)
        signature = doc.pop("signature")
        envelopes.append(
            (
                protocol.canonical_json(doc),
                protocol.b64decode(signature),
                protocol.b64decode(doc["nonce"]),
                protocol.b64decode(doc["ciphertext"]),
            )
        )
    message = protocol.peek_header(prepared.envelopes[0])
    receipt = protocol.parse_json(
        protocol.seal(
            prepared.receiver,
            prepared.sender,
            protocol.Receipt(message_id=message.id, status="delivered", at=now),
            now=now,
            ttl=7 * 86400,
            in_reply_to=message.id,
        )
    )
    del receipt["signature"]
    box_overhead = 16  # crypto_box's Poly1305 tag
    keys = prepared.directory.keys_for(message.sender) or ()
    key = {k.use: k.key for k in keys if k.kid in (message.sender_sig_kid, message.sender_enc_kid)}
    return _Crypto(
        verify=VerifyKey(key["sig"]).verify,
        sender_enc=key["enc"],
        receiver_enc=prepared.receiver.encryption_secret,
        envelopes=envelopes,
        receipt_signed=protocol.canonical_json(receipt),
        receipt_plaintext=os.urandom(len(protocol.b64decode(receipt["ciphertext"])) - box_overhead),
    )


def _ceiling_us(crypto: _Crypto, receiver: protocol.NodeIdentity) -> float:
    """CPU µs per message of the cryptography alone, with PyNaCl: for each envelope, the
    Ed25519 verification of its signed bytes and the crypto_box opening of its own
    ciphertext; then the Ed25519 signature and crypto_box sealing of a receipt of a real
    receipt's size, back to the sender."""
    start = time.process_time()
    for signed, signature, nonce, ciphertext in crypto.envelopes:
        crypto.verify(signed, signature)
        crypto_box_open_easy(ciphertext, nonce, crypto.sender_enc, crypto.receiver_enc)
        receiver.sign(crypto.receipt_signed)
        crypto_box_easy(
            crypto.receipt_plaintext, os.urandom(24), crypto.sender_enc, crypto.receiver_enc
        )
    return (time.process_time() - start) / len(crypto.envelopes) * 1e6


async def _drive(
    url: str, bodies: list[bytes], concurrency: int, check: Callable[[httpx.Response], int]
) -> tuple[int, float]:
    """POST (or GET when a body is empty) everything with ``concurrency`` workers;
    return (units accepted, seconds)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                if body:
                    response = await client.post(
                        url, content=body, headers={"content-type": "application/json"}
                    )
                else:
                    response = await client.get(url)
                accepted += check(response)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted, time.perf_counter() - start


def _accepted(response: httpx.Response) -> int:
    response.raise_for_status()
    return sum(1 for r in response.json()["results"] if r.get("status") == "accepted")


def _ok(response: httpx.Response) -> int:
    response.raise_for_status()
    return 1


def run_ingest_bench(
    *,
    messages: int = 4000,
    batch: int = 50,
    concurrency: int = 4,
    database_url: str | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-") as tmp:
        echo(f"sealing {messages} alerts…")
        prepared = _prepare(Path(tmp), database_url, messages)
        data_dir, envelopes = prepared.data_dir, prepared.envelopes
        port = free_port()
        env = {
            "KPNET_SENDER_ENABLED": "false",
            "KPNET_PEER_RATE_PER_SECOND": "1000000",
            "KPNET_PEER_RATE_BURST": "1000000",
        }
        serving = start_serve(data_dir, port, Path(tmp) / "serve.log", env=env)
        try:
            base = serving.url
            serving.wait_ready()
            bodies = [
                b"[" + b",".join(envelopes[i : i + batch]) + b"]"
                for i in range(0, len(envelopes), batch)
            ]
            # Warm up both paths (first requests import and compile lazily).
            asyncio.run(_drive(base + "/livez", [b""] * 50, concurrency, _ok))
            # The ceiling is measured on either side of the ingest, so that a change in
            # the machine's load during the run weighs on both figures alike.
            echo("timing the cryptography per message…")
            crypto = _crypto(prepared)
            ceiling_us = _ceiling_us(crypto, prepared.receiver)
            echo(f"ingesting {messages} alerts in batches of {batch}…")
            cpu_before = cpu_seconds(serving.process.pid)
            accepted, ingest_s = asyncio.run(
                _drive(base + "/federation/v1/messages", bodies, concurrency, _accepted)
            )
            cpu_after = cpu_seconds(serving.process.pid)
            ceiling_us = (ceiling_us + _ceiling_us(crypto, prepared.receiver)) / 2
            if accepted != messages:
                raise RuntimeError(f"only {accepted} of {messages} alerts were accepted")
            trivial_requests = max(2000, messages)
            echo(f"timing {trivial_requests} requests to /livez…")
            trivial_before = cpu_seconds(serving.process.pid)
            done, trivial_s = asyncio.run(
                _drive(base + "/livez", [b""] * trivial_requests, concurrency, _ok)
            )
            trivial_after = cpu_seconds(serving.process.pid)
        finally:
            serving.stop()
    ingest_per_s = accepted / ingest_s
    trivial_per_s = done / trivial_s
    cpu_us = trivial_cpu_us = None
    if None not in (cpu_before, cpu_after, trivial_before, trivial_after):
        cpu_us = (cpu_after - cpu_before) / accepted * 1e6  # type: ignore[operator]
        trivial_cpu_us = (trivial_after - trivial_before) / done * 1e6  # type: ignore[operator]
    return {
        "ingest_per_s": round(ingest_per_s, 1),
        "trivial_per_s": round(trivial_per_s, 1),
        "ratio": round(ingest_per_s / trivial_per_s, 3),
        "cpu_us_per_msg": None if cpu_us is None else round(cpu_us, 1),
        "ceiling_us_per_msg": round(ceiling_us, 1),
        "cpu_ceiling_ratio": None if cpu_us is None else round(cpu_us / ceiling_us, 2),
        # What the server spends on a request that does nothing: HTTP and the app's
        # middleware, the floor under a single-envelope request.
        "trivial_cpu_us_per_request": None if trivial_cpu_us is None else round(trivial_cpu_us, 1),
        "database": "postgresql" if database_url else "sqlite",
        "batch": batch,
        "messages": messages,
    }
