"""French and English: complete catalogs, the language chosen per user or by the
browser, dates in the user's conventions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import protocol
from node.console import i18n
from node.console.i18n import negotiate, translator
from node.console.labels import LABELS
from node.roles import ROLES
from tests.console.conftest import visible_text

CONSOLE = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def french_catalog():  # type: ignore[no-untyped-def]
    with (CONSOLE / "locale" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale="fr")


def extracted_msgids() -> set[str | tuple[str, ...]]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {
        "templates/**.html": {
            "extensions": "jinja2.ext.i18n",
            "trim_blocks": "true",
            "lstrip_blocks": "true",
        }
    }
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(str(CONSOLE), method_map, options):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_console_text_has_a_french_translation():
    catalog = french_catalog()
    in_catalog = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}
    extracted = extracted_msgids()
    assert extracted - in_catalog == set(), "texts missing from the French catalog (see i18n.py)"
    assert in_catalog - extracted == set(), "obsolete texts in the French catalog"
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        assert all(strings), f"untranslated: {message.id!r}"
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, message.id


def test_accept_language_picks_french_or_english():
    assert negotiate("fr-CM,fr;q=0.9,en;q=0.8") == "fr"
    assert negotiate("en-GB,en;q=0.9,fr;q=0.8") == "en"
    assert negotiate("de-DE,fr;q=0.5") == "fr"
    assert negotiate("fr;q=0,en") == "en"
    assert negotiate("ln, sw") == "en"
    assert negotiate("") == negotiate(None) == "en"
    assert negotiate("garbage;;;q=x, fr") == "fr"


def test_dates_follow_the_users_language():
    moment = datetime(2026, 3, 5, 14, 7, tzinfo=UTC)
    assert translator("en").datetime(moment) == "Mar 5, 2026, 2:07:00\u202fPM UTC"
    assert translator("fr").datetime(moment) == "5 mars 2026, 14:07:00 UTC"
    assert translator("fr").date("2026-03-05") == "5 mars 2026"
    assert translator("fr").date("1971-06") == "1971-06"  # partial dates as given
    assert translator("fr").country("CF-usaf") == "République centrafricaine"


def test_sign_in_page_follows_the_browser_then_the_chosen_language(console):
    client = console.client
    client.cookies.clear()
    french = client.get("/console/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in french.text and "Identifiant" in french.text
    english = client.get("/console/login", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text and "User name" in english.text
    chosen = client.get("/console/login?lang=fr", headers={"Accept-Language": "en"})
    assert "Identifiant" in chosen.text
    again = client.get("/console/login", headers={"Accept-Language": "en"})
    assert "Identifiant" in again.text  # the choice is remembered (cookie)


def test_the_language_is_stored_on_the_user(console):
    console.as_user("officer1")
    assert "Received alerts" in console.get("/console/alerts").text
    response = console.post("/console/language", {"language": "fr", "back": "/console/alerts"})
    assert response.headers["location"] == "/console/alerts"
    page = console.get("/console/alerts", headers={"Accept-Language": "en"})
    assert "Alertes reçues" in page.text and page.headers["content-language"] == "fr"
    # Stored on the account: another browser (English, no cookie) gets French too.
    console.client.cookies.clear()
    console.sign_in("officer1", **{"Accept-Language": "en"})
    console.client.cookies.delete("kpnet_lang", path="/console")
    assert (
        "Alertes reçues" in console.get("/console/alerts", headers={"Accept-Language": "en"}).text
    )
    # Back to following the browser.
    console.post("/console/language", {"language": ""})
    console.client.cookies.delete("kpnet_lang", path="/console")
    assert (
        "Received alerts" in console.get("/console/alerts", headers={"Accept-Language": "en"}).text
    )


def english_words() -> set[str]:
    """Words of the English texts that the French ones never use."""
    catalog = french_catalog()
    words = lambda text: set(re.findall(r"[A-Za-z]{3,}", PLACEHOLDER.sub(" ", text)))  # noqa: E731
    english, french = set(), set()
    for message in catalog:
        if message.id:
            for text in message.id if isinstance(message.id, tuple) else (message.id,):
                english |= words(text)
            for text in message.string if isinstance(message.string, tuple) else (message.string,):
                french |= words(text)
    return english - french


def without_untranslatable(html: str) -> str:
    """The page without what is not to be translated (names, codes: translate="no")."""
    return re.sub(r'<(\w+)[^>]*translate="no"[^>]*>.*?</\1>', " ", html, flags=re.S)


def test_no_english_left_on_french_pages(shared_console):
    console = shared_console
    english = english_words()
    pages = {
        "analyst1": [
            "/console/alerts",
            "/console/alerts?direction=outbound",
            "/console/alerts/new",
            "/console/licensees",
            "/console/subjects",
            "/console/licensees/new",
            "/console/subjects/new",
            "/console/import",
            "/console/account",
            "/console/account/password",
        ],
        "admin1": ["/console/peers", "/console/users", "/console/users/new"],
        "auditor1": ["/console/audit"],
    }
    for username, paths in pages.items():
        console.as_user(username)
        console.post("/console/language", {"language": "fr"})
        for path in paths:
            text = visible_text(without_untranslatable(console.get(path).text))
            left = {w for w in re.findall(r"[A-Za-z]{3,}", text) if w in english}
            assert left == set(), f"{path}: {sorted(left)}"


def test_the_console_has_a_word_for_every_word_of_the_vocabularies_and_no_other():
    # A word added to the protocol's vocabulary (or a role) without a label here would
    # be shown to officers as its raw code.
    vocabularies = {
        "role": ROLES,
        "category": protocol.ALERT_CATEGORIES,
        "severity": protocol.SEVERITIES,
        "licence_type": protocol.LICENCE_TYPES,
        "licence_status": protocol.LICENCE_STATUSES,
        "party_kind": protocol.PARTY_KINDS,
        "reason_category": protocol.REASON_CATEGORIES,
        "risk_level": protocol.RISK_LEVELS,
        "record_kind": protocol.RECORD_KINDS,
    }
    for group, words in vocabularies.items():
        assert list(LABELS[group]) == list(words), group
