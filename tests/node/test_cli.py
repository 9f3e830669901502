"""The ``kpnet`` command, run as a user runs it: a separate process on a data directory.
(Mistakes a user can make are in test_cli_mistakes.py.)"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node.app import create_app
from node.config import load_settings
from node.db.migrate import head_revision
from protocol import verify_card
from tests.node.conftest import init_args

FINGERPRINT = re.compile(r"\b\d{5}(?: \d{5}){5}\b")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory, kpnet) -> tuple[Path, str]:
    """A node made by `kpnet init` (once per module); returns its directory and output."""
    data_dir = tmp_path_factory.mktemp("cli") / "cm-node"
    result = kpnet(*init_args(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir, result.stdout


def test_init_makes_a_private_data_dir_and_prints_the_fingerprint(node_dir, kpnet):
    data_dir, output = node_dir
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "keys") == 0o700
    for key in ("signing.key", "encryption.key"):
        assert mode(data_dir / "keys" / key) == 0o600
    assert mode(data_dir / "config.toml") == 0o600
    database = data_dir / "kpnet.db"
    assert database.is_file()
    assert mode(database) & 0o077 == 0
    for path in data_dir.rglob("*"):
        assert mode(path) & 0o007 == 0, f"{path} is open to others"

    printed = FINGERPRINT.findall(output)
    assert len(printed) == 1, output
    shown = kpnet("fingerprint", "--data-dir", data_dir)
    assert shown.returncode == 0
    assert shown.stdout.strip() == printed[0]


def test_second_init_refuses_and_keeps_the_keys(node_dir, kpnet, user_mistake):
    data_dir, _ = node_dir
    keys = {p.name: p.read_bytes() for p in (data_dir / "keys").iterdir()}
    config = (data_dir / "config.toml").read_text()

    message = user_mistake(kpnet(*init_args(data_dir, "CF")))

    assert "already exists" in message
    assert {p.name: p.read_bytes() for p in (data_dir / "keys").iterdir()} == keys
    assert (data_dir / "config.toml").read_text() == config


def test_card_prints_a_card_that_verifies(node_dir, kpnet):
    data_dir, output = node_dir
    result = kpnet("card", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    card = verify_card(result.stdout, expected_fingerprint=FINGERPRINT.findall(output)[0])
    assert (card.node_id, card.name) == ("CM", "Brigade minière de Bertoua")
    assert card.endpoints == ["https://kpnet.example.cm"]


def test_db_upgrade_prints_the_revision(node_dir, kpnet):
    data_dir, _ = node_dir
    result = kpnet("db", "upgrade", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database at revision {head_revision()}"


def test_db_upgrade_needs_no_keys(node_dir, kpnet):
    """A migration job (Kubernetes) gets the config and the database, not the keys."""
    data_dir, _ = node_dir
    keys, elsewhere = Path(data_dir) / "keys", Path(data_dir) / "keys-elsewhere"
    keys.rename(elsewhere)
    try:
        result = kpnet("db", "upgrade", "--data-dir", data_dir)
    finally:
        elsewhere.rename(keys)  # the node is shared with the module's other tests
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database at revision {head_revision()}"


def test_data_dir_from_the_environment(node_dir, kpnet):
    data_dir, output = node_dir
    result = kpnet("fingerprint", env={"KPNET_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == FINGERPRINT.findall(output)[0]


def test_token_create_list_revoke(node_dir, kpnet):
    data_dir, _ = node_dir
    created = kpnet(
        "token",
        "create",
        "--data-dir",
        data_dir,
        "--role",
        "analyst",
        "--name",
        "analyste Ngono",
        "--expires-days",
        "30",
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("kpn_")
    assert "will not be shown again" in created.stderr
    token_id = re.search(r"token (\d+)", created.stderr).group(1)

    listed = kpnet("token", "list", "--data-dir", data_dir)
    assert listed.returncode == 0
    assert secret not in listed.stdout
    row = next(
        line.split("\t") for line in listed.stdout.splitlines() if line.startswith(f"{token_id}\t")
    )
    assert row[1:4] == ["analyst", "RED", "analyste Ngono"]
    assert secret.startswith(row[4].rstrip("…"))
    assert row[5].startswith("expires ")

    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(load_settings(data_dir))) as client:
        assert client.get("/api/v1/licensees", headers=headers).status_code == 200

        revoked = kpnet("token", "revoke", "--data-dir", data_dir, token_id)
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == f"token {token_id} revoked"

        assert client.get("/api/v1/licensees", headers=headers).status_code == 401
    listed = kpnet("token", "list", "--data-dir", data_dir)
    assert f"{token_id}\tanalyst\tRED\tanalyste Ngono" in listed.stdout
    assert next(
        line for line in listed.stdout.splitlines() if line.startswith(f"{token_id}\t")
    ).endswith("revoked")


def test_peer_agreement_sets_and_resets_a_peers_daily_quotas(node_dir, kpnet, user_mistake):
    data_dir, _ = node_dir
    cf_dir = data_dir.parent / "cf-node"
    made = kpnet(*init_args(cf_dir, "CF"))
    assert made.returncode == 0, made.stderr
    card = cf_dir / "card.json"
    card.write_text(kpnet("card", "--data-dir", cf_dir).stdout)
    fingerprint = FINGERPRINT.findall(made.stdout)[0]
    added = kpnet("peer", "add", "--data-dir", data_dir, card, "--fingerprint", fingerprint)
    assert added.returncode == 0, added.stderr

    def agreement(*options: str) -> dict:
        result = kpnet("peer", "agreement", "--data-dir", data_dir, "CF", *options)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert agreement()["kyc_queries_per_day"] is None  # the node's setting
    changed = agreement("--kyc-queries-per-day", "40", "--disclosure-requests-per-day", "5")
    assert (changed["kyc_queries_per_day"], changed["disclosure_requests_per_day"]) == (40, 5)
    reset = agreement("--kyc-queries-per-day", "default")
    assert (reset["kyc_queries_per_day"], reset["disclosure_requests_per_day"]) == (None, 5)
    message = user_mistake(
        kpnet("peer", "agreement", "--data-dir", data_dir, "CF", "--kyc-queries-per-day", "0")
    )
    assert "kyc_queries_per_day" in message
    assert agreement()["kyc_queries_per_day"] is None


def test_init_on_postgresql(tmp_path, postgres_url, kpnet):
    data_dir = tmp_path / "node"
    created = kpnet(*init_args(data_dir), "--database-url", postgres_url)
    assert created.returncode == 0, created.stderr
    assert not (data_dir / "kpnet.db").exists()
    assert load_settings(data_dir).database_url == postgres_url
    upgraded = kpnet("db", "upgrade", "--data-dir", data_dir)
    assert upgraded.stdout.strip() == f"database at revision {head_revision()}"
    token = kpnet("token", "create", "--data-dir", data_dir, "--role", "auditor", "--name", "a")
    assert token.returncode == 0, token.stderr
    verified = kpnet("audit", "verify", "--data-dir", data_dir)
    assert verified.returncode == 0, verified.stderr
    assert "1 entries verified" in verified.stdout
