"""The console in a real headless Chromium (the system's, driven by Playwright) against
two running nodes, CM and CF, peered as operators peer them.

Screenshots of the main screens in both languages go to ``KPNET_ARTIFACTS_DIR``
(default: ``.artifacts/console`` in the repository). Without Chromium these tests are
skipped, except in CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.config import load_settings
from node.services import passwords
from tests.console.conftest import PASSWORD, add_users
from tests.console.test_i18n import english_words
from tests.federation.conftest import (
    RunningNode,
    alert_json,
    build_network,
    send_alert,
    wait_for,
)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(
    os.environ.get("KPNET_ARTIFACTS_DIR")
    or Path(__file__).resolve().parents[2] / ".artifacts" / "console"
)
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# The page's visible text, leaving out what is marked not to be translated (names, codes).
VISIBLE_TEXT_JS = """() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    if (node.getAttribute('translate') === 'no') return;
    if (['SCRIPT', 'STYLE', 'TEMPLATE'].includes(node.tagName)) return;
    const style = getComputedStyle(node);
    if (style.display === 'none' || style.visibility === 'hidden') return;
    for (const attr of ['placeholder', 'aria-label', 'title']) {
      if (node.getAttribute(attr)) parts.push(node.getAttribute(attr));
    }
    if (node.tagName === 'INPUT' && ['submit', 'button'].includes(node.type)) {
      parts.push(node.value);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  parts.push(document.title);
  return parts.join(' ');
}"""


def share_subjects(node: RunningNode, *, with_peer: str) -> None:
    """``node`` answers ``with_peer``'s KYC queries from its subjects too."""
    from node.runtime import open_node
    from node.schemas.agreements import SharingAgreement
    from node.services.actors import Actor
    from node.services.peers import PeerRegistry

    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            PeerRegistry(
                session, Actor("setup", "admin"), runtime.now(), own_node_id=node.node_id
            ).set_agreement(with_peer, SharingAgreement(kyc_record_kinds=["licensee", "subject"]))
            session.commit()
    finally:
        runtime.close()


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: the console's browser tests cannot run in CI")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningNode]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "LOG2_N", 10)  # cheap hashes; the cost is stored in them
        network = build_network(tmp_path_factory.mktemp("browser"), ("CM", "CF"))
        by_id = {node.node_id: node for node in network}
        add_users(
            load_settings(by_id["CM"].data_dir),
            {"oli": "officer", "ana": "analyst", "adm": "admin", "aud": "auditor"},
        )
        add_users(load_settings(by_id["CF"].data_dir), {"cfana": "analyst"})
        share_subjects(by_id["CF"], with_peer="CM")
    try:
        for node in network:
            node.start()
        yield by_id
    finally:
        for node in network:
            node.stop()


@pytest.fixture(scope="module")
def browser(nodes: dict[str, RunningNode]) -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


