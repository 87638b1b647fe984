"""One call that makes a database ready for weatherpipe: schema migrated, login roles in place."""

from __future__ import annotations

from weatherpipe.db.migrate import migrate
from weatherpipe.db.roles import close_server_databases, ensure_roles
from weatherpipe.db.url import database_url
from weatherpipe.settings import Settings


def prepare_database(settings: Settings) -> list[int]:
    """Apply pending migrations and create/update the writer and reader login roles, as the
    administrator of DATABASE_URL (or the local server's superuser); on the local server, also
    close its `postgres` and `template1` databases to the logins. Returns the versions applied
    now. Idempotent and safe to run from several processes at once."""
    admin_url = database_url(settings)
    applied = migrate(admin_url)
    ensure_roles(settings, admin_url)
    if settings.manages_postgres:
        close_server_databases(admin_url)
    return applied
