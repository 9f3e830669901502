"""Who may call what: every /api/v1 route against every role and every bad credential.

``ACCESS`` is the access table of the local API (as README.md states it). A route
missing from it fails ``test_every_api_route_has_a_role_rule``, so no route ships
without a decision. The routes of the node's own records, tokens, audit log and node
info are called with every credential (``RULES``); the others are called with every
credential they must refuse, and their declared roles are checked against the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import update

from node.api.deps import Allow
from node.app import create_app
from node.config import Settings
from node.db.models import ApiToken

ROLES = ("admin", "analyst", "officer", "auditor")
EVERYONE = frozenset(ROLES)
READERS = frozenset({"officer", "analyst"})
WRITERS = frozenset({"analyst"})
ADMINS = frozenset({"admin"})
AUDITORS = frozenset({"auditor"})

ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/licensees"): READERS,
    ("POST", "/api/v1/licensees"): WRITERS,
    ("GET", "/api/v1/licensees/{ref}"): READERS,
    ("PATCH", "/api/v1/licensees/{ref}"): WRITERS,
    ("POST", "/api/v1/licensees/{ref}/status"): WRITERS,
    ("DELETE", "/api/v1/licensees/{ref}"): WRITERS,
    ("GET", "/api/v1/licensees/{ref}/history"): READERS,
    ("GET", "/api/v1/subjects"): READERS,
    ("POST", "/api/v1/subjects"): WRITERS,
    ("GET", "/api/v1/subjects/{ref}"): READERS,
    ("PATCH", "/api/v1/subjects/{ref}"): WRITERS,
    ("DELETE", "/api/v1/subjects/{ref}"): WRITERS,
    ("GET", "/api/v1/subjects/{ref}/history"): READERS,
    ("GET", "/api/v1/tokens"): ADMINS,
    ("POST", "/api/v1/tokens"): ADMINS,
    ("PATCH", "/api/v1/tokens/{token_id}"): ADMINS,
    ("DELETE", "/api/v1/tokens/{token_id}"): ADMINS,
    ("GET", "/api/v1/audit"): AUDITORS,
    ("GET", "/api/v1/audit/verify"): AUDITORS,
    ("GET", "/api/v1/node"): EVERYONE,
    # Bulk transfer: analysts.
    ("POST", "/api/v1/imports/{kind}"): WRITERS,
    ("GET", "/api/v1/exports/{kind}"): WRITERS,
    # Alerts: analysts send, officers and analysts read and acknowledge.
    ("POST", "/api/v1/alerts"): WRITERS,
    ("GET", "/api/v1/alerts"): READERS,
    ("GET", "/api/v1/alerts/stream"): READERS,
    ("GET", "/api/v1/alerts/{alert_id}"): READERS,
    ("POST", "/api/v1/alerts/{alert_id}/update"): WRITERS,
    ("POST", "/api/v1/alerts/{alert_id}/retract"): WRITERS,
    ("POST", "/api/v1/alerts/{alert_id}/ack"): READERS,
    # KYC checks: officers and analysts run and read them, and ask for disclosures;
    # analysts decide peers' disclosure requests.
    ("POST", "/api/v1/kyc/checks"): READERS,
    ("GET", "/api/v1/kyc/checks"): READERS,
    ("GET", "/api/v1/kyc/checks/{check_id}"): READERS,
    ("POST", "/api/v1/disclosures"): READERS,
    ("GET", "/api/v1/disclosures"): READERS,
    ("GET", "/api/v1/disclosures/{disclosure_id}"): READERS,
    ("POST", "/api/v1/disclosures/{disclosure_id}/decision"): WRITERS,
    # Peers and their sharing agreements: admins.
    ("GET", "/api/v1/peers"): ADMINS,
    ("POST", "/api/v1/peers"): ADMINS,
    ("GET", "/api/v1/peers/{node_id}"): ADMINS,
    ("PUT", "/api/v1/peers/{node_id}/agreement"): ADMINS,
    ("POST", "/api/v1/peers/{node_id}/suspend"): ADMINS,
    ("POST", "/api/v1/peers/{node_id}/resume"): ADMINS,
    ("POST", "/api/v1/peers/{node_id}/endpoint/approve"): ADMINS,
    ("POST", "/api/v1/peers/{node_id}/endpoint/reject"): ADMINS,
    ("DELETE", "/api/v1/peers/{node_id}"): ADMINS,
}

# Routes outside /api/v1 that answer without an API token, on purpose.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),  # optionally guarded by settings.metrics_token
    ("GET", "/federation/v1/card"),
    ("GET", "/livez"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/assets/{name}"),  # Swagger UI's files, served by the node
    ("HEAD", "/openapi.json"),
    ("POST", "/federation/v1/messages"),  # envelopes prove their sender by signature
}


class Targets:
    """Makes a fresh object for each attempt, so destructive calls never share one."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def licence_number(self) -> str:
        return f"CM-RT-{uuid.uuid4().hex[:12]}"

    def licensee(self) -> dict[str, str]:
        response = self.api.client.post(
            "/api/v1/licensees",
            headers=self.api.as_role("analyst"),
            json={
                "licence_number": self.licence_number(),
                "licence_type": "collector",
                "legal_name": "Coopérative de Berbérati",
            },
        )
        assert response.status_code == 201, response.text
        return {"ref": response.json()["ref"]}

    def subject(self) -> dict[str, str]:
        response = self.api.client.post(
            "/api/v1/subjects",
            headers=self.api.as_role("analyst"),
            json={"kind": "person", "names": ["Alain Kossi"], "reason_category": "fraud"},
        )
        assert response.status_code == 201, response.text
        return {"ref": response.json()["ref"]}

    def token(self) -> dict[str, str]:
        response = self.api.client.post(
            "/api/v1/tokens",
            headers=self.api.as_role("admin"),
            json={"name": "target", "role": "officer"},
        )
        assert response.status_code == 201, response.text
        return {"token_id": str(response.json()["id"])}


