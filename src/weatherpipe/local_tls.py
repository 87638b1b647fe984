"""Where the cluster profile's local CA and the local servers' certificates live in STATE_DIR.

Kafka's clients and PostgreSQL's both trust the same local CA, so its place has one owner
below both (`weatherpipe.platform.certificates` makes the certificates).
"""

from __future__ import annotations

from pathlib import Path

from weatherpipe.settings import Settings


def tls_folder(settings: Settings) -> Path:
    """Where the local CA and the local servers' certificates live."""
    return settings.state_dir.resolve() / "tls"


def local_ca(settings: Settings) -> Path:
    """The local CA's certificate: what every client of the cluster profile trusts."""
    return tls_folder(settings) / "ca.crt"
