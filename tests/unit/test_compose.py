"""docker-compose.yml can't be run here (no Docker engine), so it is checked statically: against
the Compose specification's JSON schema, and every service command against the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.exceptions import TyperException

from weatherpipe.cli import app

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def resolve(argv: list[str]) -> Any:
    """Parse `argv` as the weatherpipe CLI would, without running it; raises on an unknown
    subcommand or option."""
    command = typer.main.get_command(app)
    ctx = command.make_context("weatherpipe", list(argv))
    while hasattr(command, "resolve_command"):  # a group: descend into the subcommand
        name, sub, rest = command.resolve_command(ctx, ctx._protected_args + ctx.args)
        assert sub is not None, f"unknown subcommand in {argv}"
        ctx = sub.make_context(name or "", rest, parent=ctx)
        command = sub
    return command


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_the_seed_services() -> None:
    services = compose()["services"]
    assert {"kafka", "akhq", "postgres", "producer", "consumer", "batch", "dashboard"} <= set(
        services
    )
    assert services["batch"]["profiles"] == ["batch"]
    assert "8080:8080" in services["akhq"]["ports"]
    assert "8501:8501" in services["dashboard"]["ports"]
    assert "raw:/raw:ro" in services["batch"]["volumes"]  # the batch never writes the raw zone
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]


@pytest.mark.parametrize(
    "service", [name for name, s in compose()["services"].items() if "command" in s]
)
def test_every_service_command_is_a_real_weatherpipe_subcommand(service: str) -> None:
    command = compose()["services"][service]["command"]
    assert command[0] == "weatherpipe"
    resolved = resolve(command[1:])
    assert resolved.callback is not None


def test_the_resolver_rejects_what_the_cli_rejects() -> None:
    with pytest.raises(TyperException, match="No such"):
        resolve(["no-such-command"])
    with pytest.raises(TyperException, match="No such"):
        resolve(["platform", "status", "--no-such-option"])
    assert resolve(["platform", "status", "--json"]).name == "status"
