"""``kpnet backup`` and ``kpnet restore``: the whole node in one passphrase-encrypted
archive, and back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import CLI_ACTOR, DataDir, fail, settings_for
from .progress import progress_bar

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


def backup(
    output: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz); must not exist.")],
    data_dir: DataDir,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Back up the node into one archive: database, config, card and keys, all but the
    public card encrypted with a passphrase. The node may keep running."""
    from ..runtime import utc_now
    from ..services.backup import create_backup

    settings = settings_for(data_dir)
    with progress_bar() as progress:
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
    from ..runtime import utc_now
    from ..services.backup_restore import restore_archive

    with progress_bar() as progress:
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
