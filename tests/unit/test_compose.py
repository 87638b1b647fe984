"""docker-compose.yml checked statically, in seconds: against the Compose specification's JSON
schema, and every service command against the real CLI (tests/compose runs it for real)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.exceptions import TyperException

from weatherpipe.cli import app
from weatherpipe.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def with_defaults(text: str) -> str:
    """`text` as Compose substitutes it when no variable is set: ${NAME:-default} -> default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


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
    assert "8080:8080" in map(with_defaults, services["akhq"]["ports"])
    assert "8501:8501" in map(with_defaults, services["dashboard"]["ports"])
    assert "raw:/raw:ro" in services["batch"]["volumes"]  # the batch never writes the raw zone
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]


@pytest.mark.parametrize(
    "service", [name for name, s in compose()["services"].items() if "command" in s]
)
def test_every_service_command_is_a_real_weatherpipe_subcommand(service: str) -> None:
    # Compose substitutes ${NAME:-default} before the command runs; take the default.
    command = [with_defaults(arg) for arg in compose()["services"][service]["command"]]
    assert command[0] == "weatherpipe"
    resolved = resolve(command[1:])
    assert resolved.callback is not None


def test_the_resolver_rejects_what_the_cli_rejects() -> None:
    with pytest.raises(TyperException, match="No such"):
        resolve(["no-such-command"])
    with pytest.raises(TyperException, match="No such"):
        resolve(["platform", "status", "--no-such-option"])
    assert resolve(["platform", "status", "--json"]).name == "status"


def test_compose_settings_live_in_their_own_file_that_local_mode_never_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = (REPO / "compose.env.example").read_text()
    defined = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    used = set(re.findall(r"\$\{([A-Z_]+)[:?}-]", COMPOSE.read_text()))
    # Every variable the compose file needs without a default is in the example file.
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required <= defined, required - defined
    assert "POSTGRES_PASSWORD" in used
    assert not (REPO / ".env.example").exists()

    # Local mode run from the repository folder with a filled-in compose.env sees none of it.
    monkeypatch.chdir(tmp_path)
    for name in defined:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "compose.env").write_text(example)
    settings = load_settings()
    assert settings.postgres_password is None
    assert settings.batch_db_password is None


def test_compose_makes_the_data_set_and_shows_the_raw_zone_to_the_dashboard() -> None:
    services = compose()["services"]
    assert services["generate"]["command"][:3] == ["weatherpipe", "generate", "--if-missing"]
    assert "./data:/data" in map(with_defaults, services["generate"]["volumes"])
    assert services["producer"]["depends_on"]["generate"] == {
        "condition": "service_completed_successfully"
    }
    assert "raw:/raw:ro" in services["dashboard"]["volumes"]


def test_generate_if_missing_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "weather.csv"
    target.write_text("mine\n")
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "generate", "--if-missing", "--out", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "mine\n"
    assert "exists already" in result.stderr

    fresh = tmp_path / "new.csv"
    args = ["generate", "--if-missing", "--rows", "50", "--out", str(fresh)]
    subprocess.run([sys.executable, "-m", "weatherpipe", *args], check=True, capture_output=True)
    assert len(fresh.read_text().splitlines()) == 51
