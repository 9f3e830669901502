"""The ``kpnet`` command.

Every command takes ``--data-dir`` (or ``KPNET_DATA_DIR``). Mistakes a user can fix
print one line on stderr and exit with status 1 (2 for usage errors); no tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from protocol import ProtocolError

from .bootstrap import NodeExists, init_node
from .cli_common import CLI_ACTOR, CliError, DataDir, fail, opened, settings_for
from .cli_peers import peer_app
from .cli_users import user_app
from .keystore import KeyFileError
from .roles import ROLES
from .runtime import utc_now
from .services.audit import verify_chain
from .services.backup import BackupError
from .services.csv_import import import_csv
from .services.errors import ServiceError
from .services.export import start_export
from .services.tokens import TokenService

app = typer.Typer(no_args_is_help=True, add_completion=False, help="kpnet national node.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
db_app = typer.Typer(no_args_is_help=True, help="Database.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit log.")
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(peer_app, name="peer")
keys_app = typer.Typer(no_args_is_help=True, help="This node's keys.")
app.add_typer(keys_app, name="keys")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (on temporary nodes).")
app.add_typer(bench_app, name="bench")
kyc_app = typer.Typer(no_args_is_help=True, help="KYC matching.")
app.add_typer(kyc_app, name="kyc")
app.add_typer(user_app, name="user")


@app.command()
def init(
    data_dir: DataDir,
    node_id: Annotated[
        str, typer.Option(help="Node id: country code, optionally -tag (CM, CF-usaf).")
    ],
    name: Annotated[str, typer.Option(help="Display name shown to peers.")],
    url: Annotated[str, typer.Option(help="URL at which peers reach this node.")],
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in the data dir).")
    ] = None,
) -> None:
    """Create a node: data directory, keys, signed card, database. Prints the fingerprint."""
    try:
        settings = init_node(
            data_dir, node_id=node_id, name=name, url=url, now=utc_now(), database_url=database_url
        )
    except NodeExists as exc:
        fail(str(exc))
    with opened(settings.data_dir, migrate=False) as node:
        typer.echo(f"Node {node.settings.node_id} created in {data_dir}")
        typer.echo(f"Fingerprint (read it aloud to your peers): {node.identity.fingerprint}")


@app.command()
def serve(
    data_dir: DataDir,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the node's HTTP server."""
    import uvicorn

    from .app import create_app

    settings = settings_for(data_dir)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        proxy_headers=True,
    )


@app.command()
def card(data_dir: DataDir) -> None:
    """Print this node's signed card (give it to peers with the fingerprint)."""
    with opened(data_dir) as node:
        typer.echo(json.dumps(node.card.to_json(), indent=2, ensure_ascii=False))


@app.command()
def fingerprint(data_dir: DataDir) -> None:
    """Print this node's fingerprint, to read aloud when peering in person."""
    with opened(data_dir) as node:
        typer.echo(node.identity.fingerprint)


