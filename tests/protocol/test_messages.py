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
