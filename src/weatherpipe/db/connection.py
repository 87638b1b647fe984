"""Connections to the processed zone's PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from weatherpipe.errors import TerminalError
from weatherpipe.net import accepts_connections
from weatherpipe.redact import masked

if TYPE_CHECKING:
    import psycopg

__all__ = ["LoginRefusedError", "connect", "login_refused", "masked", "ping"]

# SQLSTATE class 28: the server answered and refused the login (wrong password, unknown role).
_LOGIN_REFUSED = "28"


class LoginRefusedError(TerminalError):
    """The server answers, but refuses the user or password in the URL."""


def connect(url: str, *, timeout: float = 10, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection to `url` that gives up after `timeout` seconds."""
    # Imported here: psycopg takes a noticeable part of a second to import, and commands that
    # only check whether the server is up (`platform status`) often need no connection at all.
    import psycopg

    return psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=autocommit)


def ping(url: str, timeout: float = 2) -> bool:
    """True when the server at `url` answers `SELECT 1`; raises `LoginRefusedError` when it
    answers but refuses the login, because waiting longer cannot fix that."""
    if not _may_listen(url, timeout):
        return False  # decided without loading the client
    import psycopg

    try:
        with connect(url, timeout=timeout, autocommit=True) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        if login_refused(exc):
            raise LoginRefusedError(
                f"PostgreSQL at {masked(url)} answers but refused the login: "
                f"{str(exc).strip().splitlines()[-1].rpartition('FATAL:')[2].strip()}"
            ) from None
        return False
    except psycopg.Error:
        return False


def login_refused(exc: psycopg.Error) -> bool:
    """True when `exc` says the server refused the user or its password (not unreachable)."""
    state = exc.sqlstate or ""
    text = str(exc)
    return state.startswith(_LOGIN_REFUSED) or "authentication failed" in text


def _may_listen(url: str, timeout: float) -> bool:
    """False only when the URL names one TCP host:port and nothing listens there."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 5432
    except ValueError:  # several hosts, or a port libpq reads but urllib does not
        return True
    if not host or host.startswith("/") or "host=" in parts.query:
        return True
    return accepts_connections(host, port, timeout)
