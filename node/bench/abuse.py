"""``kpnet bench abuse``: does a stranger's junk slow a node down or write its audit log?

One node runs as its own ``kpnet serve`` process (SQLite by default, or
``--database-url``), with its settings as shipped. ``/livez`` is timed on the idle node,
one request after another; then again for ``seconds`` while one client, over three
connections of its own, posts junk to ``/federation/v1/messages`` without pause:

- 26 MB batches of ``{}`` items (just under the body limit, so they are read);
- 26 MB of ``[``: nesting as deep as the body allows;
- slow bodies: a declared 4 KiB trickled 8 bytes every 50 ms.

Reported: the p99 latency of ``/livez`` idle and under junk and their ratio (target
≤ 3), the junk requests made and how they were answered, the node's peak memory, and
the audit rows written during the junk phase, counted apart from the aggregated
``message.refusals`` entries (at most one per ``refusal_audit_interval_seconds``, 60 s
by default, so a run shorter than that usually sees none): ``audit_rows_from_junk``
is every other row, target 0.
"""

from __future__ import annotations

import multiprocessing
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from ..bootstrap import init_node
from ..config import Settings, load_settings
from ..db.models import AuditEntry
from ..federation.refusals import ACTION as SUMMARY_ACTION
from ..readiness import free_port, start_serve
from ..runtime import open_node
from .process_stats import cpu_seconds, peak_rss_mb

PATH = "/federation/v1/messages"
BIG = 26_000_000  # bytes of junk per large body (the limit is 100 x 256 KiB)
SLOW_BYTES, SLOW_CHUNK, SLOW_PAUSE = 4096, 8, 0.05


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _time_livez(client: httpx.Client, until: Callable[[int], bool]) -> list[float]:
    """Latencies of ``/livez`` requests made one after another until ``until(count)``."""
    latencies: list[float] = []
    while not until(len(latencies)):
        start = time.perf_counter()
        client.get("/livez").raise_for_status()
        latencies.append(time.perf_counter() - start)
    return latencies


