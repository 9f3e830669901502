"""The demo's story, told step by step in the terminal. Every step checks its outcome;
``play`` returns whether all of them held.

1. CF broadcasts an alert about a parcel seized with a forged KP certificate; CM and CD
   receive it.
2. A CM officer checks a buying house that CD knows: its licence is revoked.
3. A CM officer checks a person CF flags: a hit, then a disclosure that a CF analyst
   grants.
4. CD goes down; CM sends an alert; CD comes back and receives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx
from rich.console import Console

from .network import DemoNode
from .records import FLAGGED_DOB, FLAGGED_PERSON, REVOKED_BUYER, REVOKED_LICENCE

T = TypeVar("T")
WAIT_SECONDS = 30.0


class StepFailed(Exception):
    pass


@dataclass
class Story:
    nodes: dict[str, DemoNode]
    console: Console
    outcomes: list[tuple[str, bool]] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.console.print(f"   {text}")

    def check(self, what: str, held: bool) -> None:
        self.outcomes.append((what, held))
        mark = "[green]✔[/green]" if held else "[red]✘[/red]"
        self.console.print(f"   {mark} {what}")
        if not held:
            raise StepFailed(what)


def wait_for(get: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = get()
        if value:
            return value
        time.sleep(0.25)
    return None


def _ok(response: httpx.Response, status: int = 201) -> Any:
    if response.status_code != status:
        raise StepFailed(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} {response.text[:300]}"
        )
    return response.json()


def _inbound(node: DemoNode, title: str) -> dict[str, Any] | None:
    with node.client("officer") as api:
        alerts = _ok(api.get("/api/v1/alerts", params={"direction": "inbound"}), 200)
    return next((a for a in alerts if a["title"] == title), None)


def step_alert(story: Story) -> None:
    cf, cm, cd = story.nodes["CF"], story.nodes["CM"], story.nodes["CD"]
    title = "Colis saisi à Bangui M'Poko : certificat KP falsifié"
    story.say("A CF analyst broadcasts an early-warning alert to every peer.")
    with cf.client("analyst") as api:
        sent = _ok(
            api.post(
                "/api/v1/alerts",
                json={
                    "category": "fake_kp_certificate",
                    "severity": "urgent",
                    "title": title,
                    "body": "214 pierres brutes (61 ct) saisies au départ du vol pour Douala. "
                    "Le certificat KP présenté porte un numéro déjà utilisé.",
                    "handling": "AMBER",
                    "place": {"country": "CF", "locality": "Bangui M'Poko"},
                    "subjects": [{"kind": "person", "names": [FLAGGED_PERSON], "role": "porteur"}],
                },
            )
        )
    recipients = ", ".join(r["peer"] for r in sent["recipients"])
    story.say(f"Alert {sent['alert_uuid'][:8]}… queued for {recipients}.")
    for node in (cm, cd):
        received = wait_for(partial(_inbound, node, title))
        story.check(f"{node.node_id} received the alert from CF", received is not None)


def _check(node: DemoNode, party: dict[str, Any], purpose: str) -> dict[str, Any]:
    with node.client("officer") as api:
        check: dict[str, Any] = _ok(
            api.post(
                "/api/v1/kyc/checks",
                json={"party": party, "purpose": purpose, "scope": "federation"},
            )
        )
    return check


def _peer_hits(check: dict[str, Any], peer: str) -> list[dict[str, Any]]:
    answer = next((p for p in check["peers"] if p["peer"] == peer), None)
    return answer["hits"] if answer else []


def step_revoked_buyer(story: Story) -> None:
    cm = story.nodes["CM"]
    story.say('A CM officer checks the buying house "Kasai Etoile SARL" before clearing an export.')
    check = _check(
        cm, {"kind": "organisation", "names": ["Kasai Etoile SARL"]}, "Export clearance, Douala"
    )
    story.say(
        "Peers answered: "
        + ", ".join(p["peer"] for p in check["peers"] if p["state"] == "answered")
        + f"; not answered: {', '.join(check['not_answered']) or 'none'}."
    )
    hits = [h for h in _peer_hits(check, "CD") if h["kind"] == "licensee"]
    if hits:
        licensee = hits[0]["licensee"]
        story.say(
            f"CD: {licensee['legal_name']}, licence {licensee['licence_number']}, "
            f"status [bold]{licensee['status']}[/bold] "
            f"(score {hits[0]['score']}, {hits[0]['strength']})."
        )
    story.check(
        f"CD reports {REVOKED_BUYER} with its licence revoked",
        bool(hits)
        and hits[0]["licensee"]["licence_number"] == REVOKED_LICENCE
        and hits[0]["licensee"]["status"] == "revoked",
    )


def step_flagged_person(story: Story) -> None:
    cm, cf = story.nodes["CM"], story.nodes["CF"]
    story.say("A CM officer checks a traveller: Ousmane Yakite Banda, born 1976.")
    check = _check(
        cm,
        {"kind": "person", "names": ["Ousmane Yakite Banda"], "date_of_birth": FLAGGED_DOB[:4]},
        "Parcel release, Douala airport",
    )
    hits = [h for h in _peer_hits(check, "CF") if h["kind"] == "subject"]
    if hits:
        story.say(
            f"CF: a hit (score {hits[0]['score']}, {hits[0]['strength']}, "
            f"TLP:{hits[0]['handling']}), "
            "no details: only an opaque reference."
        )
    story.check(
        "CF answers with a hit on a subject of interest, without its details",
        bool(hits) and set(hits[0]) >= {"reference"} and hits[0]["licensee"] is None,
    )
    story.say("The officer asks CF for the details, with a justification.")
    with cm.client("officer") as api:
        asked = _ok(
            api.post(
                "/api/v1/disclosures",
                json={
                    "check_id": check["id"],
                    "peer": "CF",
                    "reference": hits[0]["reference"],
                    "justification": (
                        "Traveller holds 40 rough stones and a KP certificate issued in CF."
                    ),
                },
            )
        )

    def pending() -> dict[str, Any] | None:
        with cf.client("analyst") as api:
            rows = _ok(
                api.get(
                    "/api/v1/disclosures", params={"direction": "inbound", "status": "pending"}
                ),
                200,
            )
        return next((r for r in rows if r["request_id"] == asked["request_id"]), None)

    incoming = wait_for(pending)
    story.check("CF's analysts see the request", incoming is not None)
    assert incoming is not None
    fields = ["names", "aliases", "date_of_birth", "reason_category", "risk_level"]
    story.say(f"A CF analyst grants it, releasing: {', '.join(fields)}.")
    with cf.client("analyst") as api:
        _ok(
            api.post(
                f"/api/v1/disclosures/{incoming['id']}/decision",
                json={"decision": "grant", "fields": fields},
            ),
            200,
        )

    def answered() -> dict[str, Any] | None:
        with cm.client("officer") as api:
            row = _ok(api.get(f"/api/v1/disclosures/{asked['id']}"), 200)
        return row if row["status"] != "pending" else None

    outcome = wait_for(answered)
    details = (outcome or {}).get("details") or {}
    if details:
        story.say(
            f"CM now reads: {', '.join(details.get('names', []))}, born "
            f"{details.get('date_of_birth')}, {details.get('reason_category')}, "
            f"risk {details.get('risk_level')}."
        )
    story.check(
        "CM receives exactly the fields CF released",
        outcome is not None
        and outcome["status"] == "granted"
        and sorted(details) == sorted(fields)
        and "narrative" not in details,
    )


def step_offline_peer(story: Story) -> None:
    cm, cd = story.nodes["CM"], story.nodes["CD"]
    title = "Convoi suspect signalé vers Kenzou"
    story.say("CD's node goes offline (link down).")
    cd.stop()
    with cm.client("analyst") as api:
        sent = _ok(
            api.post(
                "/api/v1/alerts",
                json={
                    "category": "suspect_movement",
                    "severity": "warning",
                    "title": title,
                    "body": "Deux véhicules 4x4 sans plaques, passage prévu de nuit.",
                    "handling": "GREEN",
                },
            )
        )
    story.say("A CM analyst sends an alert meanwhile; the message for CD waits in CM's outbox.")

    def state_of(peer: str) -> str | None:
        with cm.client("analyst") as api:
            alert = _ok(api.get(f"/api/v1/alerts/{sent['id']}"), 200)
        return next((r["state"] for r in alert["recipients"] if r["peer"] == peer), None)

    story.check("the alert for CD is queued, not lost", state_of("CD") == "queued")
    story.say("CD comes back online.")
    cd.start()
    received = wait_for(lambda: _inbound(cd, title))
    story.check("CD received CM's alert after restarting", received is not None)
    delivered = wait_for(lambda: state_of("CD") in ("delivered", "read", "acted"))
    story.check("CM holds CD's signed receipt for it", bool(delivered))


STEPS: list[tuple[str, Callable[[Story], None]]] = [
    ("CF warns the region", step_alert),
    ("KYC: a buyer CD knows", step_revoked_buyer),
    ("KYC: a person CF flags, then disclosure", step_flagged_person),
    ("A peer offline loses nothing", step_offline_peer),
]


def play(story: Story) -> bool:
    for number, (title, step) in enumerate(STEPS, 1):
        story.console.rule(f"[bold]{number}. {title}")
        try:
            step(story)
        except (StepFailed, httpx.HTTPError) as exc:
            if not story.outcomes or story.outcomes[-1] != (str(exc), False):
                story.outcomes.append((str(exc), False))
                story.console.print(f"   [red]✘[/red] {exc}")
            return False
    return all(held for _, held in story.outcomes)
