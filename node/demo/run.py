"""``kpnet demo``: set up the three nodes, play the scenario, then keep serving (or,
with ``--once``, exit with the scenario's verdict)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from .network import DemoError, DemoNode, create_nodes, seed
from .records import NODES
from .scenario import Story, play


def run_demo(
    *, once: bool, data_dir: Path | None, first_port: int, console: Console | None = None
) -> int:
    console = console or Console()
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise DemoError(f"{data_dir} is not empty; give the demo an empty or new directory")
    base = data_dir or Path(tempfile.mkdtemp(prefix="kpnet-demo-"))
    nodes: list[DemoNode] = []
    try:
        with console.status("Creating three national nodes and peering them…"):
            nodes = create_nodes(base, first_port)
        console.print(
            f"Nodes {', '.join(NODES)} created in {base}; each admitted the others' "
            "cards after checking their fingerprints."
        )
        with console.status("Starting the nodes and loading invented records…"):
            for node in nodes:
                node.spawn()
            for node in nodes:
                node.wait_ready()
            loaded = {node.node_id: seed(node) for node in nodes}
        console.print(
            "Records loaded: "
            + ", ".join(f"{k} {v}" for k, v in loaded.items())
            + " (all invented)."
        )
        story = Story({node.node_id: node for node in nodes}, console)
        held = play(story)
        passed = sum(ok for _, ok in story.outcomes)
        console.rule()
        verdict = "[green]every step held[/green]" if held else "[red]a step failed[/red]"
        console.print(f"Scenario: {passed}/{len(story.outcomes)} checks passed; {verdict}.")
        if once:
            return 0 if held else 1
        _show_access(console, nodes)
        console.print("Serving until Ctrl-C.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("Stopping.")
        return 0 if held else 1
    finally:
        for node in nodes:
            node.stop()
        if data_dir is None:
            shutil.rmtree(base, ignore_errors=True)


def _show_access(console: Console, nodes: list[DemoNode]) -> None:
    console.print("[bold]The demo nodes[/bold] (each token is an analyst's):")
    for node in nodes:
        console.print(f"  {node.node_id}  {NODES[node.node_id]}")
        for label, value in (
            ("URL", f"{node.url}  (API docs: {node.url}/docs)"),
            ("token", node.tokens["analyst"]),
            ("logs", str(node.log)),
        ):
            console.print(f"      {label:<6} {value}", soft_wrap=True, highlight=False)
    console.print("Try: curl -H 'Authorization: Bearer TOKEN' URL/api/v1/alerts", soft_wrap=True)
