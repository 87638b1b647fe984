"""Passwords generated once and kept in a file only their owner can read (mode 600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def kept_password(path: Path) -> str:
    """The password stored in `path`; generated and stored there on first use.

    Safe against a second process generating one at the same moment: the file is created
    exclusively, and the loser of that race reads the winner's password.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(generated + "\n")
    return generated
