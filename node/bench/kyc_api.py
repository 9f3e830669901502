"""The API half of ``kpnet bench kyc``: the same labelled queries as local checks
(``POST /api/v1/kyc/checks``, scope ``local``) sent one after another to a ``kpnet serve``
process on the benchmark's node, with an officer's API token.

What is timed is the whole check as a client sees it: HTTP, authentication, candidate
lookup, the check and its audit entry committed, the answer encoded. A query counts as
found when the true record is among the check's local hits. The benchmark alternates
each query's check with its index lookup, so that both see the same load on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Licensee, Subject
from ..matching.index import parse_match_id
from ..readiness import ServeProcess, free_port
from ..runtime import Node
from ..services.actors import Actor
from ..services.tokens import TokenService
from .kyc_queries import LabelledQuery

SETUP = Actor("bench", "admin")
CHECKS = "/api/v1/kyc/checks"


def check_body(query: LabelledQuery) -> dict[str, Any]:
    """The request of a local check for ``query``, as an officer's client sends it."""
    party: dict[str, Any] = {"kind": query.kind, "names": query.names}
    if query.date_of_birth:
        party["date_of_birth"] = query.date_of_birth
    if query.nationality:
        party["nationality"] = query.nationality
    if query.documents:
        party["documents"] = [{"type": "passport", "number": d} for d in query.documents]
    return {"party": party, "purpose": "benchmark", "scope": "local", "max_results": 10}


def true_references(session: Session, queries: Sequence[LabelledQuery]) -> list[str | None]:
    """The reference of each query's true record, as a check's hits name it."""
    wanted = [parse_match_id(q.truth)[:2] for q in queries]
    refs: dict[tuple[str, int], str] = {}
    for kind, model in (("licensee", Licensee), ("subject", Subject)):
        ids = sorted({record_id for k, record_id in wanted if k == kind})
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(model.id, model.ref).where(model.id.in_(ids[start : start + 500]))
            )
            refs.update({(kind, record_id): ref for record_id, ref in rows})
    return [refs.get(key) for key in wanted]


class ServedChecks:
    """A ``kpnet serve`` process on the benchmark's node and an officer's client for
    it, from ``with`` to its end."""

    def __init__(self, node: Node, work_dir: Path) -> None:
        self.node, self.work_dir = node, work_dir

    def __enter__(self) -> ServedChecks:
        with self.node.sessions() as session:
            _, secret = TokenService(session, SETUP, self.node.now()).create(
                name="bench officer", role="officer"
            )
            session.commit()
        port = free_port()
        env = {**os.environ, "KPNET_SENDER_ENABLED": "false"}
        kpnet = str(Path(sys.executable).parent / "kpnet")
        data_dir = str(self.node.settings.data_dir)
        log_path = self.work_dir / "serve.log"
        with log_path.open("ab") as log:
            self.server = subprocess.Popen(
                [kpnet, "serve", "--data-dir", data_dir, "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            ServeProcess(self.server, base, log_path).wait_ready()
        except BaseException:
            self._stop()
            raise
        headers = {"Authorization": f"Bearer {secret}"}
        self.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        return self

    def check(self, query: LabelledQuery) -> tuple[float, set[str]]:
        """Seconds a local check of ``query`` took, and the references of its hits."""
        started = time.perf_counter()
        response = self.client.post(CHECKS, json=check_body(query))
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, {hit["reference"] for hit in response.json()["local"]}

    def __exit__(self, *_: object) -> None:
        self.client.close()
        self._stop()

    def _stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)
