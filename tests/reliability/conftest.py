"""Fixtures of the reliability tests: a Kafka broker or a PostgreSQL server of a test module's
own, which the module stops, kills and restarts (the session's shared platform must not see
that)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import platform_overrides
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.settings import Settings, load_settings


@contextmanager
def own_service(service: type[LocalKafka | LocalPostgres], prefix: str) -> Iterator[Settings]:
    """Settings of an isolated platform in a fresh folder on free ports, with `service`
    started; stopped and its folder removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    settings = load_settings(**platform_overrides(state_dir))
    running = service(settings)
    try:
        running.start(settings.startup_timeout)
        yield settings
    finally:
        running.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def own_broker() -> Iterator[Settings]:
    """A Kafka broker of the test module's own (settings of an isolated platform)."""
    with own_service(LocalKafka, "weatherpipe-broker-") as settings:
        yield settings


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Settings]:
    """A PostgreSQL server of the test module's own (settings of an isolated platform)."""
    with own_service(LocalPostgres, "weatherpipe-pg-") as settings:
        yield settings