@token_app.command("create")
def token_create(
    data_dir: DataDir,
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for.")],
    expires_days: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
) -> None:
    """Create an API token and print it once."""
    if role not in ROLES:
        fail(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    with opened(data_dir) as node, node.sessions() as session:
        row, secret = TokenService(session, CLI_ACTOR, node.now()).create(
            name=name, role=role, expires_days=expires_days
        )
        session.commit()
        typer.echo(secret)
        typer.echo(f"token {row.id} ({role}, {name}); it will not be shown again", err=True)


@token_app.command("list")
def token_list(data_dir: DataDir) -> None:
    """List tokens (never their secrets)."""
    with opened(data_dir) as node, node.sessions() as session:
        for row in TokenService(session, CLI_ACTOR, node.now()).all():
            state = (
                "revoked"
                if row.revoked_at
                else (f"expires {row.expires_at:%Y-%m-%d}" if row.expires_at else "active")
            )
            typer.echo(f"{row.id}\t{row.role}\t{row.name}\t{row.prefix}…\t{state}")


@token_app.command("revoke")
def token_revoke(
    data_dir: DataDir, token_id: Annotated[int, typer.Argument(help="Token id.")]
) -> None:
    """Revoke a token at once."""
    with opened(data_dir) as node, node.sessions() as session:
        TokenService(session, CLI_ACTOR, node.now()).revoke(token_id)
        session.commit()
        typer.echo(f"token {token_id} revoked")


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir) -> None:
    """New keys and card, announced to every peer (signed with the current key).
    Restart the node afterwards."""
    from .services.rotation import rotate_keys

    with opened(data_dir) as node:
        card = rotate_keys(node, CLI_ACTOR, node.now())
        fingerprint = card.fingerprint
    typer.echo(f"new card serial {card.serial}; new fingerprint {fingerprint}")
    typer.echo("peers are told through card.update; restart the node to use the new keys")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir) -> None:
    """Apply pending database migrations (needs the config, not the keys)."""
    from .db import make_engine, upgrade
    from .db.migrate import current_revision

    engine = make_engine(settings_for(data_dir).sqlalchemy_url)
    try:
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@audit_app.command("verify")
def audit_verify(data_dir: DataDir) -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken entry."""
    with opened(data_dir) as node, node.sessions() as session:
        report = verify_chain(session)
    if not report.ok:
        fail(
            f"audit log BROKEN at entry {report.first_broken_seq}: {report.problem} "
            f"({report.entries} entries verified before it)"
        )
    typer.echo(f"audit log intact: {report.entries} entries verified")


PASSPHRASE_ENV = "KPNET_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"File holding the passphrase (else ${PASSPHRASE_ENV}, else it is asked for).",
    ),
]


def _passphrase(file: Path | None, *, confirm: bool) -> str:
    """The backup passphrase: from a file, the environment, or typed (hidden)."""
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the passphrase file {file}: {getattr(exc, 'strerror', exc)}")
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV]
    else:
        value = typer.prompt(
            "Backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
    if not value:
        fail("the passphrase is empty")
    return value


@app.command()
def backup(
    output: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz); must not exist.")],
    data_dir: DataDir,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Back up the node into one archive: database, config, card and keys, all but the
    public card encrypted with a passphrase. The node may keep running."""
    from .services.backup import create_backup

    settings = settings_for(data_dir)
    with _progress_bar() as progress:
        report = create_backup(
            settings,
            output,
            now=utc_now(),
            actor=str(CLI_ACTOR),
            progress=progress,
            passphrase=lambda: _passphrase(passphrase_file, confirm=True),
        )
    typer.echo(
        f"node {report.node_id} backed up to {output}: {sum(report.rows.values())} rows "
        f"in {len(report.rows)} tables, database revision {report.revision} "
        f"(sha256 {report.sha256})"
    )
    typer.echo(
        "keep the passphrase apart from the archive: without it nothing can be restored", err=True
    )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="Archive made by `kpnet backup`.")],
    data_dir: DataDir,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Empty database to restore into (default: the archive's PostgreSQL database, "
            "else SQLite in the data dir)."
        ),
    ] = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore a node from an archive into a new (or empty) data directory and an empty
    database. The archive is checked in full before anything is written."""
    from .services.backup_restore import restore_archive

    with _progress_bar() as progress:
        report = restore_archive(
            archive,
            data_dir,
            database_url=database_url,
            now=utc_now(),
            actor=str(CLI_ACTOR),
            progress=progress,
            passphrase=lambda: _passphrase(passphrase_file, confirm=False),
        )
    typer.echo(
        f"node {report.node_id} restored in {data_dir}: {sum(report.rows.values())} rows "
        f"into {report.database} at revision {report.revision}"
    )
    typer.echo(f"Fingerprint: {report.fingerprint}")


RecordKind = Annotated[
    Literal["licensees", "subjects"], typer.Argument(help="What to import or export.")
]
MAX_ERRORS_SHOWN = 20


@contextmanager
def _progress_bar():  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr, driven by a service's ``progress(phase, done, total)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    labels = {"validate": "validating", "write": "writing", "dump": "dumping", "load": "loading"}
    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if not tasks:  # shown from the first step on: a refusal before it stays one line
            bar.start()
        if phase not in tasks:
            tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
        bar.update(tasks[phase], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


@app.command("import")
def import_records(
    kind: RecordKind,
    file: Annotated[Path, typer.Argument(help="CSV file: UTF-8, `;` or `,` separated.")],
    data_dir: DataDir,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
) -> None:
    """Import records from a CSV file: every row, or none if one is invalid (docs/csv.md)."""
    data = file.read_bytes()
    with opened(data_dir) as node, _progress_bar() as progress:
        report = import_csv(
            node.sessions,
            kind,
            data,
            actor=CLI_ACTOR,
            now=node.now(),
            dry_run=dry_run,
            progress=progress,
        )
    for error in report.errors[:MAX_ERRORS_SHOWN]:
        column = f", column {error.column}" if error.column else ""
        typer.echo(f"row {error.row}{column}: {error.message}", err=True)
    if report.errors_total > MAX_ERRORS_SHOWN:
        typer.echo(f"... and {report.errors_total - MAX_ERRORS_SHOWN} more errors", err=True)
    if report.errors_total:
        plural = "s" if report.errors_total > 1 else ""
        fail(
            f"{report.errors_total} error{plural} in {file} ({report.rows_valid} of "
            f"{report.rows_total} rows valid); nothing was written"
        )
    if dry_run:
        typer.echo(f"{report.rows_valid} rows valid; nothing written (dry run)")
    else:
        typer.echo(f"{report.written} {kind} imported from {file} (sha256 {report.sha256})")


@app.command("export")
def export_records(
    kind: RecordKind,
    data_dir: DataDir,
    fmt: Annotated[
        Literal["csv", "json"],
        typer.Option(
            "--format", help="csv (UTF-8 with BOM, `,` separated, re-importable) or json."
        ),
    ] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", help="File to write (default: standard output).")
    ] = None,
) -> None:
    """Export every live record of a kind (the export is audited)."""
    with opened(data_dir) as node:
        export = start_export(
            node.sessions, kind, fmt, actor=CLI_ACTOR, now=node.now(), node_id=node.settings.node_id
        )
        if output is None:
            for chunk in export.chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as stream:
                for chunk in export.chunks:
                    stream.write(chunk)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
    typer.echo(f"{export.count} {kind} exported to {output}", err=True)


@kyc_app.command("reindex")
def kyc_reindex(data_dir: DataDir) -> None:
    """Rebuild the KYC match index from every live licensee and subject."""
    from .matching import MatchIndex

    with opened(data_dir) as node, _progress_bar() as progress, node.sessions() as session:
        records, keys = MatchIndex.rebuild(session, progress=progress)
        session.commit()
    typer.echo(f"match index rebuilt: {records} persons and organisations, {keys} keys")


@app.command()
def demo(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Play the scenario, check every step, exit 0 only if all held."
        ),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Empty directory for the three nodes (default: a temporary one, removed at exit)."
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="First of three ports on 127.0.0.1 (free ones are used if taken).")
    ] = 8101,
) -> None:
    """Three national nodes (CM, CF, CD) on this machine playing a regional scenario."""
    from .demo.network import DemoError
    from .demo.run import run_demo

    try:
        code = run_demo(once=once, data_dir=data_dir, first_port=port)
    except DemoError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@bench_app.command("kyc")
def bench_kyc(
    records: Annotated[int, typer.Option(min=1000, help="Persons and organisations.")] = 1_000_000,
    queries: Annotated[int, typer.Option(min=10, help="Labelled queries.")] = 1200,
    bruteforce_queries: Annotated[
        int, typer.Option(min=1, help="Random subset of the queries also run by brute force.")
    ] = 120,
) -> None:
    """Time KYC candidate lookup against brute-force fuzzy matching; recall of both."""
    from .bench.kyc import run_kyc_bench

    result = run_kyc_bench(
        records,
        queries=queries,
        bruteforce_queries=bruteforce_queries,
        echo=lambda line: typer.echo(line, err=True),
    )
    typer.echo(json.dumps(result))


@bench_app.command("import")
def bench_import(
    rows: Annotated[int, typer.Option(min=1, help="Licensees in the synthetic file.")] = 100_000,
) -> None:
    """Time `kpnet import licensees` of a synthetic file into a temporary SQLite node."""
    from .bench.import_bench import run_import_bench

    result = run_import_bench(rows, echo=lambda line: typer.echo(line, err=True))
    typer.echo(json.dumps(result))


@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(min=100, help="Alerts to deliver.")] = 4000,
    batch: Annotated[int, typer.Option(min=1, max=100, help="Envelopes per request.")] = 50,
    database_url: Annotated[
        str | None,
        typer.Option(help="Receiver's database (an empty PostgreSQL database); default SQLite."),
    ] = None,
) -> None:
    """Inbound alerts accepted per second by one node process, against a trivial endpoint."""
    from .bench.ingest import run_ingest_bench

    result = run_ingest_bench(
        messages=messages,
        batch=batch,
        database_url=database_url,
        echo=lambda line: typer.echo(line, err=True),
    )
    typer.echo(json.dumps(result))


def main() -> None:
    os.umask(0o077)  # everything the node writes is private to its user
    try:
        app(standalone_mode=False)
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ValidationError as exc:  # before ValueError, of which it is a subclass
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        typer.echo(f"error: {where}: {first['msg']}", err=True)
        sys.exit(1)
    except (KeyFileError, ServiceError, ProtocolError, BackupError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: database: {reason}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # usage errors and exits (typer now carries its own click)
        import click

        if isinstance(exc, (click.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, (click.exceptions.Exit, typer.Exit)):
            sys.exit(exc.exit_code)
        raise
