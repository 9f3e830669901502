"""The API half of ``kpnet bench kyc``: the same labelled queries as local checks
(``POST /api/v1/kyc/checks``, scope ``local``) sent one after another to a ``kpnet serve``
process on the benchmark's node, with an officer's API token.

What is timed is the whole check as a client sees it: HTTP, authentication, candidate
lookup, the check and its audit entry committed, the answer read back and encoded. A
query counts as found when the true record is among the check's local hits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from ..config import Settings
from ..db.models import Licensee, Subject
from ..matching.index import parse_match_id
from ..readiness import ServeProcess
from ..runtime import open_node
from ..services.actors import Actor
from ..services.tokens import TokenService
from .ingest import _free_port
from .kyc_queries import LabelledQuery

SETUP = Actor("bench", "admin")
WARM_UP = 20


@dataclass
class ApiTimings:
    latencies: list[float]
    found: list[bool]


def _token_and_truths(
    settings: Settings, queries: Sequence[LabelledQuery]
) -> tuple[str, list[str | None]]:
    """An officer's API token, and the reference of each query's true record."""
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            _, secret = TokenService(session, SETUP, node.now()).create(
                name="bench officer", role="officer"
            )
            session.commit()
            wanted = [parse_match_id(q.truth)[:2] for q in queries]
            refs: dict[tuple[str, int], str] = {}
            for kind, model in (("licensee", Licensee), ("subject", Subject)):
                ids = sorted({record_id for k, record_id in wanted if k == kind})
                for start in range(0, len(ids), 500):
                    rows = session.execute(
                        select(model.id, model.ref).where(model.id.in_(ids[start : start + 500]))
                    )
                    refs.update({(kind, record_id): ref for record_id, ref in rows})
    finally:
        node.close()
    return secret, [refs.get(key) for key in wanted]


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


def time_api_checks(
    settings: Settings, queries: Sequence[LabelledQuery], work_dir: Path
) -> ApiTimings:
    """Each query as a local check through a served node, one after another."""
    secret, truths = _token_and_truths(settings, queries)
    port = _free_port()
    env = {**os.environ, "KPNET_SENDER_ENABLED": "false"}
    kpnet = str(Path(sys.executable).parent / "kpnet")
    log_path = work_dir / "serve.log"
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [kpnet, "serve", "--data-dir", str(settings.data_dir), "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        ServeProcess(server, base, log_path).wait_ready()
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for query in queries[:WARM_UP]:
                client.post("/api/v1/kyc/checks", json=check_body(query)).raise_for_status()
            latencies, found = [], []
            for query, truth in zip(queries, truths, strict=True):
                started = time.perf_counter()
                response = client.post("/api/v1/kyc/checks", json=check_body(query))
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                found.append(truth in {hit["reference"] for hit in response.json()["local"]})
    finally:
        server.terminate()
        server.wait(timeout=30)
    return ApiTimings(latencies, found)
