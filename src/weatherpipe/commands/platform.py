"""`weatherpipe platform up | down | status`: the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.settings import Settings

app = typer.Typer(
    help=(
        "Start, stop and inspect the local platform: Apache Kafka 4.1 (KRaft, jars from Maven "
        "Central) and an embedded PostgreSQL. PLATFORM_PROFILE=lab (default): one Kafka node "
        "over PLAINTEXT. PLATFORM_PROFILE=cluster: 3 controllers and 3 brokers with TLS, SCRAM "
        "logins and ACLs, and PostgreSQL requiring TLS. Data, logs and pid files live in "
        "STATE_DIR (default .weatherpipe/) and survive restarts. Services the settings point "
        "elsewhere (DATABASE_URL, a remote KAFKA_BOOTSTRAP_SERVERS) are used, never started."
    ),
    short_help="Start, stop and inspect the local Kafka and PostgreSQL.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def up(
    timeout: float | None = typer.Option(
        None,
        metavar="SECONDS",
        help="Seconds to wait for each service to answer (default STARTUP_TIMEOUT).",
    ),
) -> None:
    """Start Kafka and PostgreSQL and wait until they answer.

    Starts what is not running and waits until Kafka answers a metadata request and PostgreSQL
    answers SELECT 1. Running it again is a no-op."""
    from weatherpipe import platform as services
    from weatherpipe.ui.progress import activity

    settings = configure()
    start = time.monotonic()
    with activity("starting Kafka and PostgreSQL"):
        services.up(settings, timeout)
    say(("platform ready", "green"), f" in {time.monotonic() - start:.1f} s")
    _print_status(settings, as_json=False)


@app.command()
def down() -> None:
    """Stop the local services that `up` started.

    Found by their pid files; nothing else is touched. Their data stays in STATE_DIR."""
    from weatherpipe import platform as services
    from weatherpipe.ui.progress import activity

    settings = configure()
    with activity("stopping"):
        stopped = services.down(settings)
    for name, was_running in stopped.items():
        say(f"{name}: {'stopped' if was_running else 'was not running'}")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
) -> None:
    """Show each service's address and whether it answers.

    A service that does not even accept a TCP connection is reported without loading its
    client library. Exit status 0 when all answer, 1 when one does not (so scripts can wait
    on it)."""
    if not _print_status(configure(), as_json):
        raise typer.Exit(1)


def _print_cluster(kafka: dict[str, Any]) -> None:
    """Each node of the local cluster, and the KRaft quorum as its leader sees it."""
    voters = {v["node_id"]: v for v in (kafka["quorum"] or {}).get("voters", [])}
    for node in kafka["nodes"]:
        state = ("running", "green") if node["running"] else ("not running", "red")
        pid = f", pid {node['pid']}" if node["pid"] else ""
        role = node["role"]
        voter = voters.get(node["node_id"])
        if voter is not None:
            role = f"controller, {voter['status'].lower()}, lag {voter['lag']}"
        say(f"  node {node['node_id']:<4} ", state, f"  127.0.0.1:{node['port']}  ({role}{pid})")
    quorum = kafka["quorum"]
    if quorum is None:
        say("  quorum: no controller answered")
    else:
        leader = quorum["leader"] if quorum["leader"] is not None else "none"
        say(f"  quorum: leader {leader}, {len(voters)} voters")


def _print_status(settings: Settings, as_json: bool) -> bool:
    """Print the report; True when every service answers."""
    from weatherpipe import platform as services
    from weatherpipe.redact import masked

    report = services.status(settings).as_dict()
    all_running = all(bool(info["running"]) for info in report.values())
    if as_json:
        typer.echo(masked(json.dumps(report, indent=2)))
        return all_running
    kafka, pg = report["kafka"], report["postgres"]
    for name, info, address in (
        ("kafka", kafka, kafka["bootstrap_servers"]),
        ("postgres", pg, pg["url"]),
    ):
        if info["running"]:
            state = ("running", "green")
        elif info.get("problem"):
            state = ("refuses the login", "red")
        else:
            state = ("not running", "red")
        origin = "local" if info["managed"] else "external"
        pid = f", pid {info['pid']}" if info["pid"] and "nodes" not in info else ""
        say(f"{name:9} ", state, f"  {masked(str(address))}  ({origin}{pid})")
        if "nodes" in info:
            _print_cluster(info)
    for info in report.values():
        if info.get("problem"):
            say(masked(str(info["problem"])))
    if any(not info["running"] and not info.get("problem") for info in report.values()):
        say("`weatherpipe platform up` starts the local services.")
    return all_running
