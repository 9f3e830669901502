"""Payload rules beyond field types: consistent disclosure answers, real dates."""

import uuid

import pytest
from pydantic import ValidationError

import protocol as p

REQ = str(uuid.UUID(int=1))


def test_granted_disclosure_needs_details_and_denied_needs_a_reason() -> None:
    details = p.DisclosedDetails(names=["MBALA Jean-Pierre"])
    assert p.DisclosureResponse(
        request_id=REQ, reference="sub:1", decision="granted", details=details
    )
    assert p.DisclosureResponse(
        request_id=REQ, reference="sub:1", decision="denied", reason="ongoing case"
    )
    for bad in (
        {"decision": "granted"},
        {"decision": "granted", "details": details, "reason": "x"},
        {"decision": "denied"},
        {"decision": "denied", "reason": "x", "details": details},
    ):
        with pytest.raises(ValidationError):
            p.DisclosureResponse(request_id=REQ, reference="sub:1", **bad)


@pytest.mark.parametrize("value", ["1978", "1978-04", "1978-04-30", "2000-02-29"])
def test_partial_dates_of_birth_are_accepted(value: str) -> None:
    assert p.Party(kind="person", names=["X"], date_of_birth=value).date_of_birth == value


@pytest.mark.parametrize(
    "value", ["1978-13", "1978-00", "1978-04-31", "1999-02-29", "78", "1978-4"]
)
def test_impossible_dates_of_birth_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        p.Party(kind="person", names=["X"], date_of_birth=value)


def _alert_with(text: str) -> dict[str, object]:
    """An alert's JSON whose nested party name is ``text``."""
    return {
        "alert_id": str(uuid.UUID(int=2)),
        "category": "seizure",
        "severity": "urgent",
        "title": "Saisie à Garoua-Boulaï",
        "body": "Colis de pierres brutes 💎",
        "subjects": [{"kind": "person", "names": [text]}],
        "handling": "AMBER",
        "issued_at": 1_700_000_000,
    }


@pytest.mark.parametrize(
    "bad", ["a\x00b", "\ud800", "\ufdd0", "\ufffe", "💎\U0001fffe", "\U0010ffff"]
)
def test_refused_characters_nested_anywhere_in_a_payload_are_refused(bad: str) -> None:
    """Nested payloads opened from an envelope are checked by their root alone: the
    root's check covers them, and one built on its own still checks itself."""
    with pytest.raises(ValidationError):
        p.Alert.model_validate(_alert_with(bad))
    with pytest.raises(ValidationError):
        p.Party.model_validate({"kind": "person", "names": [bad]})


@pytest.mark.parametrize("good", ["NGOUANDJIKA Marcel", "Ngwandjika 💎", "\U0010fffd", "e\u0301"])
def test_other_characters_beyond_the_basic_plane_are_accepted(good: str) -> None:
    assert p.Alert.model_validate(_alert_with(good)).subjects[0].names == [good]
