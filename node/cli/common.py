"""What every ``kpnet`` command shares: the ``--data-dir`` option, the actor commands
act as, one-line user errors, and opening the node of a data directory (alone, or with
the command's unit of work)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ..services.actors import Actor

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import Node
    from ..services.work import UnitOfWork

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="KPNET_DATA_DIR", help="The node's data directory.")
]
CLI_ACTOR = Actor("cli", "admin")


class CliError(Exception):
    """A mistake the user can fix; printed as one line."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def settings_for(data_dir: Path) -> Settings:
    from ..config import load_settings  # imported by the commands that use a node, only

    if not (data_dir / "config.toml").is_file():
        fail(f"no node in {data_dir}; create one with `kpnet init --data-dir {data_dir} ...`")
    return load_settings(data_dir)


@contextmanager
def opened(data_dir: Path, *, migrate: bool = True) -> Iterator[Node]:
    from ..runtime import open_node  # imported by the commands that open a node, only

    node = open_node(settings_for(data_dir), migrate=migrate)
    try:
        yield node
    finally:
        node.close()


@contextmanager
def unit_of_work(data_dir: Path) -> Iterator[UnitOfWork]:
    """The node of ``data_dir``, one database session and the CLI's actor, from which a
    command takes its services; the command commits (or lets it roll back)."""
    from ..services.work import UnitOfWork

    with opened(data_dir) as node, node.sessions() as session:
        yield UnitOfWork(node, session, CLI_ACTOR)
