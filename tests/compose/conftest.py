"""Fixtures of the compose suite: podman configured, the stand-in images and the project's own
image built, and the figures of the run (printed at the end and kept in the state folder)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.compose import standins
from tests.compose.podman import STATE, Podman
from tests.compose.stack import Stack, isolated_settings, write_env_file

ROWS = 50_000
"""Rows of the data set the `generate` service writes (ROWS in compose.env)."""

FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    lines = [f"{name}: {value}" for name, value in FIGURES.items()]
    terminalreporter.write_sep("-", "docker-compose.yml under podman: figures")
    for line in lines:
        terminalreporter.write_line(line)
    (STATE / "figures.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def podman() -> Podman:
    return Podman.configured()


@pytest.fixture(scope="session")
def images(podman: Podman) -> None:
    """The stand-ins (built once, then reused) and weatherpipe's image from the Dockerfile
    (rebuilt each session, so it holds the code under test; unchanged layers are reused)."""
    started = time.monotonic()
    built = standins.ensure_all(podman)
    FIGURES["stand-in images built"] = (
        ", ".join(f"{name} {seconds:.0f} s" for name, seconds in built.items()) or "all cached"
    )
    FIGURES["stand-in images, total"] = f"{time.monotonic() - started:.0f} s"
    before = podman.run("image", "inspect", "--format", "{{.Id}}", "weatherpipe:local", check=False)
    started = time.monotonic()
    with new_stack(podman, "build") as stack:
        stack.compose("build", "generate")
    FIGURES["weatherpipe image built (Dockerfile)"] = f"{time.monotonic() - started:.0f} s"
    now = podman.run("image", "inspect", "--format", "{{.Id}}", "weatherpipe:local")
    if before.returncode == 0 and now.stdout != before.stdout:
        podman.run("rmi", before.stdout.strip(), check=False)  # the last session's, untagged


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The folder mounted as /data (DATA_DIR): the `generate` service writes the CSV here."""
    folder = STATE / f"data-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def new_stack(podman: Podman, purpose: str, data: Path | None = None) -> Iterator[Stack]:
    """A compose project of its own (name, env file, free ports), taken down with its volumes
    at the end."""
    project = f"wpcompose-{purpose}-{uuid.uuid4().hex[:6]}"
    env_file = STATE / f"{project}.env"
    settings = write_env_file(env_file, isolated_settings(data or STATE / "unused", ROWS))
    stack = Stack(podman, project, env_file, settings)
    try:
        yield stack
    finally:
        try:
            stack.down()
        finally:
            env_file.unlink(missing_ok=True)
