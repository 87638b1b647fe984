"""Passwords generated once and kept in a file only their owner can read (mode 600)."""

from __future__ import annotations

import secrets
from pathlib import Path

from weatherpipe.durable import create_once


def kept_password(path: Path) -> str:
    """The password stored in `path`; generated and stored there on first use (a second
    process generating one at the same moment reads the first one's)."""
    return create_once(path, secrets.token_urlsafe(24))
