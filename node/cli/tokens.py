"""``kpnet token``: API tokens for other systems and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from ..roles import ROLES
from .common import DataDir, fail, unit_of_work

token_app = typer.Typer(no_args_is_help=True, help="API tokens.")


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
    with unit_of_work(data_dir) as work:
        row, secret = work.tokens().create(name=name, role=role, expires_days=expires_days)
        work.session.commit()
        typer.echo(secret)
        typer.echo(f"token {row.id} ({role}, {name}); it will not be shown again", err=True)


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
            typer.echo(f"{row.id}\t{row.role}\t{row.name}\t{row.prefix}…\t{state}")


@token_app.command("revoke")
def token_revoke(
    data_dir: DataDir, token_id: Annotated[int, typer.Argument(help="Token id.")]
) -> None:
    """Revoke a token at once."""
    with unit_of_work(data_dir) as work:
        work.tokens().revoke(token_id)
        work.session.commit()
        typer.echo(f"token {token_id} revoked")
