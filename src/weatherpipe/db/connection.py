"""Connections to the processed zone's PostgreSQL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg


def connect(url: str, *, timeout: float = 10, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection to `url` that gives up after `timeout` seconds."""
    return psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=autocommit)


def ping(url: str, timeout: float = 2) -> bool:
    """True when the server at `url` answers `SELECT 1`."""
    try:
        with connect(url, timeout=timeout, autocommit=True) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


def masked(url: str) -> str:
    """`url` with its password replaced by ***, for logs and status output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
