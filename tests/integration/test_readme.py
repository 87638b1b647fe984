"""The README is executable: its quick start and its by-hand flow, run as written in a fresh
clone, with a plain PATH (no ~/.local/bin, no activated virtualenv), on a small data set.

The clone is made from the repository's committed state, as a new user gets it. Only the ports
are set (free ones, so a platform already running on this machine is not disturbed) and the
size of the data set (ROWS / --rows 20000, as the README offers)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from weatherpipe.db.connection import connect
from weatherpipe.platform.processes import port_is_free
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROWS = 20_000
START_LIMIT = 900  # seconds: a fresh clone installs its virtualenv and Kafka's jars first


def readme_block(heading: str) -> list[str]:
    """The command lines of the first ```bash block after the paragraph starting `heading`."""
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.DOTALL)
    assert block is not None, f"no bash block after {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clone(user_env: dict[str, str]) -> Iterator[Path]:
    # Not under pytest's temp folders: pytest keeps their root at mode 700, which locks the
    # PostgreSQL server user (not root) out of the clone's virtualenv.
    parent = Path(tempfile.mkdtemp(prefix="weatherpipe-readme-"))
    dest = parent / "weatherpipe"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    yield dest
    # Whatever a failed step left running is stopped before its files go.
    if (dest / ".venv" / "bin" / "weatherpipe").exists():
        subprocess.run(
            [".venv/bin/weatherpipe", "platform", "down"], cwd=dest, env=user_env, check=False
        )
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("kafka", "controller", "postgres", "dashboard")}


@pytest.fixture(scope="module")
def user_env(ports: dict[str, int]) -> dict[str, str]:
    """The environment of a user's fresh shell: no weatherpipe setting, no virtualenv, no
    ~/.local/bin on the PATH; only the ports are chosen."""
    # The original project's names are read as aliases of two settings.
    settings_names = {name.upper() for name in Settings.model_fields} | {"PG_DSN", "RAW_ROOT"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in settings_names and key not in {"VIRTUAL_ENV", "UV", "PYTHONPATH"}
    }
    env["PATH"] = ":".join(
        entry
        for entry in env["PATH"].split(":")
        if entry and "/.local/bin" not in entry and "/.venv/" not in entry + "/"
    )
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=f"localhost:{ports['kafka']}",
        KAFKA_CONTROLLER_PORT=str(ports["controller"]),
        POSTGRES_PORT=str(ports["postgres"]),
        DASHBOARD_PORT=str(ports["dashboard"]),
    )
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for_dashboard(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT
    while not answers(f"http://127.0.0.1:{port}/_stcore/health"):
        assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no dashboard:\n{log.read_text()[-4000:]}"
        time.sleep(1)
    assert answers(f"http://127.0.0.1:{port}/")


def observations(clone: Path, port: int) -> int:
    password = (clone / ".weatherpipe" / "postgres" / "superuser.password").read_text().strip()
    url = f"postgresql://weatherpipe:{password}@127.0.0.1:{port}/weather_data"
    with connect(url) as conn:
        row = conn.execute("SELECT sum(observations)::bigint FROM daily_weather").fetchone()
    assert row is not None
    return int(row[0] or 0)


def secrets_of(clone: Path) -> list[str]:
    """Every password the platform generated (superuser, batch and dashboard logins)."""
    files = [clone / ".weatherpipe" / "postgres" / "superuser.password"]
    files += sorted((clone / ".weatherpipe" / "db").glob("*"))
    found = [f.read_text().strip() for f in files if f.is_file()]
    assert found, "no generated password found"
    return found


def wait_until_free(ports: list[int], limit: float = 90) -> list[int]:
    """The ports still listened on after up to `limit` seconds."""
    deadline = time.monotonic() + limit
    busy = list(ports)
    while busy and time.monotonic() < deadline:
        busy = [port for port in busy if not port_is_free(port)]
        time.sleep(0.5)
    return busy


def test_quick_start_then_by_hand_flow_as_written(
    clone: Path, user_env: dict[str, str], ports: dict[str, int], tmp_path: Path
) -> None:
    quick_start = readme_block("## Quick start")
    assert quick_start[0].startswith("make run ")
    readme = (REPO / "README.md").read_text()
    assert "`make run ROWS=20000`" in readme

    # Quick start: `make run` on a small data set serves the dashboard; SIGTERM stops it all.
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            ["make", "run", f"ROWS={ROWS}"],
            cwd=clone,
            env=user_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_dashboard(ports["dashboard"], run, log)
        assert observations(clone, ports["postgres"]) == ROWS
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(120)
    assert wait_until_free(list(ports.values())) == [], log.read_text()[-4000:]
    output = log.read_text()
    assert "Traceback" not in output
    for secret in secrets_of(clone):
        assert secret not in output

    # The by-hand flow, line by line as the README shows it, in a clone without state.
    subprocess.run(["rm", "-rf", ".weatherpipe", "data"], cwd=clone, check=True)
    lines = readme_block("The lab flow by hand")
    assert lines[:2] == ["make install", ". .venv/bin/activate"]
    activate = lines[1]
    for line in lines:
        command = line.split("#", 1)[0].strip()
        if command == activate:
            continue
        if command == "weatherpipe generate":
            command += f" --rows {ROWS}"  # the README's small data set, as in the quick start
        if command != "make install":
            command = f"{activate} && {command}"
        if command.endswith("weatherpipe dashboard"):
            assert observations(clone, ports["postgres"]) == ROWS
            dash_log = tmp_path / "dashboard.log"
            with dash_log.open("wb") as out:
                dashboard = subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=clone,
                    env=user_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                wait_for_dashboard(ports["dashboard"], dashboard, dash_log)
            finally:
                os.killpg(dashboard.pid, signal.SIGINT)  # Ctrl-C, as the README says
                dashboard.wait(60)
            continue
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            env=user_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, f"{line}\n{result.stderr}"
    assert wait_until_free(list(ports.values())) == []
