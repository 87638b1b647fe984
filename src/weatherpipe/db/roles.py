"""The login roles: the batch writes as one, the dashboard reads as another that can only SELECT.

Their privileges come from the group roles `weatherpipe_writer` and `weatherpipe_reader` that the
migrations create and grant; here we create the login roles (names and passwords from settings)
and make them members. Unset passwords are generated once and kept in STATE_DIR/db (mode 600),
like the embedded server's superuser password.

A database weatherpipe migrates lets no role connect by default (migration 0004); the two logins
are granted CONNECT on it here, by name, so they reach their own database and no other one: not
another deployment's, and on the embedded server not `postgres` or `template1` either.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from weatherpipe.db.connection import connect
from weatherpipe.db.url import database_url
from weatherpipe.passwords import kept_password
from weatherpipe.settings import Settings

WRITER_GROUP = "weatherpipe_writer"
READER_GROUP = "weatherpipe_reader"
# Serialises role updates of one database's users; roles are server-wide, so a run against
# another database may still create the same role at the same moment (handled below).
ROLES_LOCK = 0x7770_726F_6C65
# The databases `initdb` creates next to ours on the embedded server; nobody but its superuser
# needs them (template0 already refuses every connection).
SERVER_DATABASES = ("postgres", "template1")


def _password(settings: Settings, user: str, configured: str | None) -> str:
    if configured is not None:
        return configured
    return kept_password(Path(settings.state_dir).resolve() / "db" / f"{user}.password")


def writer_credentials(settings: Settings) -> tuple[str, str]:
    """(user, password) of the batch's login role."""
    secret = settings.batch_db_password
    value = secret.get_secret_value() if secret is not None else None
    return settings.batch_db_user, _password(settings, settings.batch_db_user, value)


def reader_credentials(settings: Settings) -> tuple[str, str]:
    """(user, password) of the dashboard's SELECT-only login role."""
    secret = settings.dashboard_db_password
    value = secret.get_secret_value() if secret is not None else None
    return settings.dashboard_db_user, _password(settings, settings.dashboard_db_user, value)


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def writer_url(settings: Settings) -> str:
    """URL the batch writes with: DATABASE_URL's server and database, the writer's login."""
    return _with_user(database_url(settings), *writer_credentials(settings))


def reader_url(settings: Settings) -> str:
    """URL the dashboard reads with: DATABASE_URL's server and database, the reader's login."""
    return _with_user(database_url(settings), *reader_credentials(settings))


def ensure_roles(settings: Settings, admin_url: str | None = None) -> None:
    """Create or update the two login roles (password included) and their group membership.

    Needs an administrator's URL (default: `database_url(settings)`) and the
    migrations applied (they create the groups). Idempotent."""
    url = admin_url or database_url(settings)
    logins = (
        (*writer_credentials(settings), WRITER_GROUP),
        (*reader_credentials(settings), READER_GROUP),
    )
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLES_LOCK,))
        for user, password, group in logins:
            create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            alter = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            try:
                with conn.transaction():
                    statement = alter if exists else create
                    conn.execute(statement.format(sql.Identifier(user), sql.Literal(password)))
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                conn.execute(alter.format(sql.Identifier(user), sql.Literal(password)))
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user))
            )
        database = sql.Identifier(conn.info.dbname)
        writer, reader = (sql.Identifier(user) for user, _, _ in logins)
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(database, writer, reader)
        )
        # The batch stages each merge in a temporary table.
        conn.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(database, writer))


def close_server_databases(admin_url: str) -> None:
    """Take CONNECT and TEMPORARY on the embedded server's own databases from PUBLIC, so the
    logins reach only the database granted to them. Only for the server weatherpipe
    initialised: on a server of someone else's, other roles may rely on them."""
    with connect(admin_url) as conn, conn.transaction():
        # Two batches starting at once would otherwise update the same catalog rows together.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLES_LOCK,))
        for name in SERVER_DATABASES:
            conn.execute(
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(name)
                )
            )
