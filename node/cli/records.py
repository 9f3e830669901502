"""``kpnet import`` and ``kpnet export``: licensees and subjects from and to files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from .common import CLI_ACTOR, DataDir, fail, opened
from .progress import progress_bar

RecordKind = Annotated[
    Literal["licensees", "subjects"], typer.Argument(help="What to import or export.")
]
MAX_ERRORS_SHOWN = 20


def import_records(
    kind: RecordKind,
    file: Annotated[Path, typer.Argument(help="CSV file: UTF-8, `;` or `,` separated.")],
    data_dir: DataDir,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
) -> None:
    """Import records from a CSV file: every row, or none if one is invalid (docs/csv.md)."""
    from ..services.csv_import import import_csv

    with file.open("rb") as source, opened(data_dir) as node, progress_bar() as progress:
        report = import_csv(
            node.sessions,
            kind,
            source,
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
    from ..services.export import start_export

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
