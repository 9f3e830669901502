"""Console sign-in: password hashing, lock-out, session cookie, CSRF, roles, sessions."""

from __future__ import annotations

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from node.app import create_app
from node.console.auth import Require
from node.db.models import AuditEntry, ConsoleSession, User
from node.runtime import open_node
from node.services import passwords
from tests.console.conftest import PASSWORD, Console

# -- password hashing --------------------------------------------------------------------


def test_password_hash_is_salted_scrypt_and_verifies():
    first, second = passwords.hash_password(PASSWORD), passwords.hash_password(PASSWORD)
    assert first.startswith("scrypt$10$8$1$")  # cost from the (test-lowered) parameters
    assert first != second  # a salt of its own
    assert passwords.verify_password(PASSWORD, first)
    assert not passwords.verify_password(PASSWORD + "x", first)
    assert not passwords.verify_password(PASSWORD, "scrypt$nonsense")
    assert not passwords.verify_password(PASSWORD, "md5$" + first[7:])
    assert not passwords.verify_password("a" * 10_000, first)


def test_default_cost_is_owasp_minimum_and_old_hashes_are_rehashed(monkeypatch):
    monkeypatch.undo()
    assert (passwords.LOG2_N, passwords.R, passwords.P) == (17, 8, 1)
    assert passwords.needs_rehash("scrypt$10$8$1$salt$hash")
    assert not passwords.needs_rehash("scrypt$17$8$1$salt$hash")


def test_weak_passwords_are_refused():
    for weak, code in (
        ("short", "too_short"),
        ("aaaaaaaaaaaaaaaa", "too_simple"),
        ("x" * 300, "too_long"),
        ("officer1-is-here-2026", "contains_username"),
    ):
        try:
            passwords.check_strength(weak, username="officer1")
        except passwords.WeakPassword as exc:
            assert exc.code == code
        else:
            raise AssertionError(f"{weak!r} accepted")


# -- signing in --------------------------------------------------------------------------


def audit(console: Console, prefix: str = "user.") -> list[tuple[str, str, str | None]]:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            rows = session.execute(
                select(AuditEntry)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.seq)
            ).scalars()
            return [(e.actor, e.action, e.detail.get("reason")) for e in rows]
    finally:
        node.close()


def test_sign_in_sets_a_strict_http_only_session_cookie(console):
    response = console.sign_in("officer1")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("kpnet_session=")
    )
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= flags
    assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
    assert "secure" not in flags  # plain HTTP, and the setting is off
    assert console.get("/console/alerts").status_code == 200
    assert audit(console)[-1] == ("officer1", "user.sign_in", None)


def test_cookie_is_secure_over_https_or_when_the_setting_says_so(console, tmp_path):
    https = TestClient(console.client.app, base_url="https://testserver")
    with https:
        page = https.get("/console/login")
        assert "secure" in page.headers["set-cookie"].lower()
    settings = console.settings.model_copy(update={"console_secure_cookies": True})
    with TestClient(create_app(settings)) as client:
        assert "secure" in client.get("/console/login").headers["set-cookie"].lower()


def test_wrong_password_and_unknown_user_are_refused_alike(console):
    wrong = console.sign_in("officer1", "not the password")
    unknown = console.sign_in("nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        "Wrong user name or password." in wrong.text
        and "Wrong user name or password." in unknown.text
    )
    assert "kpnet_session" not in wrong.headers.get("set-cookie", "")
    assert audit(console)[-2:] == [
        ("officer1", "user.sign_in_failure", "wrong_password"),
        ("nobody", "user.sign_in_failure", "unknown_user"),
    ]


def test_five_failures_lock_the_account_for_fifteen_minutes(console):
    for _ in range(4):
        assert console.sign_in("officer1", "guess").status_code == 401
    locked = console.sign_in("officer1", "guess")
    # The answer is a wrong password's: it does not say that this account is locked.
    assert locked.status_code == 401
    assert "Wrong user name or password." in locked.text
    # Even the right password is refused while locked.
    assert console.sign_in("officer1").status_code == 401
    console.clock.advance(minutes=14)
    assert console.sign_in("officer1").status_code == 401
    console.clock.advance(minutes=2)
    assert console.sign_in("officer1").status_code == 303
    actions = [(actor, action) for actor, action, _ in audit(console)]
    assert actions.count(("officer1", "user.lockout")) == 1
    assert actions[-1] == ("officer1", "user.sign_in")
    # Other accounts were never affected.
    assert console.sign_in("analyst1").status_code == 303