def signed_in(
    browser: Any,
    node: RunningNode,
    username: str,
    *,
    locale: str = "en-GB",
    viewport: dict[str, int] = DESKTOP,
) -> Any:
    context = browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{node.url}/console/")
    page.get_by_label(re.compile("User name|Identifiant")).fill(username)
    page.get_by_label(re.compile("^(Password|Mot de passe)$")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in|Connexion")).click()
    page.wait_for_url(re.compile(r"/console/(alerts|peers|audit|account)"))
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def reload_until(page: Any, shown: Callable[[], object], *, first: bool = False) -> None:
    """Reload ``page`` until ``shown()`` holds: for what arrives from a peer in its own
    time. Polls until the generous ``wait_for`` deadline, not a fixed number of times."""
    if first:
        page.reload()

    def check() -> bool:
        if shown():
            return True
        page.reload()
        return False

    wait_for(check, timeout=60.0)


def test_alert_from_the_peer_appears_in_the_open_inbox(browser, nodes):
    page = signed_in(browser, nodes["CM"], "oli")
    assert page.url.endswith("/console/alerts")
    page.wait_for_selector("table#alerts[data-live=on]")
    title = f"Saisie au poste de Kenzou {time.time_ns()}"
    send_alert(nodes["CF"], alert_json(title, recipients=["CM"]))
    row = page.locator("#alerts tbody tr", has_text=title)
    row.wait_for(timeout=20_000)  # no reload: it came over Server-Sent Events
    assert "Urgent" in row.inner_text() and "TLP:AMBER" in row.inner_text()
    assert page.locator("#live-status").inner_text().startswith("New alert:")
    shot(page, "inbox-en")
    row.get_by_role("link").click()
    page.get_by_role("button", name="Mark as read").click()
    page.wait_for_selector("text=Your acknowledgement was recorded")
    shot(page, "alert-received-en")
    page.context.close()


def test_compose_shows_exclusions_then_sends(browser, nodes):
    page = signed_in(browser, nodes["CM"], "ana")
    page.goto(f"{nodes['CM'].url}/console/alerts/new")
    page.get_by_label("Category").select_option("smuggling_route")
    page.get_by_label("Severity").select_option("urgent")
    page.get_by_label("Title").fill("Itinéraire par Berbérati")
    page.get_by_label("Message").fill("Passeurs signalés vers la frontière.")
    page.get_by_label("Handling (TLP)").select_option("RED")
    preview = page.locator("#recipient-preview")
    preview.get_by_text("will not receive it").wait_for()  # updated as the form changes
    assert "TLP:RED is above what the agreement allows (TLP:AMBER)" in preview.inner_text()
    shot(page, "compose-en")
    page.get_by_label("Handling (TLP)").select_option("AMBER")
    preview.get_by_text("will receive it").wait_for()
    page.get_by_role("button", name="Send the alert").click()
    page.wait_for_selector("text=The alert was sent.")
    # The sender delivers it within a second or two (longer on a loaded machine).
    reload_until(page, lambda: page.locator("#recipients").get_by_text("Delivered").count())
    assert page.locator("#recipients tbody tr").first.inner_text().startswith("CF")
    assert "Delivered" in page.locator("#recipients").inner_text()
    shot(page, "alert-sent-en")
    page.context.close()


def test_a_form_post_without_csrf_token_is_refused(browser, nodes):
    page = signed_in(browser, nodes["CM"], "ana")
    status = page.evaluate("""async () => {
        const body = new URLSearchParams({category: 'seizure', severity: 'info', title: 'x',
                                          body: 'y', handling: 'GREEN', recipients: 'CF'});
        const response = await fetch('/console/alerts', {method: 'POST', body});
        return response.status;
    }""")
    assert status == 403
    page.context.close()


def test_an_officer_cannot_reach_admin_pages(browser, nodes):
    page = signed_in(browser, nodes["CM"], "oli")
    for path in ("/console/users", "/console/peers", "/console/audit"):
        response = page.goto(f"{nodes['CM'].url}{path}")
        assert response.status == 403
        assert page.get_by_text("Your role does not give access to this page.").is_visible()
    assert page.get_by_role("link", name="Accounts").count() == 0  # not offered either
    page.context.close()


def test_every_screen_in_french_has_no_english_left(browser, nodes):
    english = english_words()
    cm = nodes["CM"]
    screens = {
        "ana": [
            "/console/alerts",
            "/console/alerts?direction=outbound",
            "/console/alerts/new",
            "/console/licensees",
            "/console/licensees/new",
            "/console/subjects",
            "/console/subjects/new",
            "/console/import",
            "/console/account",
            "/console/kyc",
            "/console/disclosures",
        ],
        "adm": ["/console/peers", "/console/users", "/console/users/new"],
        "aud": ["/console/audit"],
    }
    names = {
        "/console/alerts": "inbox",
        "/console/alerts/new": "compose",
        "/console/licensees": "licensees",
        "/console/subjects/new": "subject-form",
        "/console/peers": "peers",
        "/console/users": "accounts",
        "/console/audit": "audit",
        "/console/kyc": "kyc",
    }
    for username, paths in screens.items():
        page = signed_in(browser, cm, username)
        # The language switch in the header, as a user would use it.
        page.get_by_role("button", name="Français").click()
        page.wait_for_selector("html[lang=fr]")
        for path in paths:
            page.goto(f"{cm.url}{path}")
            text = page.evaluate(VISIBLE_TEXT_JS)
            left = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w in english})
            assert left == [], f"English words on {path}: {left}"
            if path in names:
                shot(page, f"{names[path]}-fr")
                if path in (
                    "/console/alerts",
                    "/console/peers",
                    "/console/audit",
                    "/console/licensees",
                ):
                    page.get_by_role("button", name="English").click()
                    page.wait_for_selector("html[lang=en]")
                    shot(page, f"{names[path]}-en")
                    page.get_by_role("button", name="Français").click()
                    page.wait_for_selector("html[lang=fr]")
        page.context.close()


