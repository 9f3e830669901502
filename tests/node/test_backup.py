"""`kpnet backup` and `kpnet restore`: a node with records, peers, alerts, a rotated key
and leased outbox messages comes back row for row, with the same keys and an audit
chain that verifies, on SQLite and PostgreSQL and from one to the other; the archive
holds no row, config value or key in clear; a damaged or altered archive (even by
someone who knows the passphrase), a wrong passphrase, an archive of another format or
a non-empty target is refused with nothing written. (The delivery of pending messages
by a restored node is in tests/federation/test_backup_restore.py.)"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from nacl.pwhash import argon2id
from sqlalchemy import Engine, MetaData, select, text, update
from sqlalchemy.orm import Session

from node.app import create_app
from node.config import Settings, load_settings
from node.db import make_engine
from node.db.migrate import head_revision
from node.db.models import AuditEntry, OutboxMessage, Peer
from node.keystore import read_key_files
from node.runtime import open_node
from node.services import backup, backup_crypto, backup_restore
from node.services.actors import Actor
from node.services.audit import verify_chain
from node.services.backup import BackupError, create_backup
from node.services.backup_restore import restore_archive
from node.services.endpoint_policy import EndpointPolicy
from node.services.peers import PeerRegistry
from node.services.rotation import rotate_keys
from node.services.tokens import TokenService
from tests.conftest import create_node, fresh_postgres_database, issue_tokens

PASSPHRASE = "Douala-Bertoua 2026 cellule KP"
NARRATIVE = "Vu à Garoua-Boulaï le 3 mars avec deux colis de pierres non déclarées"
ADMIN = Actor("test", "admin")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# Rows a restore changes on purpose (see node.services.backup.fresh_start).
FRESH_START = {"outbox": ("leased_until", "leased_by"), "peers": ("next_attempt_at",)}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def kpnet(
    kpnet_process: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI tests run ``kpnet`` as a process: it derives keys at their real cost,
    which ``quick_key_derivation`` lowers in this process."""
    return kpnet_process


def derive_keys_cheaply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "KDF_OPSLIMIT", argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(backup, "KDF_MEMLIMIT", 8 * 1024 * 1024)


@pytest.fixture(autouse=True)
def quick_key_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process backups derive keys cheaply (the CLI tests keep the real cost)."""
    derive_keys_cheaply(monkeypatch)


def populate(settings: Settings, tmp_path: Path) -> None:
    """Records with history, a peer, alerts queued to it (one leased by a sender that
    died), a backed-off peer and a rotated key (so a retired key file exists)."""
    tokens = issue_tokens(settings)
    peer = create_node(tmp_path / "peer-cf", "CF", port=8199)
    peer_node = open_node(peer, migrate=False)
    peer_fingerprint = peer_node.identity.fingerprint
    peer_node.close()
    runtime = open_node(settings, migrate=False)
    try:
        with runtime.sessions() as session:
            PeerRegistry(
                session,
                ADMIN,
                runtime.now(),
                own_node_id="CM",
                endpoints=EndpointPolicy.from_settings(settings),
            ).add(peer.card_path.read_bytes(), fingerprint=peer_fingerprint)
            session.commit()
    finally:
        runtime.close()
    quiet = settings.model_copy(update={"sender_enabled": False})
    with TestClient(create_app(quiet)) as client:
        analyst = {"Authorization": f"Bearer {tokens['analyst']}"}
        for i in range(3):
            made = client.post(
                "/api/v1/licensees",
                headers=analyst,
                json={
                    "licence_number": f"CM-BA-00{i}",
                    "licence_type": "buying_house",
                    "legal_name": f"Comptoir Étoile n°{i} SARL",
                    "trade_names": ["Étoile"],
                    "persons": [{"name": "Jean-Pierre Mbéki", "role": "director"}],
                    "issued_on": "2024-01-15",
                    "region": "Est",
                },
            )
            assert made.status_code == 201, made.text
        changed = client.post(
            f"/api/v1/licensees/{made.json()['ref']}/status",
            headers=analyst,
            json={"status": "suspended", "reason": "enquête en cours"},
        )
        assert changed.status_code == 200, changed.text
        subject = client.post(
            "/api/v1/subjects",
            headers=analyst,
            json={
                "kind": "person",
                "names": ["Amadou Bello"],
                "aliases": ["Le Diamantaire"],
                "reason_category": "smuggling",
                "nationality": "CM",
                "narrative": NARRATIVE,
                "documents": [{"type": "passport", "number": "AA123456"}],
            },
        )
        assert subject.status_code == 201, subject.text
        for title in ("Colis saisi à Garoua-Boulaï", "Faux certificat KP"):
            sent = client.post(
                "/api/v1/alerts",
                headers=analyst,
                json={
                    "category": "seizure",
                    "severity": "urgent",
                    "title": title,
                    "body": "Pierres brutes sans certificat",
                    "handling": "AMBER",
                    "place": {"country": "CM", "locality": "Garoua-Boulaï"}
                    if "Colis" in title
                    else None,
                },
            )
            assert sent.status_code == 201, sent.text
    runtime = open_node(settings, migrate=False)
    try:
        rotate_keys(runtime, ADMIN, runtime.now())
        with runtime.sessions() as session:
            first = (
                session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().first()
            )
            assert first is not None
            first.leased_until = runtime.now() + timedelta(minutes=5)
            first.leased_by = "CM-deadbeef"
            first.attempts = 1
            session.execute(
                update(Peer).values(
                    next_attempt_at=runtime.now() + timedelta(hours=1), consecutive_failures=4
                )
            )
            session.commit()
    finally:
        runtime.close()


@pytest.fixture
def source(tmp_path: Path, database_url: str | None) -> Settings:
    """A populated node, on SQLite or PostgreSQL."""
    settings = create_node(tmp_path / "cm", database_url=database_url)
    populate(settings, tmp_path)
    return load_settings(settings.data_dir)


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Settings:
    settings = create_node(tmp_path / "cm")
    populate(settings, tmp_path)
    return load_settings(settings.data_dir)


@pytest.fixture
def target_url(database_url: str | None) -> Iterator[str | None]:
    """Where a test restores: SQLite in the new data dir, or another empty PostgreSQL
    database on the same server as the source's."""
    if database_url is None:
        yield None
    else:
        with fresh_postgres_database() as url:
            yield url


