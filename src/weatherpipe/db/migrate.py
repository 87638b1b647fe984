"""Versioned schema migrations: numbered plain SQL files applied in order, each exactly once.

`migrations/NNNN_<what>.sql` files are applied by number; `schema_version` records each one.
All pending files are applied in ONE transaction under an advisory lock, so two processes
migrating at once apply each file once, and a failing file leaves the schema as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from weatherpipe.db.connection import connect
from weatherpipe.errors import TerminalError

# Key of the advisory lock that serialises migrations of one database ("wpmigr" in ASCII).
MIGRATION_LOCK = 0x7770_6D69_6772
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(TerminalError):
    """A migration file failed; the database is left at its previous version."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migration files shipped with weatherpipe, by version."""
    found = []
    for entry in (resources.files("weatherpipe.db") / "migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"Two migration files share a version number: {versions}.")
    return found


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied version, 0 for a database never migrated."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(url: str) -> list[int]:
    """Bring the database at `url` to the newest schema; returns the versions applied now."""
    applied: list[int] = []
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = current_version(conn)
        for migration in available():
            if migration.version <= done:
                continue
            try:
                conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                raise MigrationError(
                    f"Migration {migration.version:04d}_{migration.name}.sql failed: "
                    f"{exc}. Nothing was changed; fix the database or the file and rerun."
                ) from exc
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration.version)
    return applied
