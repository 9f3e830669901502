"""``kpnet user``: web console accounts (the first admin is created here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..roles import ROLES
from .common import DataDir, fail, unit_of_work
from .tokens import CLEARANCE_HELP

user_app = typer.Typer(no_args_is_help=True, help="Web console accounts.")


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            fail(f"cannot read {password_file}: {exc.strerror}")
        if not lines or not lines[0]:
            fail(f"{password_file} is empty; put the password on its first line")
        return lines[0]
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password; use --password-file")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("create")
def user_create(
    data_dir: DataDir,
    username: Annotated[str, typer.Argument(help="Sign-in name: letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the password from the first line of this file (else it is asked twice)."
        ),
    ] = None,
    full_name: Annotated[str | None, typer.Option(help="The person's name.")] = None,
    language: Annotated[
        str | None, typer.Option(help="Console language: en or fr (default: the browser's).")
    ] = None,
    clearance: Annotated[str | None, typer.Option(help=CLEARANCE_HELP)] = None,
) -> None:
    """Create a web console account (the first admin is made this way)."""
    from ..services.passwords import WeakPassword

    if role not in ROLES:
        fail(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    password = _read_password(password_file)
    with unit_of_work(data_dir) as work:
        try:
            user = work.users().create(
                username,
                role,
                password,
                full_name=full_name,
                language=language,
                clearance=clearance,
            )
        except WeakPassword as exc:
            fail(
                {
                    "too_short": "the password must have at least 12 characters",
                    "too_long": "the password is too long",
                    "contains_username": "the password must not contain the user name",
                    "too_simple": "the password needs more different characters",
                }[exc.code]
            )
        work.session.commit()
        typer.echo(
            f"user {user.username} ({user.role}) created, reading up to TLP:{user.clearance}; "
            "sign in at "
            f"{work.node.settings.public_url.rstrip('/')}/console/"
        )


@user_app.command("list")
def user_list(data_dir: DataDir) -> None:
    """List console accounts."""
    from ..services.users import is_locked

    with unit_of_work(data_dir) as work:
        for user in work.users().all():
            state = (
                "disabled"
                if user.disabled_at
                else "locked"
                if is_locked(user, work.now)
                else "active"
            )
            typer.echo(
                f"{user.username}\t{user.role}\t{state}\t{user.clearance}\t{user.full_name or ''}"
            )


@user_app.command("unlock")
def user_unlock(data_dir: DataDir, username: str) -> None:
    """Lift a lock-out (after too many failed sign-ins)."""
    with unit_of_work(data_dir) as work:
        accounts = work.users()
        user = accounts.find(username)
        if user is None:
            fail(f"no user {username}")
        accounts.unlock(user.id)
        work.session.commit()
        typer.echo(f"user {user.username} unlocked")


@user_app.command("clearance")
def user_clearance(
    data_dir: DataDir,
    username: str,
    clearance: Annotated[str, typer.Argument(help=CLEARANCE_HELP)],
) -> None:
    """Raise or lower the highest TLP level a user may read (at the next page, audited)."""
    with unit_of_work(data_dir) as work:
        accounts = work.users()
        user = accounts.find(username)
        if user is None:
            fail(f"no user {username}")
        accounts.set_clearance(user.id, clearance)
        work.session.commit()
        typer.echo(f"user {user.username} now reads up to TLP:{user.clearance}")
