"""Operations endpoints: health, Prometheus metrics, the signed card, the OpenAPI
description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import protocol
from node.app import create_app
from node.config import load_settings
from node.roles import ROLES
from protocol import verify_card

# -- /healthz -----------------------------------------------------------------------------


def test_healthz_reports_database_and_keys(shared_api):
    api = shared_api
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "node_id": "CM", "database": "ok", "keys": "ok"}


@pytest.fixture
def signing_key(shared_api) -> Iterator[Path]:
    """The signing key file, put back as it was after the test."""
    path = shared_api.settings.keys_dir / "signing.key"
    data, mode = path.read_bytes(), path.stat().st_mode & 0o777
    yield path
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


@pytest.mark.parametrize("damage", ["readable by others", "missing", "directory open"])
def test_healthz_is_503_when_the_keys_are_unusable_and_the_app_keeps_answering(
    shared_api, signing_key, damage
):
    api = shared_api
    if damage == "readable by others":
        signing_key.chmod(0o644)
    elif damage == "directory open":
        signing_key.parent.chmod(0o750)
    else:
        signing_key.unlink()

    response = api.client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unhealthy", "ok")
    assert body["keys"].startswith("error:")
    if damage == "directory open":
        assert body["keys"] == (
            f"error: key directory {signing_key.parent} is readable by others; "
            f"run: chmod 700 {signing_key.parent}"
        )
    else:
        assert damage in body["keys"]
    assert api.client.get("/api/v1/node", headers=api.as_role("officer")).status_code == 200
    assert api.client.get("/metrics").status_code == 200

    if damage == "readable by others":
        signing_key.chmod(0o600)
        assert api.client.get("/healthz").status_code == 200
    if damage == "directory open":
        signing_key.parent.chmod(0o700)
        assert api.client.get("/healthz").status_code == 200


def test_livez_needs_nothing(shared_api):
    api = shared_api
    assert api.client.get("/livez").json() == {"status": "ok"}


# -- /metrics -----------------------------------------------------------------------------


def scrape(client: TestClient, **headers: str) -> dict[str, list]:
    """Samples by metric name."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_metrics_count_requests_by_route_template(api, make_licensee):
    ref = make_licensee()["ref"]
    officer = api.as_role("officer")
    for _ in range(3):
        assert api.client.get(f"/api/v1/licensees/{ref}", headers=officer).status_code == 200
    api.client.get("/api/v1/licensees/no-such-ref", headers=officer)
    # A reference that looks like a path segment still gives the template.
    api.client.get("/api/v1/licensees/licensees", headers=officer)
    api.client.get("/no/such/page/12345")

    samples = scrape(api.client)

    requests = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in samples["kpnet_http_requests_total"]
    }
    assert requests[("GET", "/api/v1/licensees/{ref}", "200")] == 3
    assert requests[("GET", "/api/v1/licensees/{ref}", "404")] == 2
    assert requests[("POST", "/api/v1/licensees", "201")] == 1
    assert requests[("GET", "unmatched", "404")] == 1
    routes = {route for _, route, _ in requests}
    assert not any(ref in route or "12345" in route for route in routes), routes
    assert all(route == "unmatched" or route.startswith("/") for route in routes)

    durations = {
        (s.labels["method"], s.labels["route"]): s.value
        for s in samples["kpnet_http_request_duration_seconds_count"]
    }
    assert durations[("GET", "/api/v1/licensees/{ref}")] == 5


def test_metrics_count_live_records_and_audit_entries(api, make_licensee, make_subject):
    make_licensee("CM-M-1")
    gone = make_licensee("CM-M-2")["ref"]
    make_licensee("CM-M-3")
    make_subject()
    api.client.delete(f"/api/v1/licensees/{gone}", headers=api.as_role("analyst"))
    entries = api.client.get("/api/v1/audit/verify", headers=api.as_role("auditor")).json()

    samples = scrape(api.client)

    records = {s.labels["kind"]: s.value for s in samples["kpnet_records_total_count"]}
    assert records == {"licensee": 2, "subject": 1}
    assert [s.value for s in samples["kpnet_audit_entries_count"]] == [entries["entries"]]


