"""Invented records for the demo nodes. Every name, number and event here is made up;
the places and the kinds of actors are those of the region's diamond trade."""

from __future__ import annotations

from typing import Any

NODES: dict[str, str] = {
    "CM": "Cameroun — Cellule anti-fraude diamant",
    "CF": "Centrafrique — Unité spéciale anti-fraude",
    "CD": "RD Congo — Cellule de lutte contre la fraude minière",
}

# The two people the scenario asks about.
REVOKED_BUYER = "Comptoir Kasaï Étoile SPRL"
REVOKED_LICENCE = "CD-CEEC-2021-117"
FLAGGED_PERSON = "Ousmane YAKITÉ-BANDA"
FLAGGED_DOB = "1976-09-14"


def _licensee(
    number: str,
    kind: str,
    name: str,
    region: str,
    person: str,
    *,
    status: str = "active",
    issued: str = "2023-01-15",
    expires: str = "2027-01-14",
    dob: str | None = None,
    trade: list[str] | None = None,
) -> dict[str, Any]:
    owner: dict[str, Any] = {"role": "director", "name": person}
    if dob:
        owner["date_of_birth"] = dob
    return {
        "licence_number": number,
        "licence_type": kind,
        "legal_name": name,
        "trade_names": trade or [],
        "region": region,
        "status": status,
        "issued_on": issued,
        "expires_on": expires,
        "persons": [owner],
        "handling": "GREEN",
    }


def _subject(
    names: list[str],
    reason: str,
    narrative: str,
    *,
    dob: str | None = None,
    nationality: str | None = None,
    aliases: list[str] | None = None,
    risk: str = "medium",
    handling: str = "AMBER",
    documents: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    subject: dict[str, Any] = {
        "kind": "person",
        "names": names,
        "aliases": aliases or [],
        "reason_category": reason,
        "risk_level": risk,
        "narrative": narrative,
        "handling": handling,
        "documents": documents or [],
        "source_agency": "demo",
    }
    if dob:
        subject["date_of_birth"] = dob
    if nationality:
        subject["nationality"] = nationality
    return subject


LICENSEES: dict[str, list[dict[str, Any]]] = {
    "CM": [
        _licensee(
            "CM-MINMIDT-BA-0031",
            "buying_house",
            "Bertoua Diamants SARL",
            "Est",
            "NGONO Bertrand",
            dob="1969-03-02",
        ),
        _licensee(
            "CM-MINMIDT-CO-0210",
            "collector",
            "Collecteur Batouri Kambele",
            "Est",
            "ABOUBAKAR Moussa",
            dob="1981",
        ),
        _licensee(
            "CM-MINMIDT-EX-0007",
            "exporter",
            "Yokadouma Gem Export SA",
            "Est",
            "ESSOMBA Claire",
            dob="1975-11-20",
        ),
    ],
    "CF": [
        _licensee(
            "CF-BECDOR-BA-2022-04",
            "buying_house",
            "Bureau d'achat Sangha Diamant SARL",
            "Berbérati",
            "DOKO Célestin",
            dob="1972-07-08",
        ),
        _licensee(
            "CF-BECDOR-CO-2023-118",
            "collector",
            "Collecteur Nola Ouest",
            "Nola",
            "GBANGOU Armel",
            dob="1985",
        ),
        _licensee(
            "CF-BECDOR-BA-2021-11",
            "buying_house",
            "Carnot Gemmes SARLU",
            "Carnot",
            "ZOUMALDÉ Hortense",
            status="suspended",
        ),
    ],
    "CD": [
        _licensee(
            REVOKED_LICENCE,
            "buying_house",
            REVOKED_BUYER,
            "Kasaï",
            "MUKENDI KABONGO Théodore",
            status="revoked",
            issued="2021-03-01",
            expires="2026-02-28",
            dob="1968-05-17",
            trade=["Kasaï Étoile"],
        ),
        _licensee(
            "CD-CEEC-2022-045",
            "exporter",
            "Tshikapa Diamond Trading SARL",
            "Kasaï",
            "KALONJI Patrick",
            dob="1979-12-01",
        ),
        _licensee(
            "CD-CEEC-2023-203",
            "collector",
            "Coopérative minière Lubilanji",
            "Kasaï-Oriental",
            "NTUMBA Béatrice",
            dob="1983",
        ),
    ],
}

SUBJECTS: dict[str, list[dict[str, Any]]] = {
    "CM": [
        _subject(
            ["DJIBRILLA Hamadou"],
            "smuggling",
            "Passeur présumé sur l'axe Kenzou–Gamboula (frontière CF).",
            dob="1988",
            nationality="CM",
        ),
    ],
    "CF": [
        _subject(
            [FLAGGED_PERSON],
            "fake_kp_certificate",
            "Fournit des certificats KP falsifiés aux colis sortant par Bangui M'Poko; "
            "deux saisies liées en 2026.",
            dob=FLAGGED_DOB,
            nationality="CF",
            aliases=["Ousmane Banda"],
            risk="high",
            documents=[{"type": "passport", "number": "CF0917641", "country": "CF"}],
        ),
        _subject(
            ["MBOLI Gaston"],
            "money_laundering",
            "Paiements en espèces fractionnés.",
            dob="1970",
            nationality="CF",
            handling="RED",
        ),
    ],
    "CD": [
        _subject(
            ["KASONGO Didier"],
            "smuggling",
            "Convois vers Kahemba signalés.",
            dob="1982-02-11",
            nationality="CD",
        ),
    ],
}
