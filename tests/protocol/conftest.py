"""Shared fixtures for the protocol tests: three deterministic nodes and a fixed clock.

Time is always a parameter of the library, so every test passes ``NOW`` (or a value
derived from it) explicitly; nothing here reads the wall clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

import protocol as p

NOW = 1_790_000_000  # 2026-09-21T14:13:20Z
CARD_TIME = NOW - 86_400  # cards were issued a day before NOW, valid for two years


def deterministic_identity(node_id: str, label: str | None = None) -> p.NodeIdentity:
    """A NodeIdentity whose secrets derive from a label (reproducible across runs)."""
    label = label or node_id
    seed = hashlib.sha256(f"kpnet tests {label} ed25519".encode()).digest()
    secret = hashlib.sha256(f"kpnet tests {label} x25519".encode()).digest()
    return p.NodeIdentity(node_id, seed, secret)


def card_for(identity: p.NodeIdentity, **kwargs: object) -> p.NodeCard:
    defaults: dict[str, object] = {
        "name": f"Node {identity.node_id}",
        "endpoints": [f"https://{identity.node_id.lower()}.example.org"],
        "now": CARD_TIME,
    }
    defaults.update(kwargs)
    return p.make_card(identity, **defaults)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Net:
    """Sender CM, recipient CD and a third node GN, all known to each other."""

    now: int
    sender: p.NodeIdentity
    recipient: p.NodeIdentity
    other: p.NodeIdentity
    sender_card: p.NodeCard
    recipient_card: p.NodeCard
    other_card: p.NodeCard
    directory: p.StaticDirectory
    to_recipient: p.Recipient
    to_other: p.Recipient


@pytest.fixture(scope="session")
def net() -> Net:
    sender = deterministic_identity("CM")
    recipient = deterministic_identity("CD")
    other = deterministic_identity("GN")
    cards = {i.node_id: card_for(i) for i in (sender, recipient, other)}
    directory = p.StaticDirectory({node: card.public_keys() for node, card in cards.items()})
    return Net(
        now=NOW,
        sender=sender,
        recipient=recipient,
        other=other,
        sender_card=cards["CM"],
        recipient_card=cards["CD"],
        other_card=cards["GN"],
        directory=directory,
        to_recipient=p.Recipient("CD", cards["CD"].current_key("enc", NOW)),
        to_other=p.Recipient("GN", cards["GN"].current_key("enc", NOW)),
    )