def _post(port: int, body: Iterator[bytes], length: int, stop: threading.Event) -> str:
    """POST ``body`` (declared ``length`` bytes) on a new connection; the answer's status,
    ``closed`` when the node hung up before answering, or ``unfinished`` when the bench
    ended before the body was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        try:
            conn.sendall(
                b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (PATH.encode(), length)
            )
            sent = 0
            for chunk in body:
                conn.sendall(chunk)
                sent += len(chunk)
            if sent < length:
                return "unfinished"
        except OSError:
            pass  # answered (and closed) before everything was sent: read the answer
        try:
            head = conn.recv(1024)
        except OSError:
            return "closed"
    parts = head.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 and head.startswith(b"HTTP/") else "closed"


def _whole(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for at in range(0, len(body), 1 << 20):
        yield bytes(view[at : at + (1 << 20)])


def _trickled(stop: threading.Event) -> Iterator[bytes]:
    body = (b"[" + b"{}," * SLOW_BYTES)[:SLOW_BYTES]
    for at in range(0, len(body), SLOW_CHUNK):
        if stop.wait(SLOW_PAUSE):
            return
        yield body[at : at + SLOW_CHUNK]


def _junk_client(port: int, ready: Any, stop: Any, answers: Any) -> None:
    """The stranger (a process of its own, so that its work does not slow the bench's
    own timing of /livez): three connections posting junk until ``stop`` is set; puts
    the count of each kind of answer on ``answers``."""
    done = threading.Event()
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    empties = b"[" + b"{}," * (BIG // 3 - 1) + b"{}]"
    nesting = b"[" * BIG

    def loop(make: Callable[[], tuple[Iterator[bytes], int]]) -> None:
        while not done.is_set():
            body, length = make()
            answer = _post(port, body, length, done)
            with lock:
                counts[answer] += 1

    threads = [
        threading.Thread(target=loop, args=(lambda: (_whole(empties), len(empties)),)),
        threading.Thread(target=loop, args=(lambda: (_whole(nesting), len(nesting)),)),
        threading.Thread(target=loop, args=(lambda: (_trickled(done), SLOW_BYTES),)),
    ]
    for thread in threads:
        thread.start()
    ready.set()
    stop.wait()
    done.set()
    for thread in threads:
        thread.join()
    answers.put(dict(counts))


class _Junk:
    """The junk client, running while inside ``with``; ``answers`` once it is over."""

    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop = context.Event(), context.Event()
        self._answers = context.Queue()
        self._process = context.Process(
            target=_junk_client, args=(port, self._ready, self._stop, self._answers), daemon=True
        )
        self.answers: dict[str, int] = {}

    def __enter__(self) -> _Junk:
        self._process.start()
        if not self._ready.wait(timeout=120):
            raise RuntimeError("the junk client did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.answers = self._answers.get(timeout=120)
        self._process.join(timeout=30)


def _audit_rows(settings: Settings) -> tuple[int, int]:
    """Audit rows other than refusal summaries, and refusal summaries."""
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            every = select(func.count()).select_from(AuditEntry)
            total = session.execute(every).scalar_one()
            summaries = session.execute(
                every.where(AuditEntry.action == SUMMARY_ACTION)
            ).scalar_one()
    finally:
        node.close()
    return int(total - summaries), int(summaries)


def run_abuse_bench(
    *,
    seconds: float = 20.0,
    samples: int = 500,
    database_url: str | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-") as tmp:
        port = free_port()
        init_node(
            Path(tmp) / "CM",
            node_id="CM",
            name="Bench node",
            url=f"http://127.0.0.1:{port}",
            now=datetime.now(UTC),
            database_url=database_url,
        )
        settings = load_settings(Path(tmp) / "CM")
        serving = start_serve(
            settings.data_dir,
            port,
            Path(tmp) / "serve.log",
            env={"KPNET_SENDER_ENABLED": "false"},
        )
        server = serving.process
        try:
            base = serving.url
            serving.wait_ready()
            with httpx.Client(base_url=base, timeout=60) as client:
                _time_livez(client, lambda n: n >= 50)  # warm up
                echo(f"timing {samples} requests to /livez on the idle node…")
                idle = _time_livez(client, lambda n: n >= samples)
                rows_before, summaries_before = _audit_rows(settings)
                cpu_before = cpu_seconds(server.pid)
                echo(f"timing /livez for {seconds:.0f} s while junk is posted…")
                with _Junk(port) as junk:
                    deadline = time.monotonic() + seconds
                    busy = _time_livez(client, lambda n: time.monotonic() >= deadline)
                cpu_after = cpu_seconds(server.pid)
                rows_after, summaries_after = _audit_rows(settings)
            peak = peak_rss_mb(server.pid)
        finally:
            serving.stop()
    idle_p99, busy_p99 = _p99(idle) * 1000, _p99(busy) * 1000
    return {
        "livez_p99_idle_ms": round(idle_p99, 2),
        "livez_p99_under_junk_ms": round(busy_p99, 2),
        "ratio": round(busy_p99 / idle_p99, 2),
        "junk_requests": sum(junk.answers.values()),
        "junk_answers": dict(sorted(junk.answers.items())),
        "audit_rows_from_junk": rows_after - rows_before,
        "refusal_summaries": summaries_after - summaries_before,
        "refusal_audit_interval_seconds": settings.refusal_audit_interval_seconds,
        "livez_samples_idle": len(idle),
        "livez_samples_under_junk": len(busy),
        "node_peak_rss_mb": peak,
        "node_cpu_seconds_under_junk": None
        if cpu_before is None or cpu_after is None
        else round(cpu_after - cpu_before, 2),
        "seconds": seconds,
        "database": "postgresql" if database_url else "sqlite",
    }
