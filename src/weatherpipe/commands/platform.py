"""`weatherpipe platform up | down | status`: the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from weatherpipe.settings import Settings, load_settings

app = typer.Typer(
    help=(
        "Start, stop and inspect the local platform: Apache Kafka 4.1 (KRaft, jars from Maven "
        "Central) and an embedded PostgreSQL. PLATFORM_PROFILE=lab (default): one Kafka node "
        "over PLAINTEXT. PLATFORM_PROFILE=cluster: 3 controllers and 3 brokers with TLS, SCRAM "
        "logins and ACLs, and PostgreSQL requiring TLS. Data, logs and pid files live in "
        "STATE_DIR (default .weatherpipe/) and survive restarts. Services the settings point "
        "elsewhere (DATABASE_URL, a remote KAFKA_BOOTSTRAP_SERVERS) are used, never started."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True, soft_wrap=True)


@app.command()
def up(
    timeout: float | None = typer.Option(
        None, help="Seconds to wait for each service to answer (default STARTUP_TIMEOUT)."
    ),
) -> None:
    """Start what is not running and wait until Kafka answers a metadata request and
    PostgreSQL answers SELECT 1. Running it again is a no-op."""
    from weatherpipe import platform as services  # heavy: Kafka and PostgreSQL clients

    settings = load_settings()
    start = time.monotonic()
    with console.status("Starting Kafka and PostgreSQL…"):
        services.up(settings, timeout)
    console.print(f"[green]platform ready[/] in {time.monotonic() - start:.1f} s")
    _print_status(settings, as_json=False)


@app.command()
def down() -> None:
    """Stop the local services that `up` started (found by their pid files), nothing else.
    Their data stays in STATE_DIR."""
    from weatherpipe import platform as services  # heavy: Kafka and PostgreSQL clients

    settings = load_settings()
    with console.status("Stopping…"):
        stopped = services.down(settings)
    for name, was_running in stopped.items():
        console.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
) -> None:
    """Show each service's address and whether it answers. Exit status 0 when all answer,
    1 when one does not (so scripts can wait on it)."""
    if not _print_status(load_settings(), as_json):
        raise typer.Exit(1)


def _print_cluster(kafka: dict[str, Any]) -> None:
    """Each node of the local cluster, and the KRaft quorum as its leader sees it."""
    voters = {v["node_id"]: v for v in (kafka["quorum"] or {}).get("voters", [])}
    for node in kafka["nodes"]:
        state = "[green]running[/]" if node["running"] else "[red]not running[/]"
        pid = f", pid {node['pid']}" if node["pid"] else ""
        role = node["role"]
        voter = voters.get(node["node_id"])
        if voter is not None:
            role = f"controller, {voter['status'].lower()}, lag {voter['lag']}"
        console.print(
            f"  node {node['node_id']:<4} {state}  127.0.0.1:{node['port']}  ({role}{pid})",
            highlight=False,
        )
    quorum = kafka["quorum"]
    if quorum is None:
        console.print("  quorum: no controller answered", highlight=False)
    else:
        leader = quorum["leader"] if quorum["leader"] is not None else "none"
        console.print(f"  quorum: leader {leader}, {len(voters)} voters", highlight=False)


def _print_status(settings: Settings, as_json: bool) -> bool:
    """Print the report; True when every service answers."""
    from weatherpipe import platform as services

    report = services.status(settings).as_dict()
    all_running = all(bool(info["running"]) for info in report.values())
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return all_running
    kafka, pg = report["kafka"], report["postgres"]
    for name, info, address in (
        ("kafka", kafka, kafka["bootstrap_servers"]),
        ("postgres", pg, pg["url"]),
    ):
        if info["running"]:
            state = "[green]running[/]"
        elif info.get("problem"):
            state = "[red]refuses the login[/]"
        else:
            state = "[red]not running[/]"
        origin = "local" if info["managed"] else "external"
        pid = f", pid {info['pid']}" if info["pid"] and "nodes" not in info else ""
        console.print(f"{name:9} {state}  {escape(str(address))}  ({origin}{pid})")
        if "nodes" in info:
            _print_cluster(info)
    for info in report.values():
        if info.get("problem"):
            console.print(str(info["problem"]), markup=False, highlight=False)
    if any(not info["running"] and not info.get("problem") for info in report.values()):
        console.print("`weatherpipe platform up` starts the local services.", highlight=False)
    return all_running
