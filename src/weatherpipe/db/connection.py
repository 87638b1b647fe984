"""Connections to the processed zone's PostgreSQL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

from weatherpipe.errors import TerminalError

# SQLSTATE class 28: the server answered and refused the login (wrong password, unknown role).
_LOGIN_REFUSED = "28"


class LoginRefusedError(TerminalError):
    """The server answers, but refuses the user or password in the URL."""


def connect(url: str, *, timeout: float = 10, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection to `url` that gives up after `timeout` seconds."""
    return psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=autocommit)


def ping(url: str, timeout: float = 2) -> bool:
    """True when the server at `url` answers `SELECT 1`; raises `LoginRefusedError` when it
    answers but refuses the login, because waiting longer cannot fix that."""
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


def masked(url: str) -> str:
    """`url` with its password replaced by ***, for logs and status output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
