"""Every published test vector opens (or fails) exactly as documented."""

import json
from pathlib import Path

import pytest

import protocol as p
from protocol import testvectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol" / "test-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def _identity(
    node_id: str, seed: str, secret: str, retired: tuple[str, ...] = ()
) -> p.NodeIdentity:
    return p.NodeIdentity(
        node_id, bytes.fromhex(seed), bytes.fromhex(secret), tuple(map(bytes.fromhex, retired))
    )


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector(case: dict) -> None:
    sender = _identity(
        case["sender_node_id"], case["sender_ed25519_seed"], case["sender_x25519_secret"]
    )
    recipient = _identity(
        case["recipient_node_id"],
        case["recipient_ed25519_seed"],
        case["recipient_x25519_secret"],
        tuple(case.get("recipient_x25519_retired_secrets", ())),
    )
    # The card the recipient holds for the sender: its own, unless the case says (after
    # a rotation the sender may sign with an older key the newer card still lists).
    card = p.verify_card(case.get("sender_card") or VECTORS["cards"][sender.node_id])
    assert card.node_id == sender.node_id
    if "sender_card" not in case:
        assert card.fingerprint == sender.fingerprint
    directory = p.StaticDirectory({sender.node_id: card.public_keys()})
    wire = case["envelope"].encode("utf-8")
    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(p.ProtocolError) as err:
            p.open_envelope(wire, identity=recipient, directory=directory, now=case["now"])
        assert err.value.code == expected["error"]
    else:
        opened = p.open_envelope(wire, identity=recipient, directory=directory, now=case["now"])
        assert opened.type == expected["type"]
        assert opened.payload.model_dump(mode="json", exclude_none=True) == expected["payload"]


def test_vectors_cover_every_message_type_but_alert_update() -> None:
    valid = {c["expected"]["type"] for c in VECTORS["cases"] if "type" in c["expected"]}
    assert valid >= set(p.MESSAGE_TYPES) - {"alert.update"}


def test_rotation_vectors_cover_each_key_at_each_step() -> None:
    """docs/protocol.md §10: the cases a second implementation needs for a rotation."""
    outcomes = {
        c["name"]: c["expected"].get("error", "opens")
        for c in VECTORS["cases"]
        if c["name"].startswith("rotation-")
    }
    assert outcomes == {
        "rotation-card-update": "opens",
        "rotation-receipt-sealed-to-new-key": "opens",
        "rotation-sealed-to-old-key-during-retention": "opens",
        "rotation-sealed-to-old-key-after-retention": "wrong_recipient",
        "rotation-signed-with-old-key-during-grace": "opens",
        "rotation-signed-with-new-key": "opens",
        "rotation-signed-with-new-key-before-card-update": "unknown_key",
        "rotation-signed-with-old-key-after-grace": "key_expired",
    }


def test_vector_file_is_what_the_generator_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == testvectors.render()
