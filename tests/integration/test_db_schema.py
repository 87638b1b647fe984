"""The processed zone's schema: migrations apply once, and the two login roles can do exactly
what they should."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import changed
from tests.weather_rawzone import write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.migrate import available, current_version, migrate
from weatherpipe.db.roles import reader_url, writer_url
from weatherpipe.db.setup import prepare_database
from weatherpipe.db.url import database_url
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def db_settings(platform_settings: Settings, url: str) -> Settings:
    return changed(platform_settings, database_url=url)


def test_migrations_apply_once_and_record_their_versions(fresh_database: str) -> None:
    newest = available()[-1].version
    assert migrate(fresh_database) == [m.version for m in available()]
    assert migrate(fresh_database) == []
    with connect(fresh_database) as conn:
        assert current_version(conn) == newest
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'daily_weather' ORDER BY ordinal_position"
            )
        ]
    assert columns == [
        "location",
        "day",
        "observations",
        "avg_temperature_c",
        "avg_humidity_pct",
        "avg_wind_speed_kmh",
        "total_precipitation_mm",
        "avg_precipitation_mm",
        "min_temperature_c",
        "max_temperature_c",
    ]


def test_reader_can_only_select_and_writer_can_write(
    platform_settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    settings = db_settings(platform_settings, fresh_database)
    prepare_database(settings)
    prepare_database(settings)  # idempotent
    with connect(writer_url(settings)) as conn:
        run_id = conn.execute(
            "INSERT INTO batch_run (engine, mode) VALUES ('duckdb', 'full') RETURNING id"
        ).fetchone()
        assert run_id is not None
    with connect(reader_url(settings)) as conn:
        assert conn.execute("SELECT count(*) FROM batch_run").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM daily_weather").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM batch_run")
    with connect(writer_url(settings)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DROP TABLE daily_aggregate")
    assert "weatherpipe_dashboard" in reader_url(settings)


def _refused(url: str) -> str:
    """The server's answer to a login it refuses."""
    with pytest.raises(psycopg.OperationalError) as info:
        connect(url).close()
    return str(info.value)


def _on(url: str, database: str) -> str:
    return f"{url.rpartition('/')[0]}/{database}"


def test_logins_reach_only_their_own_database(
    platform_settings: Settings,
    fresh_database: str,
    pg_url: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    ours = changed(platform_settings, database_url=fresh_database, raw_dir=tmp_path / "raw")
    # Another deployment on the same server, with logins of its own.
    other_name = unique_name("other")
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other_name)))
    try:
        other = load_settings(
            **{
                **platform_settings.model_dump(),
                "database_url": _on(pg_url, other_name),
                "batch_db_user": unique_name("batch"),
                "dashboard_db_user": unique_name("dashboard"),
            }
        )
        prepare_database(other)
        write(ours.raw_dir, ours.kafka_topic, cities=("Dallas",), days=2, per_day=3)
        summary = run_once(ours)  # prepares the database, then writes as the batch's login
        assert summary.rejected == 2
        with connect(reader_url(ours)) as conn:
            assert conn.execute("SELECT sum(observations) FROM daily_weather").fetchone() == (6,)

        for url in (reader_url(ours), writer_url(ours)):
            assert "CONNECT privilege" in _refused(_on(url, other_name))
        for url in (reader_url(other), writer_url(other)):
            assert "CONNECT privilege" in _refused(_on(url, fresh_database.rpartition("/")[2]))
        with connect(reader_url(other)) as conn:
            assert conn.execute("SELECT count(*) FROM daily_weather").fetchone() == (0,)
    finally:
        with connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(other_name)
                )
            )


def test_on_the_local_server_the_logins_reach_neither_postgres_nor_template1(
    platform_settings: Settings,
) -> None:
    prepare_database(platform_settings)  # local mode: no DATABASE_URL
    for url in (reader_url(platform_settings), writer_url(platform_settings)):
        for database in ("postgres", "template1"):
            assert "CONNECT privilege" in _refused(_on(url, database))
    count = "SELECT count(*) FROM daily_aggregate"
    with connect(database_url(platform_settings)) as conn:
        stored = conn.execute(count).fetchone()
    with connect(reader_url(platform_settings)) as conn:
        assert conn.execute(count).fetchone() == stored
