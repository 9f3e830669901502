"""``kpnet bench``: benchmarks, each on temporary nodes; the result is one JSON line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (on temporary nodes).")


def _to_stderr(line: str) -> None:
    typer.echo(line, err=True)


@bench_app.command("kyc")
def bench_kyc(
    records: Annotated[int, typer.Option(min=1000, help="Persons and organisations.")] = 1_000_000,
    queries: Annotated[int, typer.Option(min=10, help="Labelled queries.")] = 1200,
    bruteforce_queries: Annotated[
        int, typer.Option(min=1, help="Random subset of the queries also run by brute force.")
    ] = 120,
) -> None:
    """Time KYC candidate lookup against brute-force fuzzy matching; recall of both."""
    from ..bench.kyc import run_kyc_bench

    result = run_kyc_bench(
        records, queries=queries, bruteforce_queries=bruteforce_queries, echo=_to_stderr
    )
    typer.echo(json.dumps(result))


@bench_app.command("import")
def bench_import(
    rows: Annotated[int, typer.Option(min=1, help="Licensees in the synthetic file.")] = 100_000,
) -> None:
    """Time `kpnet import licensees` of a synthetic file into a temporary SQLite node."""
    from ..bench.import_bench import run_import_bench

    typer.echo(json.dumps(run_import_bench(rows, echo=_to_stderr)))


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
    from ..bench.ingest import run_ingest_bench

    result = run_ingest_bench(
        messages=messages, batch=batch, database_url=database_url, echo=_to_stderr
    )
    typer.echo(json.dumps(result))


@bench_app.command("link")
def bench_link(
    rates: Annotated[
        str, typer.Option(help="Emulated link rates in kbit/s, with one-way latency in ms.")
    ] = "16@800,50@500,256@300",
    drop: Annotated[float, typer.Option(min=0, max=0.5, help="Share of segments lost.")] = 0.05,
    seconds: Annotated[
        float, typer.Option(min=5, help="About how long each link's transfer should take.")
    ] = 45.0,
    catch_up: Annotated[
        int, typer.Option(min=100, help="Alerts queued during the outage for catch-up.")
    ] = 5000,
) -> None:
    """Goodput over slow, lossy links, and catch-up after an outage against steady ingest."""
    from ..bench.link import Link, run_link_bench

    try:
        links = [
            Link(int(rate) * 1000, int(latency) / 1000)
            for rate, latency in (item.split("@") for item in rates.split(","))
        ]
    except ValueError:
        raise typer.BadParameter("write rates as KBIT@MS,… e.g. 16@800,50@500") from None
    result = run_link_bench(
        links=links, drop=drop, seconds_per_link=seconds, catch_up=catch_up, echo=_to_stderr
    )
    typer.echo(json.dumps(result))


@bench_app.command("abuse")
def bench_abuse(
    seconds: Annotated[
        float, typer.Option(min=1, help="How long junk is posted while /livez is timed.")
    ] = 20.0,
    samples: Annotated[int, typer.Option(min=10, help="/livez requests timed when idle.")] = 500,
    database_url: Annotated[
        str | None,
        typer.Option(help="The node's database (an empty PostgreSQL database); default SQLite."),
    ] = None,
) -> None:
    """/livez p99 latency while a stranger posts junk, against idle; audit rows written."""
    from ..bench.abuse import run_abuse_bench

    result = run_abuse_bench(
        seconds=seconds, samples=samples, database_url=database_url, echo=_to_stderr
    )
    typer.echo(json.dumps(result))


@bench_app.command("stream")
def bench_stream(
    streams: Annotated[int, typer.Option(min=1, help="Live streams held open.")] = 200,
    console: Annotated[
        int, typer.Option(min=0, help="How many of them are console sessions.")
    ] = 20,
    alerts: Annotated[int, typer.Option(min=3, help="Alerts delivered, one at a time.")] = 30,
    pause: Annotated[float, typer.Option(min=0, help="Seconds between alerts.")] = 0.2,
    database_url: Annotated[
        str | None,
        typer.Option(help="The node's database (an empty PostgreSQL database); default SQLite."),
    ] = None,
) -> None:
    """Server CPU per alert per open stream, and the first and last stream's wait."""
    from ..bench.stream import run_stream_bench

    result = run_stream_bench(
        streams=streams,
        console=console,
        alerts=alerts,
        pause=pause,
        database_url=database_url,
        echo=_to_stderr,
    )
    typer.echo(json.dumps(result))


@bench_app.command("startup")
def bench_startup(
    runs: Annotated[int, typer.Option(min=1, help="Times `kpnet serve` is started.")] = 5,
    imports: Annotated[
        int, typer.Option(min=1, help="Fresh interpreters timing the imports and --help.")
    ] = 3,
) -> None:
    """Seconds from spawning `kpnet serve` to /healthz 200; import time of the app."""
    from ..bench.startup import run_startup_bench

    typer.echo(json.dumps(run_startup_bench(runs=runs, imports=imports, echo=_to_stderr)))
