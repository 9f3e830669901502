"""The ``kpnet`` command.

Every command takes ``--data-dir`` (or ``KPNET_DATA_DIR``). Mistakes a user can fix
print one line on stderr and exit with status 1 (2 for usage errors); no tracebacks.

One module per command group: each group module holds its own typer app; the top-level
commands are plain functions, registered here. ``common`` holds what they share.
"""

from __future__ import annotations

import os
import sys

import typer

from .audit import audit_app
from .backup import backup, restore
from .bench import bench_app
from .common import CliError
from .demo import demo
from .keys import keys_app
from .kyc import kyc_app
from .node import card, db_app, fingerprint, init, serve
from .peers import peer_app
from .records import export_records, import_records
from .tokens import token_app
from .users import user_app

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="kpnet national node.")
for command in (init, serve, card, fingerprint, backup, restore):
    app.command()(command)
app.command("import")(import_records)
app.command("export")(export_records)
app.command()(demo)
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(peer_app, name="peer")
app.add_typer(keys_app, name="keys")
app.add_typer(bench_app, name="bench")
app.add_typer(kyc_app, name="kyc")
app.add_typer(user_app, name="user")


def main() -> None:
    os.umask(0o077)  # everything the node writes is private to its user
    try:
        app(standalone_mode=False)
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        line = _one_line(exc)
        if line is not None:
            typer.echo(f"error: {line}", err=True)
            sys.exit(1)
        _usage_or_exit(exc)
        raise


def _one_line(exc: Exception) -> str | None:
    """What a user can fix, in one line; None for anything else. The error classes are
    imported here, once a command has failed, so that a command never loads more than
    it uses."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from protocol import ProtocolError

    from ..keystore import KeyFileError
    from ..services.backup import BackupError
    from ..services.errors import ServiceError

    if isinstance(exc, ValidationError):  # before ValueError, of which it is a subclass
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    if isinstance(
        exc, (KeyFileError, ServiceError, ProtocolError, BackupError, ValueError, OSError)
    ):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"database: {reason}"
    return None


def _usage_or_exit(exc: Exception) -> None:
    """Usage errors and exits (typer now carries its own click) end the process."""
    import click

    if isinstance(exc, (click.ClickException, typer.TyperException)) and hasattr(exc, "show"):
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(exc, (click.exceptions.Exit, typer.Exit)):
        sys.exit(exc.exit_code)
