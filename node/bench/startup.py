"""``kpnet bench startup``: how long a node takes from ``kpnet serve`` to ready.

A temporary node (SQLite) is created once; ``kpnet serve`` is then spawned ``runs``
times, one after another, and each run is timed from the spawn to the first
``/healthz`` answering 200 (asked every 20 ms). The process is stopped before the next
run. Reported: the median and the maximum of those times; the median CPU time the
process had used when it was ready (user and system: what the start costs whatever else
the machine runs; on an idle machine the wall time is close to it); and, each measured
in fresh interpreters (median of ``imports`` runs), importing ``node.app`` and
``kpnet --help`` from spawn to exit (a command that needs no app).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..bootstrap import init_node
from ..readiness import free_port, kpnet_command, start_serve
from .process_stats import cpu_seconds

POLL_SECONDS = 0.02
IMPORT_APP = (
    "import time; started = time.perf_counter(); import node.app; "
    "print(time.perf_counter() - started)"
)


def _import_seconds() -> float:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_APP], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def _help_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([kpnet_command(), "--help"], capture_output=True, check=True)
    return time.perf_counter() - started


def _serve_seconds(data_dir: Path, port: int, log: Path) -> tuple[float, float]:
    """Wall seconds from spawn to ready, and the CPU seconds the process used by then."""
    started = time.perf_counter()
    serving = start_serve(data_dir, port, log, env={"KPNET_SENDER_ENABLED": "false"})
    try:
        serving.wait_ready(interval=POLL_SECONDS)
        wall = time.perf_counter() - started
        return wall, cpu_seconds(serving.process.pid) or 0.0
    finally:
        serving.stop()


def run_startup_bench(
    *, runs: int = 5, imports: int = 3, echo: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-") as tmp:
        port = free_port()
        data_dir = Path(tmp) / "CM"
        init_node(
            data_dir,
            node_id="CM",
            name="Bench node",
            url=f"http://127.0.0.1:{port}",
            now=datetime.now(UTC),
        )
        echo(f"timing {imports} imports of node.app and of kpnet --help…")
        import_times = [_import_seconds() for _ in range(imports)]
        help_times = [_help_seconds() for _ in range(imports)]
        echo(f"starting kpnet serve {runs} times…")
        measured = [_serve_seconds(data_dir, port, Path(tmp) / "serve.log") for _ in range(runs)]
    serve_times = [wall for wall, _ in measured]
    return {
        "runs": runs,
        "serve_to_healthz_median_s": round(statistics.median(serve_times), 3),
        "serve_to_healthz_max_s": round(max(serve_times), 3),
        "serve_to_healthz_s": [round(t, 3) for t in serve_times],
        "serve_cpu_to_healthz_median_s": round(statistics.median(cpu for _, cpu in measured), 3),
        "import_node_app_s": round(statistics.median(import_times), 3),
        "kpnet_help_s": round(statistics.median(help_times), 3),
    }
