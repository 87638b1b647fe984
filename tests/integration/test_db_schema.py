"""The processed zone's schema: migrations apply once, and the two login roles can do exactly
what they should."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from weatherpipe.db.connection import connect
from weatherpipe.db.migrate import available, current_version, migrate
from weatherpipe.db.roles import reader_url, writer_url
from weatherpipe.db.setup import prepare_database
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def db_settings(platform_settings: Settings, url: str) -> Settings:
    return load_settings(**{**platform_settings.model_dump(), "database_url": url})


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