def make_backup(settings: Settings, out: Path, passphrase: str = PASSPHRASE):  # type: ignore[no-untyped-def]
    return create_backup(settings, out, passphrase=lambda: passphrase, now=NOW, actor="test")


def restore(
    archive: Path, data_dir: Path, database_url: str | None = None, passphrase: str = PASSPHRASE
):  # type: ignore[no-untyped-def]
    return restore_archive(
        archive,
        data_dir,
        passphrase=lambda: passphrase,
        now=NOW,
        actor="test",
        database_url=database_url,
    )


def all_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (but Alembic's), in primary-key order."""
    engine = make_engine(url)
    try:
        metadata = MetaData()
        with engine.connect() as connection:
            metadata.reflect(bind=connection)
            return {
                table.name: [
                    dict(row._mapping)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in metadata.sorted_tables
                if table.name != "alembic_version"
            }
    finally:
        engine.dispose()


def audit_report(settings: Settings):  # type: ignore[no-untyped-def]
    runtime = open_node(settings, migrate=False)
    try:
        with runtime.sessions() as session:
            return verify_chain(session)
    finally:
        runtime.close()


def table_names(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            metadata = MetaData()
            metadata.reflect(bind=connection)
            return sorted(metadata.tables)
    finally:
        engine.dispose()


# -- round trips --------------------------------------------------------------------------


def test_round_trip_restores_every_row_the_keys_and_a_verifying_audit_chain(
    source: Settings, target_url: str | None, tmp_path: Path
):
    archive = tmp_path / "cm-backup.tar.gz"
    report = make_backup(source, archive)
    assert mode(archive) == 0o600
    before = all_rows(source.sqlalchemy_url)
    assert report.rows == {name: len(rows) for name, rows in before.items()}
    assert all(
        before[name]
        for name in (
            "licensees",
            "subjects",
            "record_changes",
            "alerts",
            "outbox",
            "peers",
            "match_keys",
            "audit_log",
        )
    )

    restored = restore(archive, tmp_path / "restored", target_url)

    settings = load_settings(tmp_path / "restored")
    assert settings.database_url == target_url
    assert restored.rows == report.rows
    after = all_rows(settings.sqlalchemy_url)
    assert after.keys() == before.keys()
    for name, rows in before.items():
        if name == "audit_log":
            assert after[name][:-1] == rows
            assert after[name][-1]["action"] == "backup.restored"
            continue
        if name == "audit_head":  # moved on by that entry
            continue
        skipped = FRESH_START.get(name, ())
        assert [{k: v for k, v in r.items() if k not in skipped} for r in after[name]] == [
            {k: v for k, v in r.items() if k not in skipped} for r in rows
        ], name
    chain = audit_report(settings)
    assert chain.ok and chain.entries == len(before["audit_log"]) + 1
    assert [e["action"] for e in before["audit_log"]][-1] == "backup.started"

    assert read_key_files(settings.keys_dir) == read_key_files(source.keys_dir)
    assert any(name.endswith(".retired") for name in read_key_files(settings.keys_dir))
    assert settings.card_path.read_bytes() == source.card_path.read_bytes()
    original, copy = open_node(source, migrate=False), open_node(settings, migrate=False)
    try:
        assert copy.identity.fingerprint == original.identity.fingerprint == restored.fingerprint
    finally:
        original.close()
        copy.close()
    assert mode(settings.data_dir) == 0o700
    assert mode(settings.keys_dir) == 0o700
    for key_file in settings.keys_dir.iterdir():
        assert mode(key_file) == 0o600
    assert mode(settings.data_dir / "config.toml") == 0o600


def test_restored_node_sends_at_once_and_allocates_new_ids(
    source: Settings, target_url: str | None, tmp_path: Path
):
    archive = tmp_path / "cm.tar.gz"
    make_backup(source, archive)
    restore(archive, tmp_path / "restored", target_url)

    runtime = open_node(load_settings(tmp_path / "restored"))
    try:
        with runtime.sessions() as session:
            outbox = session.execute(select(OutboxMessage)).scalars().all()
            assert outbox and all(m.status == "pending" for m in outbox)
            assert all(m.leased_until is None and m.leased_by is None for m in outbox)
            assert max(m.attempts for m in outbox) == 1  # history kept, lease dropped
            peer = session.execute(select(Peer)).scalar_one()
            assert peer.next_attempt_at is None
            # Explicit ids were inserted: new rows still get fresh ones (PostgreSQL
            # sequences were moved past them).
            largest = session.execute(text("SELECT max(id) FROM api_tokens")).scalar_one()
            row, _secret = TokenService(session, ADMIN, runtime.now()).create(
                name="after-restore", role="officer"
            )
            session.commit()
            assert row.id == largest + 1
            last = (
                session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()))
                .scalars()
                .first()
            )
            assert last is not None and last.action == "token.create"
        with runtime.sessions() as session:
            assert verify_chain(session).ok
    finally:
        runtime.close()


@pytest.mark.postgres
@pytest.mark.parametrize("direction", ["sqlite-to-postgres", "postgres-to-sqlite"])
def test_cli_restores_across_databases(tmp_path: Path, postgres_url: str, kpnet, direction):
    """The commands as an operator runs them, with the real key-derivation cost."""
    source_url = postgres_url if direction == "postgres-to-sqlite" else None
    settings = create_node(tmp_path / "cm", database_url=source_url)
    populate(settings, tmp_path)
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    archive = tmp_path / "cm.tar.gz"

    made = kpnet(
        "backup", "--data-dir", settings.data_dir, archive, "--passphrase-file", passphrase_file
    )
    assert made.returncode == 0, made.stderr
    assert PASSPHRASE not in made.stdout + made.stderr
    assert "node CM backed up to" in made.stdout

    if direction == "sqlite-to-postgres":
        with fresh_postgres_database() as target:
            restored_dir = tmp_path / "restored"
            done = kpnet(
                "restore",
                archive,
                "--data-dir",
                restored_dir,
                "--database-url",
                target,
                env={"KPNET_BACKUP_PASSPHRASE": PASSPHRASE},
            )
            assert done.returncode == 0, done.stderr
            assert load_settings(restored_dir).database_url == target
            check_restored_cli(kpnet, settings, restored_dir)
    else:
        restored_dir = tmp_path / "restored"
        target = f"sqlite:///{tmp_path / 'elsewhere.db'}"
        done = kpnet(
            "restore",
            archive,
            "--data-dir",
            restored_dir,
            "--database-url",
            target,
            env={"KPNET_BACKUP_PASSPHRASE": PASSPHRASE},
        )
        assert done.returncode == 0, done.stderr
        assert load_settings(restored_dir).sqlalchemy_url == target
        check_restored_cli(kpnet, settings, restored_dir)
    assert PASSPHRASE not in done.stdout + done.stderr


def check_restored_cli(kpnet, source: Settings, restored_dir: Path) -> None:  # type: ignore[no-untyped-def]
    verified = kpnet("audit", "verify", "--data-dir", restored_dir)
    assert verified.returncode == 0, verified.stderr
    assert "audit log intact" in verified.stdout
    assert (
        kpnet("fingerprint", "--data-dir", restored_dir).stdout
        == kpnet("fingerprint", "--data-dir", source.data_dir).stdout
    )
    before = all_rows(source.sqlalchemy_url)
    after = all_rows(load_settings(restored_dir).sqlalchemy_url)
    counts = {name: len(rows) for name, rows in before.items()}
    counts["audit_log"] += 1  # backup.restored
    assert {name: len(rows) for name, rows in after.items()} == counts


def test_a_sqlite_url_of_another_directory_is_not_restored_into(
    sqlite_source: Settings, tmp_path: Path
):
    """A config naming its SQLite file explicitly would point the restored node at the
    old node's file: the restored node gets its own file in its own directory."""
    config = sqlite_source.data_dir / "config.toml"
    config.write_text(config.read_text() + f'database_url = "{sqlite_source.sqlalchemy_url}"\n')
    archive = tmp_path / "cm.tar.gz"
    make_backup(load_settings(sqlite_source.data_dir), archive)

    restore(archive, tmp_path / "restored")

    settings = load_settings(tmp_path / "restored")
    assert settings.database_url is None
    assert (tmp_path / "restored" / "kpnet.db").is_file()


# -- refusals -----------------------------------------------------------------------------


def rewrite(archive: Path, out: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """A copy of ``archive`` with members changed (or dropped when ``change`` gives None)."""
    with tarfile.open(archive, "r:gz") as original, tarfile.open(out, "w:gz") as copy:
        for info in original:
            stream = original.extractfile(info)
            assert stream is not None
            data = change(info.name, stream.read())
            if data is not None:
                info.size = len(data)
                copy.addfile(info, io.BytesIO(data))
    return out


def flip_a_byte(name: str, data: bytes) -> bytes:
    """One bit of the subjects' ciphertext changed, in its middle."""
    if name != "db/subjects.jsonl.enc":
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def forge_manifest(name: str, data: bytes, members: dict[str, bytes]) -> bytes:
    """Alter the ciphertext and fix its checksum in the manifest, as a careful forger
    without the passphrase would."""
    if name == "manifest.json":
        manifest = json.loads(data)
        for member in manifest["members"]:
            if member["name"] == "db/subjects.jsonl.enc":
                forged = flip_a_byte(member["name"], members[member["name"]])
                member["size"], member["sha256"] = len(forged), hashlib.sha256(forged).hexdigest()
        return json.dumps(manifest, indent=2).encode()
    return flip_a_byte(name, data)


def subkeys(manifest: dict[str, Any], passphrase: str = PASSPHRASE):  # type: ignore[no-untyped-def]
    params = manifest["encryption"]
    return backup_crypto.derive_keys(
        passphrase, base64.b64decode(params["salt"]), params["opslimit"], params["memlimit"]
    )


def plaintext(archive: Path, passphrase: str = PASSPHRASE) -> dict[str, bytes]:
    """Every member of the archive, decrypted (the manifest, its MAC and the card as
    they are)."""
    members = contents(archive)
    manifest = json.loads(members["manifest.json"])
    keys = subkeys(manifest, passphrase)
    opened = {}
    for name, data in members.items():
        if name in ("manifest.json", "manifest.mac", "card.json"):
            opened[name] = data
            continue
        key = keys.keys if name == "keys.enc" else keys.data
        with backup_crypto.unsealed_reader(
            io.BytesIO(data), key, name, manifest["encryption"]["chunk_bytes"]
        ) as plain:
            opened[name] = plain.read()
    return opened


def forge(archive: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """A copy of ``archive`` with members changed by ``change``, and the manifest's
    checksums and MAC made to match, as someone who knows the passphrase could."""
    members = contents(archive)
    change(members)
    manifest = json.loads(members["manifest.json"])
    for member in manifest["members"]:
        data = members[member["name"]]
        member["size"], member["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
    members["manifest.mac"] = (
        backup_crypto.manifest_mac(subkeys(manifest).mac, members["manifest.json"]).encode() + b"\n"
    )
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive of a populated SQLite node, made once: the tests given it only read
    it (each alters a copy of its own)."""
    base = tmp_path_factory.mktemp("archive")
    with pytest.MonkeyPatch.context() as monkeypatch:
        derive_keys_cheaply(monkeypatch)
        settings = create_node(base / "cm")
        populate(settings, base)
        path = base / "cm.tar.gz"
        make_backup(load_settings(settings.data_dir), path)
    return path


def contents(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "damage",
    [
        "altered byte",
        "truncated member",
        "missing member",
        "truncated",
        "not a backup",
        "forged manifest",
    ],
)
def test_damaged_or_altered_archive_is_refused_and_nothing_is_written(
    archive: Path, tmp_path: Path, damage
):
    bad = tmp_path / "bad.tar.gz"
    if damage == "altered byte":
        rewrite(archive, bad, flip_a_byte)
        expected = "db/subjects.jsonl.enc does not match its checksum"
    elif damage == "truncated member":
        rewrite(
            archive, bad, lambda name, data: data[:-20] if name == "db/outbox.jsonl.enc" else data
        )
        expected = "db/outbox.jsonl.enc does not match its checksum"
    elif damage == "missing member":
        rewrite(archive, bad, lambda name, data: None if name == "db/outbox.jsonl.enc" else data)
        expected = "damaged or was altered"
    elif damage == "truncated":
        data = archive.read_bytes()
        bad.write_bytes(data[: len(data) * 2 // 3])
        expected = "damaged or was altered"
    elif damage == "not a backup":
        bad.write_bytes(b"\x00" * 4096)
        expected = "is not a kpnet backup"
    else:
        members = contents(archive)
        rewrite(archive, bad, lambda name, data: forge_manifest(name, data, members))
        expected = "its manifest does not match its authentication code"
    asked: list[bool] = []

    with pytest.raises(BackupError, match=expected) as refused:
        restore_archive(
            bad,
            tmp_path / "restored",
            now=NOW,
            actor="test",
            passphrase=lambda: asked.append(True) or PASSPHRASE,
        )

    if damage != "not a backup":
        assert "nothing was written" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "restored").exists()
    assert asked == ([True] if damage == "forged manifest" else [])  # checked before asking


def test_wrong_passphrase_is_refused_and_nothing_is_written(
    source: Settings, target_url: str | None, tmp_path: Path
):
    archive = tmp_path / "cm.tar.gz"
    make_backup(source, archive)
    with pytest.raises(BackupError, match=r"wrong passphrase.*nothing was written"):
        restore(archive, tmp_path / "restored", target_url, passphrase="Douala-Bertoua 2025")
    assert not (tmp_path / "restored").exists()
    if target_url is not None:
        assert table_names(target_url) == []


@pytest.mark.parametrize("damage", ["final chunk cut off", "one byte changed", "tables swapped"])
def test_ciphertext_altered_by_a_passphrase_holder_is_refused(
    source: Settings,
    target_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
):
    """Checksums and MAC redone to match: decryption itself refuses the member, once the
    schema is made and loading has begun; what was made is removed."""
    monkeypatch.setattr(backup, "CHUNK_BYTES", 256)  # many chunks per table
    archive = tmp_path / "cm.tar.gz"
    make_backup(source, archive)
    header, block = 24, 256 + 17
    victim = "db/audit_log.jsonl.enc"

    def change(members: dict[str, bytes]) -> None:
        data = members[victim]
        assert len(data) > header + 3 * block
        if damage == "final chunk cut off":
            members[victim] = data[: header + 2 * block]
        elif damage == "one byte changed":
            members[victim] = data[:-5] + bytes([data[-5] ^ 0x80]) + data[-4:]
        else:
            other = "db/subjects.jsonl.enc"
            members[victim], members[other] = members[other], members[victim]

    bad = forge(archive, tmp_path / "forged.tar.gz", change)
    reason = {"final chunk cut off": "it is cut short, before its final chunk"}.get(
        damage, "a chunk does not decrypt"
    )
    with pytest.raises(
        BackupError,
        match=rf"damaged or was altered \(db/\w+\.jsonl\.enc: "
        rf"{reason}\); nothing was written",
    ) as refused:
        restore(bad, tmp_path / "restored", target_url)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "restored").exists()
    if target_url is not None:
        assert table_names(target_url) == []


@pytest.mark.parametrize("version", [1, 3, "2", None])
def test_older_or_unknown_format_is_refused_in_one_line(
    archive: Path, tmp_path: Path, version: Any
):
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["format_version"] = version
        return json.dumps(manifest).encode()

    other = rewrite(archive, tmp_path / "other.tar.gz", change)
    asked: list[bool] = []
    with pytest.raises(BackupError) as refused:
        restore_archive(
            other,
            tmp_path / "restored",
            now=NOW,
            actor="test",
            passphrase=lambda: asked.append(True) or PASSPHRASE,
        )
    message = str(refused.value)
    assert "\n" not in message
    assert f"is in backup format {version if version == 1 else repr(version)}" in message
    if version == 1:
        assert "no longer restores" in message
        assert "restore it with a kpnet that reads format 1, then back up again" in message
    else:
        assert "does not know (it reads format 2)" in message
    assert asked == []
    assert not (tmp_path / "restored").exists()


def test_non_empty_targets_are_refused(source: Settings, target_url: str | None, tmp_path: Path):
    archive = tmp_path / "cm.tar.gz"
    make_backup(source, archive)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(BackupError, match="is not empty; restore into a new or empty directory"):
        restore(archive, occupied)
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]

    # The source's own database is not empty.
    before = all_rows(source.sqlalchemy_url)
    with pytest.raises(BackupError, match=r"database .* is not empty \(\d+ tables\)"):
        restore(archive, tmp_path / "restored", source.sqlalchemy_url)
    assert not (tmp_path / "restored").exists()
    assert all_rows(source.sqlalchemy_url) == before

    # So is a PostgreSQL node's database when the archive is restored without
    # --database-url: its configured database is still the source's.
    if source.database_url:
        with pytest.raises(BackupError, match="is not empty"):
            restore(archive, tmp_path / "restored")
        assert not (tmp_path / "restored").exists()

    # An empty directory is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(archive, empty, target_url)
    assert (empty / "keys" / "signing.key").is_file()


def test_database_url_overridden_by_the_environment_is_refused(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The node would run on KPNET_DATABASE_URL, not on the database restored into."""
    monkeypatch.setenv("KPNET_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(BackupError, match="KPNET_DATABASE_URL is set"):
        restore(archive, tmp_path / "restored", f"sqlite:///{tmp_path / 'restored.db'}")
    assert not (tmp_path / "restored").exists()


def test_failed_load_leaves_nothing_behind(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def broken(table: str, row: dict[str, Any]) -> dict[str, Any]:
        if table == "outbox":
            raise RuntimeError("disk full")
        return row

    monkeypatch.setattr(backup_restore, "fresh_start", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        restore(archive, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


@pytest.mark.postgres
def test_failed_load_into_postgres_drops_what_it_made(
    archive: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(backup_restore, "fresh_start", lambda table, row: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        restore(archive, tmp_path / "restored", postgres_url)
    assert table_names(postgres_url) == []
    assert not (tmp_path / "restored").exists()


# -- the command line ---------------------------------------------------------------------


def test_cli_round_trip_and_mistakes(sqlite_source: Settings, tmp_path: Path, kpnet, user_mistake):
    data_dir = sqlite_source.data_dir
    archive = tmp_path / "cm.tar.gz"
    env = {"KPNET_BACKUP_PASSPHRASE": PASSPHRASE}

    short = user_mistake(
        kpnet("backup", "--data-dir", data_dir, archive, env={"KPNET_BACKUP_PASSPHRASE": "short"})
    )
    assert "at least 12 characters" in short
    assert not archive.exists()

    passphrase_file = tmp_path / "passphrase.txt"
    passphrase_file.write_text(PASSPHRASE + "\r\n")  # typed in a Windows editor
    made = kpnet("backup", "--data-dir", data_dir, archive, "--passphrase-file", passphrase_file)
    assert made.returncode == 0, made.stderr
    assert mode(archive) == 0o600
    again = user_mistake(kpnet("backup", "--data-dir", data_dir, archive, env=env))
    assert "already exists" in again

    restored = tmp_path / "restored"
    wrong = user_mistake(
        kpnet(
            "restore",
            archive,
            "--data-dir",
            restored,
            env={"KPNET_BACKUP_PASSPHRASE": "Douala-Bertoua 2025"},
        )
    )
    assert wrong.startswith("error: wrong passphrase")
    assert not restored.exists()

    altered = rewrite(archive, tmp_path / "altered.tar.gz", flip_a_byte)
    refused = user_mistake(kpnet("restore", altered, "--data-dir", restored, env=env))
    assert "altered" in refused and "nothing was written" in refused
    missing = user_mistake(
        kpnet("restore", tmp_path / "nope.tar.gz", "--data-dir", restored, env=env)
    )
    assert "no archive at" in missing
    assert not restored.exists()

    done = kpnet("restore", archive, "--data-dir", restored, env=env)
    assert done.returncode == 0, done.stderr
    assert "node CM restored" in done.stdout
    fingerprint = kpnet("fingerprint", "--data-dir", data_dir).stdout.strip()
    assert f"Fingerprint: {fingerprint}" in done.stdout
    verified = kpnet("audit", "verify", "--data-dir", restored)
    assert verified.returncode == 0, verified.stderr

    occupied = user_mistake(kpnet("restore", archive, "--data-dir", restored, env=env))
    assert "is not empty" in occupied


def test_passphrase_is_asked_twice_when_backing_up(sqlite_source: Settings, tmp_path: Path):
    """Without a file or the variable, the passphrase is typed (hidden), twice."""
    import subprocess

    from tests.node.conftest import KPNET, cli_env

    archive = tmp_path / "typed.tar.gz"
    typed = subprocess.run(
        [str(KPNET), "backup", "--data-dir", str(sqlite_source.data_dir), str(archive)],
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        check=False,
    )
    assert typed.returncode == 0, typed.stderr
    assert PASSPHRASE not in typed.stdout + typed.stderr
    assert "Backup passphrase" in typed.stderr
    restored = restore(archive, tmp_path / "restored")
    assert restored.node_id == "CM"


def test_archive_layout_and_manifest(archive: Path):
    members = contents(archive)
    names = list(members)
    assert names[:5] == [
        "manifest.json",
        "manifest.mac",
        "config.toml.enc",
        "card.json",
        "keys.enc",
    ]
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "kpnet-backup" and manifest["format_version"] == 2
    assert manifest["node_id"] == "CM"
    assert manifest["database"]["alembic_revision"] == head_revision()
    tables = [t["name"] for t in manifest["database"]["tables"]]
    # Parents before children, so rows load with foreign keys on.
    assert tables.index("alerts") < tables.index("outbox")
    assert tables.index("licensees") < tables.index("licence_status_changes")
    assert names[5:] == [f"db/{t}.jsonl.enc" for t in tables]
    encryption = manifest["encryption"]
    assert encryption["kdf"] == "argon2id"
    assert encryption["cipher"] == "xchacha20poly1305-secretstream"
    assert encryption["chunk_bytes"] == 64 * 1024
    assert encryption["clear_members"] == ["card.json"]
    assert members["card.json"] == (archive.parent / "cm" / "card.json").read_bytes()
    # Each checksum is of the bytes stored, that is of the ciphertext.
    for member in manifest["members"]:
        data = members[member["name"]]
        assert (member["size"], member["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert date.fromisoformat(manifest["created_at"][:10]) == NOW.date()


def test_backup_of_a_running_sqlite_node_does_not_hold_up_writers(
    sqlite_source: Settings, tmp_path: Path
):
    """Backing up a SQLite node takes no write lock during the dump: a writer commits
    while a (slow) dump's snapshot is open, and the archive holds the state at its start."""
    written: list[int] = []

    def slow_progress(phase: str, done: int, total: int) -> None:
        if phase == "dump" and not written:
            engine: Engine = make_engine(sqlite_source.sqlalchemy_url)
            try:
                with Session(engine) as session:
                    TokenService(session, ADMIN, NOW).create(name="during", role="officer")
                    session.commit()
                    written.append(1)
            finally:
                engine.dispose()

    archive = tmp_path / "during.tar.gz"
    report = create_backup(
        sqlite_source,
        archive,
        passphrase=lambda: PASSPHRASE,
        now=NOW,
        actor="test",
        progress=slow_progress,
    )
    assert written
    dump = plaintext(archive)["db/api_tokens.jsonl.enc"]
    tokens = [json.loads(line) for line in dump.splitlines()]
    assert len(tokens) == report.rows["api_tokens"] == 4  # one per role, not "during"


def test_archive_holds_nothing_secret_in_clear(sqlite_source: Settings, tmp_path: Path):
    """Names, narratives, token hashes, config secrets and keys appear in the archive's
    plaintext, and nowhere in its bytes, gzip-decompressed or not."""
    config = sqlite_source.data_dir / "config.toml"
    metrics_token = "metrics-0123456789abcdef"
    config.write_text(config.read_text() + f'metrics_token = "{metrics_token}"\n')
    settings = load_settings(sqlite_source.data_dir)
    archive = tmp_path / "cm.tar.gz"
    make_backup(settings, archive)

    rows = all_rows(settings.sqlalchemy_url)
    secrets = [
        NARRATIVE,
        "Amadou Bello",
        "Le Diamantaire",
        "AA123456",
        "Jean-Pierre Mbéki",
        "Comptoir Étoile",
        "Colis saisi à Garoua-Boulaï",
        "enquête en cours",
        metrics_token,
    ]
    secrets += [token["token_hash"] for token in rows["api_tokens"]]
    assert rows["api_tokens"]
    assert all(len(token["token_hash"]) >= 32 for token in rows["api_tokens"])
    assert rows["subjects"][0]["narrative"] == NARRATIVE
    needles = [secret.encode("utf-8") for secret in secrets]
    key_files = read_key_files(settings.keys_dir)
    needles += [base64.b64encode(key) for key in key_files.values()]

    opened = b"".join(plaintext(archive).values())
    assert all(needle in opened for needle in needles)  # the test looks for what is there
    needles += list(key_files.values())
    stored = archive.read_bytes()
    tar = gzip.decompress(stored)
    members = contents(archive)
    for needle in needles:
        assert needle not in stored and needle not in tar
        assert all(needle not in data for data in members.values())
    assert not members["config.toml.enc"].startswith(b"#")

    restore(archive, tmp_path / "restored")
    assert load_settings(tmp_path / "restored").metrics_token == metrics_token


def test_round_trip_with_many_small_chunks(
    sqlite_source: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Rows spread over chunk boundaries (and lines over chunks) come back whole."""
    monkeypatch.setattr(backup, "CHUNK_BYTES", 256)
    archive = tmp_path / "cm.tar.gz"
    made = make_backup(sqlite_source, archive)
    assert json.loads(contents(archive)["manifest.json"])["encryption"]["chunk_bytes"] == 256
    before = all_rows(sqlite_source.sqlalchemy_url)
    restored = restore(archive, tmp_path / "restored")
    after = all_rows(load_settings(tmp_path / "restored").sqlalchemy_url)
    assert restored.rows == made.rows
    assert after["subjects"] == before["subjects"]
    assert after["audit_log"][:-1] == before["audit_log"]


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 3 * 256, 10_000])
def test_sealed_member_round_trips_at_chunk_boundaries(size: int):
    """Incompressible content of any length, the final chunk full, short or empty."""
    key, data = os.urandom(32), os.urandom(size)
    stored = io.BytesIO()
    sealer = backup_crypto.Sealer(stored, key, "db/x.jsonl.enc", 256)
    for start in range(0, size, 100):
        sealer.write(data[start : start + 100])
    sha256 = sealer.close()
    assert sha256 == hashlib.sha256(stored.getvalue()).hexdigest()
    assert sealer.size == len(stored.getvalue())
    with backup_crypto.unsealed_reader(
        io.BytesIO(stored.getvalue()), key, "db/x.jsonl.enc", 256
    ) as plain:
        assert plain.read() == data
    for wrong_key, wrong_name in ((os.urandom(32), "db/x.jsonl.enc"), (key, "db/y.jsonl.enc")):
        with pytest.raises(backup_crypto.Undecryptable, match="does not decrypt"):  # noqa: SIM117
            with backup_crypto.unsealed_reader(
                io.BytesIO(stored.getvalue()), wrong_key, wrong_name, 256
            ) as plain:
                plain.read()
    # A byte more: in a short final chunk, or after a full one.
    with (
        pytest.raises(
            backup_crypto.Undecryptable,
            match=r"does not decrypt|goes on after its final chunk",
        ),
        backup_crypto.unsealed_reader(
            io.BytesIO(stored.getvalue() + b"x"), key, "db/x.jsonl.enc", 256
        ) as plain,
    ):
        plain.read()
