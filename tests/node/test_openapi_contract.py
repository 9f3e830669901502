"""The OpenAPI document declares every error answer an /api/v1 operation gives, with
the documented body (docs/api.md §1), and the answers have that body."""

from __future__ import annotations

from typing import Any

import pytest

ERRORS = {"400", "401", "403", "413", "422", "429"}


@pytest.fixture(scope="module")
def openapi(shared_api: Any) -> dict[str, Any]:
    document: dict[str, Any] = shared_api.client.get("/openapi.json").json()
    return document


def test_every_api_operation_declares_its_error_answers_with_their_body(
    openapi: dict[str, Any],
) -> None:
    operations = [
        (method, path, operation)
        for path, item in openapi["paths"].items()
        if path.startswith("/api/v1")
        for method, operation in item.items()
    ]
    assert len(operations) > 35
    for method, path, operation in operations:
        declared = operation["responses"]
        assert declared.keys() >= ERRORS, (method, path, sorted(declared))
        for code in ERRORS - {"422"}:
            schema = declared[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
        invalid = declared["422"]["content"]["application/json"]["schema"]
        refs = [invalid.get("$ref")] + [s.get("$ref") for s in invalid.get("anyOf", [])]
        assert "#/components/schemas/InvalidOut" in refs, (method, path)


def test_error_answers_have_the_documented_body(shared_api: Any) -> None:
    client = shared_api.client
    unauthorised = client.get("/api/v1/licensees")
    assert unauthorised.status_code == 401
    assert set(unauthorised.json()) == {"detail"}
    forbidden = client.get("/api/v1/peers", headers=shared_api.as_role("officer"))
    assert forbidden.status_code == 403
    assert set(forbidden.json()) == {"detail"}
    invalid = client.post(
        "/api/v1/licensees", json={"version": True}, headers=shared_api.as_role("analyst")
    )
    assert invalid.status_code == 422
    for error in invalid.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}  # never the input back
    bad_kind = client.post(
        "/api/v1/imports/nothing",
        content=b"x",
        headers={**shared_api.as_role("analyst"), "Content-Type": "text/csv"},
    )
    assert bad_kind.status_code == 422
    assert [e["loc"] for e in bad_kind.json()["detail"]] == [["path", "kind"]]
