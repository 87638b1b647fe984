"""The real `weatherpipe` command, run as a user runs it: what it prints.

User data is printed as written (no Rich markup, no emoji codes), no password reaches any
output, help fits 80 columns, and `--help` loads none of the heavy libraries. Nothing needs to
be running: a command that would talk to Kafka or PostgreSQL is pointed at a closed port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import weatherpipe
from tests.conftest import free_port

PASSWORD = "Distinct-Pw-4711"
HEADER = "Location,Date_Time,Temperature_C,Humidity_pct,Precipitation_mm,Wind_Speed_kmh"
HEAVY = ("confluent_kafka", "duckdb", "psycopg", "pyarrow", "streamlit", "numpy")
TYPE_LABEL = re.compile(r"<(bool|str|int|float|path|text|int range|float range)>", re.IGNORECASE)
SUBCOMMANDS = [
    [],
    ["settings"],
    ["generate"],
    ["produce"],
    ["consume"],
    ["batch"],
    ["run"],
    ["serve"],
    ["dashboard"],
    ["platform"],
    ["platform", "up"],
    ["platform", "down"],
    ["platform", "status"],
]


def weatherpipe_cli(
    cwd: Path, *args: str, python: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """`weatherpipe ARGS` in `cwd` (no .env there), with these settings in the environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "LOG_LEVEL"}}
    return subprocess.run(
        [sys.executable, *python, "-m", "weatherpipe", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def closed_platform(tmp_path: Path) -> dict[str, str]:
    """Settings whose Kafka and PostgreSQL ports have nothing listening."""
    return {
        "STATE_DIR": str(tmp_path / "state"),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "POSTGRES_PORT": str(free_port()),
    }


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- user data printed as written ---------------------------------------------------------


def test_a_csv_path_that_looks_like_markup_is_named_as_written(tmp_path: Path) -> None:
    done = weatherpipe_cli(tmp_path, "produce", "--csv", "data/[/x]a.csv")

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "MarkupError" not in done.stderr
    message = one_line(done.stderr)
    assert message.startswith("error: data/[/x]a.csv: no such file."), message
    assert "weatherpipe generate" in message  # says what to do next


def test_a_csv_header_with_markup_and_emoji_codes_is_quoted_as_written(tmp_path: Path) -> None:
    csv = tmp_path / "[bold]weather.csv"
    csv.write_text("Location,:x:,[red]Temperature_C[/red]\nBerlin,1,2\n")

    done = weatherpipe_cli(tmp_path, "produce", "--csv", str(csv))

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    message = one_line(done.stderr)
    assert f"error: {csv}, line 1: wrong header" in message
    assert "':x:'" in message
    assert "'[red]Temperature_C[/red]'" in message
    assert "❌" not in done.stderr


def test_a_generated_file_with_markup_in_its_name_is_reported_as_written(tmp_path: Path) -> None:
    out = tmp_path / "[green]city :x: [/].csv"

    done = weatherpipe_cli(tmp_path, "generate", "--rows", "20", "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert f"wrote 20 rows (0.0 MB) to {out} in" in one_line(done.stderr)
    assert out.read_text().startswith(HEADER)


# --- no password in any output --------------------------------------------------------------


def test_settings_table_masks_every_password(tmp_path: Path) -> None:
    done = weatherpipe_cli(
        tmp_path,
        "settings",
        COLUMNS="400",
        DATABASE_URL=f"postgresql://report:{PASSWORD}@db.example:5432/weather",
        POSTGRES_PASSWORD=PASSWORD + "-admin",
        DASHBOARD_DB_PASSWORD=PASSWORD + "-reader",
    )

    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "postgresql://report:***@db.example:5432/weather" in done.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _table(done)}
    assert rows["POSTGRES_PASSWORD"] == "***"
    assert rows["DASHBOARD_DB_PASSWORD"] == "***"
    assert rows["BATCH_DB_PASSWORD"] == ""  # unset stays visibly unset


def _table(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.count("│") == 4]


def test_settings_json_masks_every_password(tmp_path: Path) -> None:
    done = weatherpipe_cli(
        tmp_path,
        "settings",
        "--json",
        DATABASE_URL=f"postgresql://report@db.example/weather?password={PASSWORD}&sslmode=require",
        BATCH_DB_PASSWORD=PASSWORD,
    )

    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    values = json.loads(done.stdout)
    assert values["DATABASE_URL"] == (
        "postgresql://report@db.example/weather?password=***&sslmode=require"
    )
    assert values["BATCH_DB_PASSWORD"] == "***"
    assert values["POSTGRES_PASSWORD"] is None
    assert values["LOG_LEVEL"] == "WARNING"


def test_an_invalid_database_url_is_named_without_its_password(tmp_path: Path) -> None:
    done = weatherpipe_cli(
        tmp_path, "platform", "status", DATABASE_URL=f"mysql://report:{PASSWORD}@db/weather"
    )

    assert done.returncode == 2
    assert PASSWORD not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    message = one_line(done.stderr)
    assert (
        "DATABASE_URL='mysql://report:***@db/weather' (set as DATABASE_URL or PG_DSN): "
        "Value error, must start with" in message
    )


def test_platform_status_masks_an_external_database_password(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://report:{PASSWORD}@127.0.0.1:{port}/weather"
    env = {**closed_platform(tmp_path), "DATABASE_URL": url}

    as_json = weatherpipe_cli(tmp_path, "platform", "status", "--json", **env)
    as_text = weatherpipe_cli(tmp_path, "platform", "status", **env)

    for done in (as_json, as_text):
        assert done.returncode == 1, done.stderr  # nothing answers
        assert PASSWORD not in done.stdout + done.stderr
    report = json.loads(as_json.stdout)
    assert report["postgres"] == {
        "url": f"postgresql://report:***@127.0.0.1:{port}/weather",
        "managed": False,
        "running": False,
        "pid": None,
        "problem": None,
    }
    assert f"postgres  not running  postgresql://report:***@127.0.0.1:{port}/weather" in (
        as_text.stderr
    )


# --- version and help -----------------------------------------------------------------------


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    done = weatherpipe_cli(tmp_path, "--version")

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"weatherpipe {version('weatherpipe')}\n"
    assert version("weatherpipe") == weatherpipe.__version__


def test_top_level_help_is_short_and_fits_80_columns(tmp_path: Path) -> None:
    done = weatherpipe_cli(tmp_path, "--help")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 25, done.stdout
    assert max(len(line) for line in lines) <= 80
    assert not TYPE_LABEL.search(done.stdout), done.stdout
    commands = lines[lines.index("Commands:") + 1 :]
    # One line per command, its summary whole (click marks a cut one with "...").
    assert len(commands) == 10
    assert not any(line.endswith("...") for line in commands), commands


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: " ".join(a) or "weatherpipe")
def test_every_help_fits_80_columns_without_type_labels(tmp_path: Path, args: list[str]) -> None:
    done = weatherpipe_cli(tmp_path, *args, "--help")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: weatherpipe {' '.join(args)}".rstrip())
    assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout
    assert not TYPE_LABEL.search(done.stdout), done.stdout


def test_help_text_with_brackets_is_shown_as_written(tmp_path: Path) -> None:
    done = weatherpipe_cli(tmp_path, "batch", "--help")

    text = one_line(done.stdout)
    assert "needs `weatherpipe[spark]`" in text
    assert "Spark master for --engine spark: local[*]," in text


# --- start-up imports -----------------------------------------------------------------------


def imported_modules(done: subprocess.CompletedProcess[str]) -> set[str]:
    """Module names from `python -X importtime` output."""
    return {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    done = weatherpipe_cli(tmp_path, "--help", python=("-X", "importtime"))

    assert done.returncode == 0
    modules = imported_modules(done)
    assert "typer" in modules  # the probe sees imports at all
    assert [m for m in (*HEAVY, "pydantic_settings", "rich") if m in modules] == []


def test_status_of_a_platform_that_is_down_loads_no_client(tmp_path: Path) -> None:
    done = weatherpipe_cli(
        tmp_path,
        "platform",
        "status",
        "--json",
        python=("-X", "importtime"),
        **closed_platform(tmp_path),
    )

    assert done.returncode == 1  # nothing answers
    report = json.loads(done.stdout)
    assert (report["kafka"]["running"], report["postgres"]["running"]) == (False, False)
    modules = imported_modules(done)
    assert "pydantic_settings" in modules  # the probe sees the settings being read
    assert [m for m in HEAVY if m in modules] == []