Prepared = tuple[dict[str, str], dict[str, Any] | None]


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    success: int
    prepare: Callable[[Targets], Prepared]

    @property
    def allowed(self) -> frozenset[str]:
        return ACCESS[(self.method, self.path)]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def nothing(_: Targets) -> Prepared:
    return {}, None


RULES = [
    Rule("GET", "/api/v1/licensees", 200, nothing),
    Rule(
        "POST",
        "/api/v1/licensees",
        201,
        lambda t: (
            {},
            {
                "licence_number": t.licence_number(),
                "licence_type": "exporter",
                "legal_name": "Bangui Diamants",
            },
        ),
    ),
    Rule("GET", "/api/v1/licensees/{ref}", 200, lambda t: (t.licensee(), None)),
    Rule(
        "PATCH",
        "/api/v1/licensees/{ref}",
        200,
        lambda t: (t.licensee(), {"legal_name": "Nouveau nom"}),
    ),
    Rule(
        "POST",
        "/api/v1/licensees/{ref}/status",
        200,
        lambda t: (t.licensee(), {"status": "suspended", "reason": "inspection"}),
    ),
    Rule("DELETE", "/api/v1/licensees/{ref}", 204, lambda t: (t.licensee(), None)),
    Rule("GET", "/api/v1/licensees/{ref}/history", 200, lambda t: (t.licensee(), None)),
    Rule("GET", "/api/v1/subjects", 200, nothing),
    Rule(
        "POST",
        "/api/v1/subjects",
        201,
        lambda t: (
            {},
            {"kind": "organisation", "names": ["Sahel Gems Ltd"], "reason_category": "smuggling"},
        ),
    ),
    Rule("GET", "/api/v1/subjects/{ref}", 200, lambda t: (t.subject(), None)),
    Rule("PATCH", "/api/v1/subjects/{ref}", 200, lambda t: (t.subject(), {"risk_level": "high"})),
    Rule("DELETE", "/api/v1/subjects/{ref}", 204, lambda t: (t.subject(), None)),
    Rule("GET", "/api/v1/subjects/{ref}/history", 200, lambda t: (t.subject(), None)),
    Rule("GET", "/api/v1/tokens", 200, nothing),
    Rule(
        "POST", "/api/v1/tokens", 201, lambda t: ({}, {"name": "Douane Garoua", "role": "officer"})
    ),
    Rule("PATCH", "/api/v1/tokens/{token_id}", 200, lambda t: (t.token(), {"clearance": "RED"})),
    Rule("DELETE", "/api/v1/tokens/{token_id}", 200, lambda t: (t.token(), None)),
    Rule("GET", "/api/v1/audit", 200, nothing),
    Rule("GET", "/api/v1/audit/verify", 200, nothing),
    Rule("GET", "/api/v1/node", 200, nothing),
]


