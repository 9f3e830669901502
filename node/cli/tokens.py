"""``kpnet token``: API tokens for other systems and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from protocol import HANDLING_LEVELS

from ..roles import ROLES
from .common import DataDir, fail, unit_of_work

CLEARANCE_HELP = (
    f"Highest TLP level it may read: one of {', '.join(HANDLING_LEVELS)} "
    "(default: the role's; officer AMBER, analyst RED, admin and auditor CLEAR)."
)

token_app = typer.Typer(no_args_is_help=True, help="API tokens.")


@token_app.command("create")
def token_create(
    data_dir: DataDir,
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for.")],
    expires_days: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
    clearance: Annotated[str | None, typer.Option(help=CLEARANCE_HELP)] = None,
) -> None:
    """Create an API token and print it once."""
    if role not in ROLES:
        fail(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    with unit_of_work(data_dir) as work:
        row, secret = work.tokens().create(
            name=name, role=role, expires_days=expires_days, clearance=clearance
        )
        work.session.commit()
        typer.echo(secret)
        typer.echo(
            f"token {row.id} ({role}, {name}, clearance {row.clearance}); "
            "it will not be shown again",
            err=True,
        )


@token_app.command("clearance")
def token_clearance(
    data_dir: DataDir,
    token_id: Annotated[int, typer.Argument(help="Token id.")],
    clearance: Annotated[str, typer.Argument(help=CLEARANCE_HELP)],
) -> None:
    """Raise or lower the highest TLP level a token may read (at once, audited)."""
    with unit_of_work(data_dir) as work:
        row = work.tokens().set_clearance(token_id, clearance)
        work.session.commit()
        typer.echo(f"token {row.id} ({row.name}) now reads up to TLP:{row.clearance}")


@token_app.command("list")
def token_list(data_dir: DataDir) -> None:
    """List tokens (never their secrets)."""
    with unit_of_work(data_dir) as work:
        for row in work.tokens().all():
            state = (
                "revoked"
                if row.revoked_at
                else (f"expires {row.expires_at:%Y-%m-%d}" if row.expires_at else "active")
            )
            typer.echo(f"{row.id}\t{row.role}\t{row.clearance}\t{row.name}\t{row.prefix}…\t{state}")


@token_app.command("revoke")
def token_revoke(
    data_dir: DataDir, token_id: Annotated[int, typer.Argument(help="Token id.")]
) -> None:
    """Revoke a token at once."""
    with unit_of_work(data_dir) as work:
        work.tokens().revoke(token_id)
        work.session.commit()
        typer.echo(f"token {token_id} revoked")
