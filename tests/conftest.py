"""Shared fixtures. Unit tests need nothing; integration tests get one real local platform
(Kafka + PostgreSQL) per test session, on free ports in a temporary state folder, so they never
touch a developer's own data and parallel sessions don't collide."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from psycopg import sql

from weatherpipe import platform
from weatherpipe.db.connection import connect
from weatherpipe.db.url import database_url
from weatherpipe.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
# Kafka's jars are shared by every test session (resolved once, under a file lock).
SHARED_KAFKA_LIB = REPO / ".weatherpipe" / "kafka" / "lib"


@pytest.fixture(autouse=True)
def _real_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit's AppTest runs its script as `__main__` and leaves it there; put the real one
    back after each test, or a process a later test spawns would run that script first."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def platform_overrides(state_dir: Path) -> dict[str, object]:
    """Settings for an isolated local platform under `state_dir` on fresh free ports."""
    return {
        "state_dir": state_dir,
        "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
        "kafka_controller_port": free_port(),
        "postgres_port": free_port(),
        "kafka_lib_dir": SHARED_KAFKA_LIB,
        "kafka_heap": "512m",
        "local_kafka": True,
        "database_url": None,
        "postgres_password": None,
    }


def changed(settings: Settings, **changes: object) -> Settings:
    """`settings` with `changes`, validated again as when the settings load."""
    return load_settings(**{**settings.model_dump(), **changes})


def settings_variables(settings: Settings) -> dict[str, str | None]:
    """Each setting's environment variable and the text that makes a process read `settings`
    (None: the variable must be unset)."""
    variables: dict[str, str | None] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            text = None
        elif hasattr(value, "get_secret_value"):
            text = value.get_secret_value()
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        variables[name.upper()] = text
    return variables


def as_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `weatherpipe` subprocess see the same settings."""
    env = dict(os.environ)
    for alias in ("PG_DSN", "RAW_ROOT"):  # the original project's names for two settings
        env.pop(alias, None)
    for key, text in settings_variables(settings).items():
        if text is None:
            env.pop(key, None)
        else:
            env[key] = text
    return env


@contextmanager
def running_platform(
    overrides: Callable[[Path], dict[str, object]], prefix: str
) -> Iterator[Settings]:
    """Settings of a local platform started in a fresh folder (`overrides(folder)`), stopped
    and removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    settings = load_settings(**overrides(state_dir))
    try:
        platform.up(settings)
        yield settings
    finally:
        platform.down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def platform_settings() -> Iterator[Settings]:
    """Settings of a running local platform, shared by the whole test session.

    Its folder is not under pytest's numbered temp folders: pytest deletes the older ones when
    a new session starts, which would pull the data out from under a session still running.
    """
    with running_platform(platform_overrides, "weatherpipe-test-") as settings:
        yield settings


@pytest.fixture(scope="session")
def pg_url(platform_settings: Settings) -> str:
    return database_url(platform_settings)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names for topics, groups and databases that no other test uses."""
    return lambda prefix: f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fresh_database(pg_url: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped after the test."""
    name = unique_name("test")
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = pg_url.rpartition("/")
    yield f"{base}/{name}"
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
