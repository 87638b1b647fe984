"""The local Apache Kafka broker: jars from Maven Central, KRaft storage, start, stop, readiness."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from weatherpipe.errors import TerminalError
from weatherpipe.kafka.admin import cluster_metadata
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.platform import processes
from weatherpipe.settings import Settings

log = logging.getLogger(__name__)

_RESOURCES = resources.files("weatherpipe.platform") / "resources"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


class KafkaSetupError(TerminalError):
    """The local broker could not be provisioned (no Java, no Maven, jars not resolvable)."""


@dataclass(frozen=True)
class KafkaStatus:
    bootstrap_servers: str
    managed: bool
    running: bool
    pid: int | None
    problem: str | None = None
    """Why it does not answer, when the brokers say so (e.g. a refused login)."""


class LocalKafka:
    """One KRaft broker+controller process whose files all live under STATE_DIR/kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir.resolve() / "kafka"
        self.lib = settings.kafka_lib.resolve()
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.config = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"
        self.stdout_log = self.logs / "kafka.out"
        self.server_log = self.logs / "server.log"

    # --- provisioning -----------------------------------------------------------------------
    def ensure_jars(self) -> None:
        """Resolve Kafka's jars into the lib folder once (again only when pom.xml changes)."""
        resolve_from_maven("pom.xml", self.lib, "Apache Kafka's jars")

    def java(self) -> str:
        home = self.settings.java_home or (
            Path(os.environ["JAVA_HOME"]) if "JAVA_HOME" in os.environ else None
        )
        java = str(home / "bin" / "java") if home else shutil.which("java")
        if not java or not Path(java).exists():
            raise KafkaSetupError(
                "Java 17 or newer is needed for the local Kafka broker: install it "
                "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
            )
        return java

    def render_config(self) -> None:
        template = Template((_RESOURCES / "server.properties").read_text())
        self.config.write_text(
            template.substitute(
                broker_port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                log_dirs=self.data,
            )
        )

    def ensure_formatted(self, cluster_id: str | None = None) -> None:
        """Format the KRaft storage once; later starts reuse it, so topics persist."""
        if (self.data / "meta.properties").exists():
            return
        cluster_id = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        failed = _failure(
            [
                *self._jvm(heap="256m"),
                STORAGE_TOOL,
                "format",
                "--standalone",
                # One argument: an id may start with "-" and must not be read as an option.
                f"--cluster-id={cluster_id}",
                "--config",
                str(self.config),
            ]
        )
        if failed is not None:
            raise KafkaSetupError(f"Formatting Kafka's storage in {self.data} failed:\n{failed}")

    def _jvm(self, heap: str) -> list[str]:
        return jvm_command(self.java(), self.lib, self.logs, heap)

    # --- lifecycle --------------------------------------------------------------------------
    def pid(self) -> int | None:
        return processes.running_pid(self.pid_file, str(self.config))

    def answers(self, timeout: float = 2) -> bool:
        return cluster_metadata(kafka_connection(self.settings, "admin"), timeout) is not None

    def start(self, timeout: float) -> float:
        """Start the broker unless ours already runs; wait until it answers a metadata request.

        Returns the seconds spent waiting. A port held by someone else fails fast; a broker
        that dies or stays silent is reported with its log and, if we started it, stopped.
        """
        if self.pid() is not None:
            return processes.wait_until_ready(
                "Kafka", self.answers, lambda: self.pid() is not None, timeout, self._log_files()
            )
        for port, name in (
            (self.settings.kafka_port, "KAFKA_BOOTSTRAP_SERVERS=localhost:<port>"),
            (self.settings.kafka_controller_port, "KAFKA_CONTROLLER_PORT=<port>"),
        ):
            processes.require_free_port(port, "Kafka", f"choose another port with {name}")
        self.ensure_jars()
        for folder in (self.data, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.render_config()
        self.ensure_formatted()
        with self.stdout_log.open("ab") as out:
            proc = subprocess.Popen(
                [*self._jvm(self.settings.kafka_heap), MAIN_CLASS, str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; `platform down` stops it
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            return processes.wait_until_ready(
                "Kafka", self.answers, lambda: proc.poll() is None, timeout, self._log_files()
            )
        except Exception:
            self.stop()
            raise

    def stop(self, timeout: float = 60) -> bool:
        """Stop our broker (controlled shutdown on SIGTERM); True if one was running."""
        pid = self.pid()
        if pid is not None:
            processes.terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def status(self) -> KafkaStatus:
        pid = self.pid()
        return KafkaStatus(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            managed=True,
            running=pid is not None and self.answers(),
            pid=pid,
        )

    def _log_files(self) -> list[Path]:
        return [self.stdout_log, self.server_log]


def _failure(command: list[str]) -> str | None:
    """Run a setup tool to its end; None when it succeeded, else what it printed."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return None if result.returncode == 0 else result.stdout + result.stderr


def resolve_from_maven(pom_name: str, target: Path, what: str) -> None:
    """Copy the dependencies of the resource `pom_name` from Maven Central into `target`, once
    (again only when that pom changes); parallel callers wait for the first one."""
    pom = _RESOURCES / pom_name
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = target / ".resolved"
    if marker.exists() and marker.read_text() == digest:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            f"Maven (`mvn`) is needed once to fetch {what} from Maven Central: "
            "install it (apt-get install maven) and run again."
        )
    target.mkdir(parents=True, exist_ok=True)
    with _locked(target / ".lock"):
        if marker.exists() and marker.read_text() == digest:
            return  # another process resolved them while we waited
        print(f"Fetching {what} from Maven Central (first run only)…", file=sys.stderr)
        with resources.as_file(pom) as pom_path:
            failed = _failure(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom_path),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={target}",
                    "-DincludeScope=runtime",
                    "-DoverWriteIfNewer=true",
                ]
            )
        if failed is not None:
            raise KafkaSetupError(
                f"Maven could not resolve {what} (is Maven Central reachable?):\n" + failed[-3000:]
            )
        marker.write_text(digest)


def jvm_command(java: str, lib: Path, logs: Path, heap: str) -> list[str]:
    """`java` with Kafka's usual server flags, `heap`, logging into `logs`, the jars of `lib`."""
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-server",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={_RESOURCES / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={logs}",
        "-cp",
        f"{lib}/*",
    ]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock: parallel sessions must not resolve jars into one folder at once."""
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
