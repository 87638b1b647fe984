"""The URL every component connects to PostgreSQL with: DATABASE_URL, else the local server's.

Resolved from the settings alone, so the batch, the dashboard and the roles reach the database
without knowing how the local server is started (that is `weatherpipe.platform`'s job).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from weatherpipe.local_tls import local_ca
from weatherpipe.passwords import kept_password
from weatherpipe.settings import Settings


def local_server_home(settings: Settings) -> Path:
    """The local server's folder in STATE_DIR; the cluster profile's server (TLS) has its own."""
    tls = settings.platform_profile == "cluster"
    return settings.state_dir.resolve() / ("postgres-cluster" if tls else "postgres")


def superuser_password_file(settings: Settings) -> Path:
    """Where the local server's generated superuser password is kept (mode 600)."""
    return local_server_home(settings) / "superuser.password"


def superuser_password(settings: Settings) -> str:
    """The local server's superuser password: POSTGRES_PASSWORD, else the one generated once."""
    if settings.postgres_password is not None:
        return settings.postgres_password.get_secret_value()
    return kept_password(superuser_password_file(settings))


def local_server_url(settings: Settings, database: str | None = None) -> str:
    """The local server's URL as its superuser, for `database` (default POSTGRES_DB)."""
    url = (
        f"postgresql://{settings.postgres_user}:{quote(superuser_password(settings), safe='')}"
        f"@127.0.0.1:{settings.postgres_port}/{database or settings.postgres_db}"
    )
    if settings.platform_profile == "cluster":
        url += "?" + urlencode({"sslmode": "verify-full", "sslrootcert": str(local_ca(settings))})
    return url


def database_url(settings: Settings) -> str:
    """The administrator's URL: DATABASE_URL, else the local server's superuser's."""
    return settings.database_url or local_server_url(settings)
