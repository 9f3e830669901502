"""Benchmark: envelopes sealed and opened per second versus the bare PyNaCl primitives.

``python -m protocol.bench [--seconds N]``. Both loops run in the same process on the
same realistic alert (about 2 KB of text). The raw loop does what an envelope
minimally costs: one Ed25519 sign + verify and one crypto_box + box-open of the same
plaintext. The last line printed is JSON:
``{"seal_open_per_s": …, "raw_per_s": …, "ratio": …}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable

from nacl.public import Box
from nacl.signing import VerifyKey

from ._canonical import canonical_json
from ._card import make_card
from ._envelope import Recipient, StaticDirectory, open_envelope, seal
from ._keys import NodeIdentity
from ._messages import Alert, IdentityDocument, Party, Place


def sample_alert(now: int) -> Alert:
    return Alert(
        alert_id=str(uuid.uuid4()),
        category="seizure",
        severity="urgent",
        title="Saisie de diamants bruts à Garoua-Boulaï, certificat KP falsifié",
        body=(
            "Le 12 novembre, les douanes ont saisi un colis de 214 pierres brutes dans un bus "
            "en provenance de Berbérati. Le certificat présenté porte un numéro inexistant. "
        )
        * 5,
        subjects=[
            Party(
                kind="person",
                names=["NGOUANDJIKA Marcel"],
                aliases=["Marcel Ngwandjika"],
                date_of_birth="1981-04-02",
                nationality="CF",
                documents=[IdentityDocument(type="passport", number="CF1234567", country="CF")],
            )
        ],
        place=Place(country="CM", locality="Garoua-Boulaï", lat_e6=5885000, lon_e6=14545000),
        handling="AMBER",
        references=["KP-CF-2026-004512"],
        issued_at=now,
    )


def _interleaved_rates(
    loops: dict[str, Callable[[], None]], seconds: float, rounds: int = 10
) -> dict[str, float]:
    """Run each loop for ``seconds / rounds`` in turn, ``rounds`` times, so that any
    change in machine load hits every loop alike; return operations per second."""
    counts = dict.fromkeys(loops, 0)
    spent = dict.fromkeys(loops, 0.0)
    for fn in loops.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in loops.items():
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / rounds:
                for _ in range(10):
                    fn()
                counts[name] += 10
            spent[name] += time.perf_counter() - start
    return {name: counts[name] / spent[name] for name in loops}


def run(seconds: float = 4.0) -> dict[str, float]:
    now = int(time.time())
    sender, receiver = NodeIdentity.generate("CM"), NodeIdentity.generate("CF")
    sender_card = make_card(sender, name="CM", endpoints=["http://127.0.0.1:1"], now=now)
    receiver_card = make_card(receiver, name="CF", endpoints=["http://127.0.0.1:2"], now=now)
    recipient = Recipient("CF", receiver_card.current_key("enc", now))
    directory = StaticDirectory({"CM": sender_card.public_keys()})
    alert = sample_alert(now)

    def envelope() -> None:
        wire = seal(sender, recipient, alert, now=now)
        open_envelope(wire, identity=receiver, directory=directory, now=now)

    plaintext = canonical_json(alert.model_dump(mode="json", exclude_none=True))
    verify_key = VerifyKey(sender.signing_public_key)

    def raw() -> None:
        ciphertext = Box(sender.encryption_key, receiver.encryption_key.public_key).encrypt(
            plaintext, os.urandom(24)
        )
        signature = sender.sign(ciphertext)
        verify_key.verify(ciphertext, signature)
        Box(receiver.encryption_key, sender.encryption_key.public_key).decrypt(ciphertext)

    rates = _interleaved_rates({"envelope": envelope, "raw": raw}, seconds)
    seal_open, raw_rate = rates["envelope"], rates["raw"]
    return {
        "seal_open_per_s": round(seal_open, 1),
        "raw_per_s": round(raw_rate, 1),
        "ratio": round(seal_open / raw_rate, 3),
        "envelope_bytes": len(seal(sender, recipient, alert, now=now)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m protocol.bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="time spent in each loop")
    args = parser.parse_args(argv)
    result = run(args.seconds)
    print(f"envelope: {result['seal_open_per_s']}/s, raw crypto: {result['raw_per_s']}/s")
    print(json.dumps({k: result[k] for k in ("seal_open_per_s", "raw_per_s", "ratio")}))


if __name__ == "__main__":
    main()