def test_phone_width_and_keyboard(browser, nodes):
    page = signed_in(browser, nodes["CM"], "ana", viewport=PHONE, locale="fr-FR")
    assert page.locator("html").get_attribute("lang") == "fr"  # from the browser's language
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing wider than the screen
    shot(page, "inbox-phone-fr")
    page.goto(f"{nodes['CM'].url}/console/login")  # signed in: sent on
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Aller au contenu"  # the skip link comes first
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible
    page.context.close()


def test_federated_kyc_hit_then_disclosure_granted_on_the_other_console(browser, nodes):
    cm, cf = nodes["CM"], nodes["CF"]
    with cf.api("analyst") as api:
        created = api.post(
            "/api/v1/subjects",
            json={
                "kind": "person",
                "names": ["Théodore Ngakoutou"],
                "date_of_birth": "1979-04-12",
                "nationality": "CF",
                "reason_category": "smuggling",
                "risk_level": "high",
                "narrative": "Passeur connu sur l'axe Berbérati–Kenzou.",
                "handling": "AMBER",
                "documents": [{"type": "passport", "number": "CF0412779", "country": "CF"}],
            },
        )
        assert created.status_code == 201, created.text
    page = signed_in(browser, cm, "oli")
    page.goto(f"{cm.url}/console/kyc")
    page.get_by_label("Names").fill("Theodore Ngakoutou")
    page.get_by_label("Date of birth").fill("1979-04-12")
    page.get_by_label("Purpose of the check").fill("Contrôle à l'aéroport de Douala")
    page.get_by_role("button", name="Run the check").click()
    page.wait_for_url(re.compile(r"/console/kyc/[0-9a-f-]{36}$"))
    answer = page.locator("#answer-CF")
    # On a loaded machine CF may answer after the check's 5 s: the page then shows the
    # late answer when reopened.
    reload_until(page, lambda: "answered" in answer.locator("h2").inner_text())
    assert "answered" in answer.locator("h2").inner_text()
    hit = answer.locator(".hit").first
    assert hit.locator(".word-strong, .word-possible").count() == 1
    assert "Why it matches:" in hit.inner_text() and hit.locator(".explanation li").count() >= 1
    assert hit.locator("meter").count() == 1
    shot(page, "kyc-check-en")
    hit.get_by_label("Why you need the details").fill("Voyageur au départ pour Anvers")
    hit.get_by_role("button", name="Request disclosure").click()
    page.wait_for_selector("text=The request was sent to the peer.")

    other = signed_in(browser, cf, "cfana")
    other.goto(f"{cf.url}/console/disclosures")
    # The request travels CM -> CF while this page loads.
    reload_until(other, lambda: other.locator("#disclosures tbody a").count())
    other.locator("#disclosures tbody a").first.click()
    for field in ("names", "date_of_birth", "narrative", "documents"):
        other.locator(f"input[name=fields][value={field}]").check()
    shot(other, "disclosure-grant-en")
    other.get_by_role("button", name="Grant").click()
    other.wait_for_selector("text=Your decision was sent to the peer.")
    other.context.close()

    reload_until(page, lambda: page.locator("#details").count(), first=True)
    details = page.locator("#details").inner_text()
    assert "Théodore Ngakoutou" in details and "Berbérati" in details
    assert "passport CF0412779 (CF)" in details
    assert page.get_by_role("heading", name="Details released").inner_text().endswith("TLP:AMBER")
    assert page.locator("#disclosure-status").inner_text() == "Granted"
    shot(page, "disclosure-received-en")
    page.context.close()


def test_the_api_docs_render_from_the_nodes_own_files_under_the_csp(browser, nodes):
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    elsewhere: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith(nodes["CM"].url) else elsewhere.append(r.url)
    )
    page.goto(f"{nodes['CM'].url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # the operations, listed
    assert page.locator(".opblock").count() > 40
    assert refused == [] and elsewhere == []
    context.close()