def create_token(api: Any, role: str) -> tuple[int, str]:
    response = api.client.post(
        "/api/v1/tokens", headers=api.as_role("admin"), json={"name": f"spare-{role}", "role": role}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["token"]


def bad_credentials(api: Any, role: str) -> dict[str, dict[str, str]]:
    """Headers that must all answer 401, whatever the route; the revoked and expired
    tokens belong to ``role``, one the route would otherwise admit."""
    revoked_id, revoked = create_token(api, role)
    response = api.client.delete(f"/api/v1/tokens/{revoked_id}", headers=api.as_role("admin"))
    assert response.status_code == 200
    expired_id, expired = create_token(api, role)
    with api.db.begin() as connection:
        connection.execute(
            update(ApiToken)
            .where(ApiToken.id == expired_id)
            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    return {
        "no token": {},
        "garbage token": {"Authorization": "Bearer not-a-token"},
        "unknown token": {"Authorization": "Bearer kpn_" + "x" * 43},
        "basic auth": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "revoked token": {"Authorization": f"Bearer {revoked}"},
        "expired token": {"Authorization": f"Bearer {expired}"},
    }


def outcome(status: int, challenge: str | None, wrote: bool) -> str:
    bearer = " Bearer" if challenge == "Bearer" else ""
    return f"{status}{bearer}, {'WROTE' if wrote else 'nothing written'}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_route_admits_exactly_its_roles(shared_api, shared_counts, rule):
    api, row_counts = shared_api, shared_counts
    targets = Targets(api)
    credentials = {role: api.as_role(role) for role in ROLES}
    credentials.update(bad_credentials(api, sorted(rule.allowed)[0]))

    expected: dict[str, str] = {}
    seen: dict[str, str] = {}
    for who, headers in credentials.items():
        params, body = rule.prepare(targets)
        before = row_counts()
        response = api.client.request(
            rule.method, rule.path.format(**params), json=body, headers=headers
        )
        if who in rule.allowed:
            expected[who], seen[who] = str(rule.success), str(response.status_code)
        else:
            expected[who] = outcome(
                403 if who in ROLES else 401, None if who in ROLES else "Bearer", wrote=False
            )
            seen[who] = outcome(
                response.status_code,
                response.headers.get("www-authenticate"),
                wrote=row_counts() != before,
            )
    assert seen == expected


# Routes called only with the credentials they must refuse (their own tests cover what
# the admitted roles can do; the live alert stream would never end). Unknown objects
# suffice: the role check comes first.
REFUSAL_ONLY = sorted(set(ACCESS) - {(r.method, r.path) for r in RULES})
DUMMY_PARAMS = {
    "ref": "no-such-ref",
    "token_id": "999999",
    "alert_id": "999999",
    "node_id": "ZZ",
    "kind": "licensees",
    "check_id": "no-such-check",
    "disclosure_id": "999999",
}


@pytest.mark.parametrize("route", REFUSAL_ONLY, ids=" ".join)
def test_route_refuses_other_roles_and_bad_credentials(shared_api, shared_counts, route):
    api, row_counts = shared_api, shared_counts
    method, path = route
    allowed = ACCESS[route]
    credentials = {role: api.as_role(role) for role in ROLES if role not in allowed}
    credentials.update(bad_credentials(api, sorted(allowed)[0]))
    expected, seen = {}, {}
    for who, headers in credentials.items():
        before = row_counts()
        response = api.client.request(
            method, path.format(**DUMMY_PARAMS), headers=headers, content=b"licence_number\r\nX\r\n"
        )
        expected[who] = outcome(
            403 if who in ROLES else 401, None if who in ROLES else "Bearer", wrote=False
        )
        seen[who] = outcome(
            response.status_code,
            response.headers.get("www-authenticate"),
            wrote=row_counts() != before,
        )
    assert seen == expected


def served_routes(app: Any) -> dict[tuple[str, str], Any]:
    """Every route the app serves by (method, path), included routers flattened."""
    return {
        (method, route.path): route
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or ())
    }


def declared_roles(dependant: Any) -> list[frozenset[str]]:
    """The roles of every ``Allow`` among a route's dependencies."""
    found = []
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Allow):
            found.append(dependency.call.roles)
        found.extend(declared_roles(dependency))
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app, not started: enough to look at its routes."""
    return create_app(
        Settings(
            data_dir=tmp_path_factory.mktemp("routes"),
            node_id="CM",
            node_name="x",
            public_url="http://x",
        )
    )


def test_every_api_route_has_a_role_rule(app):
    served = set(served_routes(app))
    api_routes = {(m, p) for m, p in served if p.startswith("/api/v1")}
    assert api_routes - set(ACCESS) == set(), "routes without a rule in ACCESS"
    assert set(ACCESS) - api_routes == set(), "rules in ACCESS for routes the app lacks"
    # The web console signs users in with sessions, not tokens; its own test checks that
    # every /console route declares its roles (tests/console/test_auth.py).
    console_routes = {(m, p) for m, p in served if p.startswith("/console")}
    assert served - api_routes - console_routes - PUBLIC_ROUTES == set(), (
        "route outside /api/v1 answers without a token: protect it or add it to PUBLIC_ROUTES"
    )
    assert len({(r.method, r.path) for r in RULES}) == len(RULES), "a route twice in RULES"

    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert documented == set(ACCESS)


def test_every_api_route_declares_the_roles_of_the_table(app):
    declared = {
        key: declared_roles(route.dependant)
        for key, route in served_routes(app).items()
        if key[1].startswith("/api/v1")
    }
    assert declared == {key: [roles] for key, roles in ACCESS.items()}


def test_revoked_token_is_refused_at_once(shared_api):
    api = shared_api
    token_id, secret = create_token(api, "analyst")
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/licensees", headers=headers).status_code == 200

    revoked = api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.as_role("admin"))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    refused = api.client.get("/api/v1/licensees", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    # Other tokens, even of the same role, keep working.
    assert api.client.get("/api/v1/licensees", headers=api.as_role("analyst")).status_code == 200


def test_token_expires_at_the_end_of_its_lifetime(shared_api):
    api = shared_api
    created = api.client.post(
        "/api/v1/tokens",
        headers=api.as_role("admin"),
        json={"name": "mission Bouar", "role": "officer", "expires_days": 1},
    )
    assert created.status_code == 201
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    issued = datetime.fromisoformat(created.json()["created_at"])
    assert datetime.fromisoformat(created.json()["expires_at"]) == issued + timedelta(days=1)

    def status_at(moment: datetime) -> int:
        with TestClient(create_app(api.settings, clock=lambda: moment)) as client:
            response = client.get("/api/v1/node", headers=headers)
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
            return response.status_code

    assert status_at(issued + timedelta(hours=23)) == 200
    assert status_at(issued + timedelta(days=1, seconds=1)) == 401
    assert api.client.get("/api/v1/node", headers=headers).status_code == 200  # real clock


def test_node_info_names_the_callers_role(shared_api):
    api = shared_api
    for role in ROLES:
        response = api.client.get("/api/v1/node", headers=api.as_role(role))
        assert response.status_code == 200
        assert response.json()["role"] == role
        assert response.json()["node_id"] == "CM"


def test_token_list_never_shows_secrets(shared_api):
    api = shared_api
    listed = api.client.get("/api/v1/tokens", headers=api.as_role("admin"))
    assert listed.status_code == 200
    assert {t["role"] for t in listed.json()} == set(ROLES)
    for secret in api.tokens.values():
        assert secret not in listed.text
    assert all("token" not in item and "token_hash" not in item for item in listed.json())


def test_token_rejects_unknown_role(shared_api):
    api = shared_api
    response = api.client.post(
        "/api/v1/tokens", headers=api.as_role("admin"), json={"name": "x", "role": "superuser"}
    )
    assert response.status_code == 422
    assert any(e["loc"][-1] == "role" for e in response.json()["detail"])


def test_revoking_unknown_token_is_404(shared_api):
    api = shared_api
    response = api.client.delete("/api/v1/tokens/9999", headers=api.as_role("admin"))
    assert response.status_code == 404


def test_token_last_use_is_recorded(api):
    api.client.get("/api/v1/node", headers=api.as_role("officer"))
    listed = api.client.get("/api/v1/tokens", headers=api.as_role("admin")).json()
    used = {t["role"]: t["last_used_at"] for t in listed}
    assert used["officer"] is not None
    assert used["auditor"] is None
    assert datetime.fromisoformat(used["officer"]) <= datetime.now(UTC)