def test_admin_lifts_a_lock_out(console):
    for _ in range(5):
        console.sign_in("officer1", "guess")
    admin = console.as_user("admin1")
    user_id = user_named(console, "officer1").id
    assert admin.post(f"/console/users/{user_id}/unlock").status_code == 303
    assert console.sign_in("officer1").status_code == 303


def test_sign_out_ends_the_session_on_the_server(console):
    console.as_user("officer1")
    cookie = console.client.cookies.get("kpnet_session")
    assert console.post("/console/logout").status_code == 303
    console.client.cookies.set("kpnet_session", cookie, path="/console")
    response = console.get("/console/alerts", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/alerts"


def test_sessions_end_after_being_idle(console):
    console.as_user("officer1")
    console.clock.advance(minutes=119)
    assert console.get("/console/alerts").status_code == 200
    console.clock.advance(minutes=121)
    assert console.get("/console/alerts", follow_redirects=False).status_code == 303


def test_open_redirects_after_sign_in_are_refused(console):
    token = console.csrf_from("/console/login")
    for target, expected in (
        ("/console/subjects", "/console/subjects"),
        ("https://evil.example/", "/console/"),
        ("//evil.example", "/console/"),
    ):
        console.client.cookies.clear()
        token = console.csrf_from("/console/login")
        response = console.client.post(
            "/console/login",
            follow_redirects=False,
            data={
                "username": "officer1",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.headers["location"] == expected


# -- CSRF --------------------------------------------------------------------------------


def test_forms_without_or_with_a_wrong_csrf_token_are_refused(console):
    console.as_user("admin1")
    before = user_count(console)
    form = {
        "username": "newuser",
        "role": "officer",
        "password": "a long pass phrase",
        "confirm_password": "a long pass phrase",
    }
    missing = console.client.post("/console/users", data=form, follow_redirects=False)
    wrong = console.client.post(
        "/console/users", data={**form, "csrf_token": "x" * 43}, follow_redirects=False
    )
    assert missing.status_code == wrong.status_code == 403
    assert "did not come from this console" in missing.text
    assert user_count(console) == before
    # Another session's token is no better.
    other = Console(TestClient(console.client.app), console.settings, console.clock)
    with other.client:
        other.as_user("officer1")
        foreign = other.csrf_from("/console/account")
    assert (
        console.client.post(
            "/console/users", data={**form, "csrf_token": foreign}, follow_redirects=False
        ).status_code
        == 403
    )
    # The right token works.
    assert console.post("/console/users", form).status_code == 303
    assert user_count(console) == before + 1


def test_cross_site_origin_is_refused_even_with_the_token(console):
    console.as_user("officer1")
    response = console.post("/console/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert console.get("/console/alerts").status_code == 200  # still signed in


def test_sign_in_form_needs_its_double_submit_token(console):
    console.client.cookies.clear()
    console.client.get("/console/login")
    response = console.client.post(
        "/console/login",
        follow_redirects=False,
        data={"username": "officer1", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 403
    console.client.cookies.clear()
    response = console.client.post(
        "/console/login",
        follow_redirects=False,
        data={"username": "officer1", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 403


# -- roles -------------------------------------------------------------------------------

CONSOLE_PUBLIC = {
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/static/{name}"),
}


def declared(dependant) -> list[frozenset[str]]:  # type: ignore[no-untyped-def]
    found = []
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Require):
            found.append(dependency.call.roles)
        found.extend(declared(dependency))
    return found


def test_every_console_route_declares_its_roles(console):
    routes = {
        (method, route.path): route
        for route in iter_route_contexts(console.client.app.routes)
        for method in (route.methods or ())
        if route.path.startswith("/console")
    }
    assert len(routes) > 30
    undeclared = {key for key, route in routes.items() if not declared(route.dependant)}
    assert undeclared == CONSOLE_PUBLIC


ADMIN_PAGES = ("/console/users", "/console/users/new", "/console/peers")
READER_PAGES = ("/console/alerts", "/console/licensees", "/console/subjects")
WRITER_PAGES = ("/console/alerts/new", "/console/licensees/new", "/console/import")


def test_each_role_reaches_only_its_pages(shared_console):
    console = shared_console
    expected = {
        "officer1": {
            **dict.fromkeys(READER_PAGES, 200),
            **dict.fromkeys(WRITER_PAGES, 403),
            **dict.fromkeys(ADMIN_PAGES, 403),
            "/console/audit": 403,
        },
        "analyst1": {
            **dict.fromkeys(READER_PAGES, 200),
            **dict.fromkeys(WRITER_PAGES, 200),
            **dict.fromkeys(ADMIN_PAGES, 403),
            "/console/audit": 403,
        },
        "admin1": {
            **dict.fromkeys(READER_PAGES, 403),
            **dict.fromkeys(WRITER_PAGES, 403),
            **dict.fromkeys(ADMIN_PAGES, 200),
            "/console/audit": 403,
        },
        "auditor1": {
            **dict.fromkeys(READER_PAGES, 403),
            **dict.fromkeys(WRITER_PAGES, 403),
            **dict.fromkeys(ADMIN_PAGES, 403),
            "/console/audit": 200,
        },
    }
    for username, pages in expected.items():
        console.as_user(username)
        seen = {path: console.get(path).status_code for path in pages}
        assert seen == pages, username
    forbidden = console.as_user("officer1").get("/console/users")
    assert "Your role does not give access to this page." in forbidden.text


def test_an_officer_cannot_post_to_admin_forms(shared_console):
    console = shared_console.as_user("officer1")
    before = user_count(console)
    response = console.post(
        "/console/users",
        {
            "username": "sneaky",
            "role": "admin",
            "password": "a long pass phrase",
            "confirm_password": "a long pass phrase",
        },
    )
    assert response.status_code == 403
    assert user_count(console) == before


def test_without_a_session_pages_redirect_to_sign_in_and_streams_answer_401(shared_console):
    client = shared_console.client
    client.cookies.clear()
    response = client.get("/console/subjects", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/subjects"
    stream = client.get("/console/alerts/stream", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 401


def test_each_role_starts_on_its_own_page(shared_console):
    for username, start in (
        ("officer1", "/console/alerts"),
        ("admin1", "/console/peers"),
        ("auditor1", "/console/audit"),
    ):
        response = shared_console.as_user(username).get("/console/", follow_redirects=False)
        assert response.headers["location"] == start


# -- accounts ----------------------------------------------------------------------------


def user_named(console: Console, username: str) -> User:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            return session.execute(select(User).where(User.username == username)).scalar_one()
    finally:
        node.close()


def user_count(console: Console) -> int:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            return len(session.execute(select(User)).scalars().all())
    finally:
        node.close()


def test_admin_creates_an_account_whose_user_must_choose_a_password(console):
    admin = console.as_user("admin1")
    response = admin.post(
        "/console/users",
        {
            "username": "Amina.Diallo",
            "full_name": "Amina Diallo",
            "role": "officer",
            "language": "fr",
            "password": "temporary pass 2026",
            "confirm_password": "temporary pass 2026",
        },
    )
    assert response.status_code == 303
    user = user_named(console, "amina.diallo")
    assert (user.role, user.language, user.must_change_password) == ("officer", "fr", True)
    assert not user.password_hash.count(PASSWORD)

    first = console.sign_in("amina.diallo", "temporary pass 2026")
    assert first.headers["location"] == "/console/account/password"
    assert (
        console.get("/console/alerts", follow_redirects=False).headers["location"]
        == "/console/account/password"
    )
    changed = console.post(
        "/console/account/password",
        {
            "current_password": "temporary pass 2026",
            "new_password": "my own secret phrase",
            "confirm_password": "my own secret phrase",
        },
        token_from="/console/account/password",
    )
    assert changed.status_code == 303
    assert console.get("/console/alerts").status_code == 200
    assert ("admin1 (admin)", "user.create", None) in audit(console)
    assert ("amina.diallo (officer)", "user.password_change", None) in audit(console)


def test_account_form_errors_are_shown_next_to_the_fields(console):
    admin = console.as_user("admin1")
    response = admin.post(
        "/console/users",
        {"username": "x", "role": "officer", "password": "short", "confirm_password": "short"},
    )
    assert response.status_code == 422
    assert 'id="password-error"' in response.text and "at least 12 characters" in response.text
    response = admin.post(
        "/console/users",
        {
            "username": "officer1",
            "role": "officer",
            "password": "a long pass phrase",
            "confirm_password": "a long pass phrase",
        },
    )
    assert 'id="username-error"' in response.text and "already taken" in response.text


def test_disabling_an_account_signs_it_out_and_keeps_one_admin(console):
    officer = Console(TestClient(console.client.app), console.settings, console.clock)
    with officer.client:
        officer.as_user("officer1")
        admin = console.as_user("admin1")
        officer_id, admin_id = user_named(console, "officer1").id, user_named(console, "admin1").id
        assert admin.post(f"/console/users/{officer_id}/disable").status_code == 303
        assert officer.get("/console/alerts", follow_redirects=False).status_code == 303
        assert officer.sign_in("officer1").status_code == 403
        # The only admin can neither disable nor demote themself.
        assert admin.post(f"/console/users/{admin_id}/disable").status_code == 422
        demote = admin.post(f"/console/users/{admin_id}/role", {"role": "officer"})
        assert demote.status_code == 422
        assert "at least one active administrator" in demote.text
        assert user_named(console, "admin1").role == "admin"
    assert ("admin1 (admin)", "user.disable", None) in audit(console)


def test_reset_password_ends_sessions_and_forces_a_change(console):
    admin = console.as_user("admin1")
    officer_id = user_named(console, "officer1").id
    response = admin.post(
        f"/console/users/{officer_id}/password",
        {"password": "reset by the admin", "confirm_password": "reset by the admin"},
    )
    assert response.status_code == 303
    assert console.sign_in("officer1").status_code == 401  # the old password is gone
    assert (
        console.sign_in("officer1", "reset by the admin").headers["location"]
        == "/console/account/password"
    )
    admin_id = user_named(console, "admin1").id
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            sessions = session.execute(select(ConsoleSession)).scalars().all()
    finally:
        node.close()
    assert {s.user_id for s in sessions} <= {officer_id, admin_id}


def test_kpnet_user_create_reads_the_password_file(tmp_path, kpnet_cli):
    from tests.conftest import create_node

    settings = create_node(tmp_path / "node")
    secret = tmp_path / "password.txt"
    secret.write_text("first admin pass phrase\n")
    result = kpnet_cli(
        "user",
        "create",
        "chef",
        "--role",
        "admin",
        "--password-file",
        secret,
        "--data-dir",
        settings.data_dir,
    )
    assert result.returncode == 0, result.stderr
    assert "user chef (admin) created" in result.stdout
    assert passwords.verify_password(
        "first admin pass phrase", user_named_in(settings, "chef").password_hash
    )
    again = kpnet_cli(
        "user",
        "create",
        "chef",
        "--role",
        "admin",
        "--password-file",
        secret,
        "--data-dir",
        settings.data_dir,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = tmp_path / "weak.txt"
    weak.write_text("short\n")
    refused = kpnet_cli(
        "user",
        "create",
        "other",
        "--role",
        "officer",
        "--password-file",
        weak,
        "--data-dir",
        settings.data_dir,
    )
    assert refused.returncode == 1 and "at least 12 characters" in refused.stderr
    no_tty = kpnet_cli(
        "user", "create", "third", "--role", "officer", "--data-dir", settings.data_dir
    )
    assert no_tty.returncode == 1 and "--password-file" in no_tty.stderr
    listed = kpnet_cli("user", "list", "--data-dir", settings.data_dir)
    assert listed.stdout.split("\t")[:3] == ["chef", "admin", "active"]


def user_named_in(settings, username):  # type: ignore[no-untyped-def]
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            return session.execute(select(User).where(User.username == username)).scalar_one()
    finally:
        node.close()