@pytest.mark.parametrize("source", ["settings", "environment"])
def test_metrics_token_guards_metrics_only(shared_api, monkeypatch, source):
    api = shared_api
    if source == "environment":
        monkeypatch.setenv("KPNET_METRICS_TOKEN", "s3cret-scrape")
        settings = load_settings(api.settings.data_dir)
    else:
        settings = load_settings(api.settings.data_dir, metrics_token="s3cret-scrape")
    assert settings.metrics_token == "s3cret-scrape"

    with TestClient(create_app(settings)) as client:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": api.as_role("admin")["Authorization"]},
        ):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "kpnet_" not in refused.text
        assert "kpnet_records_total_count" in scrape(client, Authorization="Bearer s3cret-scrape")
        assert client.get("/healthz").status_code == 200
        assert client.get("/federation/v1/card").status_code == 200


def test_metrics_are_open_without_a_token_setting(shared_api):
    api = shared_api
    assert api.settings.metrics_token is None
    assert "kpnet_audit_entries_count" in scrape(api.client)


# -- the card -----------------------------------------------------------------------------


def test_card_is_served_without_a_token_and_matches_the_fingerprint(shared_api, kpnet):
    api = shared_api
    response = api.client.get("/federation/v1/card")
    assert response.status_code == 200

    printed = kpnet("fingerprint", "--data-dir", api.settings.data_dir)
    assert printed.returncode == 0, printed.stderr
    fingerprint = printed.stdout.strip()
    card = verify_card(response.content, expected_fingerprint=fingerprint)
    assert card.node_id == "CM"
    assert card.fingerprint == fingerprint
    assert card.endpoints == [api.settings.public_url]
    node = api.client.get("/api/v1/node", headers=api.as_role("auditor")).json()
    assert node["fingerprint"] == fingerprint


# -- OpenAPI ------------------------------------------------------------------------------


def test_openapi_lists_the_api_with_a_bearer_scheme(shared_api):
    api = shared_api
    document = api.client.get("/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    bearer = [
        name for name, s in schemes.items() if (s["type"], s.get("scheme")) == ("http", "bearer")
    ]
    assert len(bearer) == 1
    paths = document["paths"]
    for path in (
        "/api/v1/licensees",
        "/api/v1/licensees/{ref}",
        "/api/v1/licensees/{ref}/status",
        "/api/v1/licensees/{ref}/history",
        "/api/v1/subjects",
        "/api/v1/subjects/{ref}",
        "/api/v1/subjects/{ref}/history",
        "/api/v1/tokens",
        "/api/v1/tokens/{token_id}",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/node",
    ):
        assert path in paths, path
    for path, operations in paths.items():
        for method, operation in operations.items():
            secured = {
                name for requirement in operation.get("security", []) for name in requirement
            }
            if path.startswith("/api/v1"):
                assert secured == set(bearer), (method, path)
            else:
                assert secured == set(), (method, path)


VOCABULARIES = {
    "TLP levels": protocol.HANDLING_LEVELS,
    "alert categories": protocol.ALERT_CATEGORIES,
    "severities": protocol.SEVERITIES,
    "party kinds": protocol.PARTY_KINDS,
    "licence types": protocol.LICENCE_TYPES,
    "licence statuses": protocol.LICENCE_STATUSES,
    "reason categories": protocol.REASON_CATEGORIES,
    "risk levels": protocol.RISK_LEVELS,
    "roles": ROLES,
}


def enums_in(document: object) -> list[tuple[str, ...]]:
    """Every ``enum`` anywhere in an OpenAPI document (schemas and parameters alike)."""
    if isinstance(document, dict):
        found = [tuple(document["enum"])] if "enum" in document else []
        return found + [e for value in document.values() for e in enums_in(value)]
    if isinstance(document, list):
        return [e for value in document for e in enums_in(value)]
    return []


def test_openapi_enums_are_the_protocols_words_in_its_order(shared_api):
    enums = enums_in(shared_api.client.get("/openapi.json").json())
    for name, words in VOCABULARIES.items():
        # An enum most of whose words are a vocabulary's is that vocabulary, whole and in
        # order (so no surface spells or orders one of them its own way).
        alike = {e for e in enums if 2 * len(set(e) & set(words)) > len(e)}
        assert alike == {tuple(words)}, name
