"""One run of the project's docker-compose.yml under podman-compose, as its own compose project.

podman-compose on podman 4.3 does not wait for `condition: service_healthy` (podman runs health
checks through systemd timers, and there is no systemd here), so services are started one step
at a time with `--no-deps`, in the order their `depends_on` gives, and health checks are polled
with `podman healthcheck run`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.compose.podman import REPO, Podman
from tests.conftest import free_port
from weatherpipe.kafka.readback import OffsetSpan, committed_records
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import group_lag, partition_offsets
from weatherpipe.rawzone.lag import Gap, confirmed
from weatherpipe.rawzone.naming import FILE_NAME_RE


def write_env_file(path: Path, overrides: dict[str, str]) -> dict[str, str]:
    """compose.env as a user makes it (a copy of compose.env.example), with `overrides`."""
    settings: dict[str, str] = {}
    for line in (REPO / "compose.env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            settings[name.strip()] = value.strip()
    settings.update(overrides)
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return settings


def isolated_settings(data_dir: Path, rows: int) -> dict[str, str]:
    """Fresh passwords, a small data set in its own folder, and free host ports, so the stack
    never meets the local platform or another run."""
    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
        "BATCH_DB_PASSWORD": secrets.token_urlsafe(12),
        "DASHBOARD_DB_PASSWORD": secrets.token_urlsafe(12),
        "ROWS": str(rows),
        # Raw files are dated by the Kafka timestamp (all today here), so only size finishes
        # them before ROTATE_SECONDS: 1 MiB makes a dozen, so a crash meets some finished and
        # some open files, not one open file per partition.
        "ROTATE_MB": "1",
        "DATA_DIR": str(data_dir),
        "KAFKA_HOST_PORT": str(free_port()),
        "POSTGRES_HOST_PORT": str(free_port()),
        "DASHBOARD_HOST_PORT": str(free_port()),
        "AKHQ_HOST_PORT": str(free_port()),
    }


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 1.0) -> float:
    """Poll `check` until it is true; the seconds it took. Raises naming `what` on timeout."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


@dataclass(frozen=True)
class Stack:
    podman: Podman
    project: str
    env_file: Path
    settings: dict[str, str]

    # --- compose ----------------------------------------------------------------------------
    def compose(self, *args: str, profile: str | None = None, timeout: float = 1800) -> str:
        """`podman-compose --env-file … -p PROJECT [--profile P] ARGS`; its output."""
        profiles = ["--profile", profile] if profile else []
        result = self.podman.compose(
            "--env-file", str(self.env_file), "-p", self.project, *profiles, *args, timeout=timeout
        )
        return result.stdout + result.stderr

    def up(self, *services: str, profile: str | None = None) -> None:
        """Start `services` alone: their dependencies are the caller's job."""
        self.compose("up", "-d", "--no-deps", *services, profile=profile)

    def down(self) -> None:
        """Remove every container of the project (all profiles), its network and volumes."""
        self.compose("down", "-v", "-t", "30", profile="batch")
        self.compose("down", "-v", "-t", "30", profile="normal")

    # --- containers -------------------------------------------------------------------------
    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def state(self, service: str) -> dict[str, object]:
        out = self.podman.run("inspect", "--format", "{{json .State}}", self.container(service))
        state: dict[str, object] = json.loads(out.stdout)
        return state

    def restarts(self, service: str) -> int:
        out = self.podman.run("inspect", "--format", "{{.RestartCount}}", self.container(service))
        return int(out.stdout.strip())

    def healthy(self, service: str) -> bool:
        result = self.podman.run("healthcheck", "run", self.container(service), check=False)
        return result.returncode == 0

    def wait_healthy(self, service: str, timeout: float = 300) -> float:
        return wait_for(f"{service} healthy", lambda: self.healthy(service), timeout, every=2)

    def wait_exit(self, service: str, timeout: float = 600) -> int:
        """Wait until the container has exited; its exit code."""
        wait_for(f"{service} exited", lambda: self.state(service)["Status"] == "exited", timeout)
        return int(str(self.state(service)["ExitCode"]))

    def exec(self, service: str, *argv: str) -> str:
        """Run `argv` in the service's running container; its standard output."""
        return self.podman.run("exec", self.container(service), *argv).stdout

    def logs(self, service: str) -> str:
        result = self.podman.run("logs", self.container(service), check=False)
        return result.stdout + result.stderr

    def crash(self, service: str) -> int:
        """SIGKILL the service's main process from the host, as the out-of-memory killer does
        (no handler runs, nothing is flushed); the pid that was killed."""
        pid = int(str(self.state(service)["Pid"]))
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, service: str) -> None:
        """`podman stop`: SIGTERM, on which the consumer finishes its files and commits."""
        self.podman.run("stop", "-t", "120", self.container(service))

    # --- volumes and ports ------------------------------------------------------------------
    def volume(self, name: str) -> Path:
        out = self.podman.run(
            "volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.project}_{name}"
        )
        return Path(out.stdout.strip())

    def port(self, name: str) -> int:
        return int(self.settings[name])

    @property
    def kafka(self) -> KafkaConnection:
        """The stack's broker as the host reaches it (plain text, as docker-compose.yml has it)."""
        return KafkaConnection(f"127.0.0.1:{self.port('KAFKA_HOST_PORT')}")

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://weatherpipe:{self.settings['POSTGRES_PASSWORD']}"
            f"@127.0.0.1:{self.port('POSTGRES_HOST_PORT')}/weather_data"
        )

    def http_get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port('DASHBOARD_HOST_PORT')}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()


def raw_offsets(raw_dir: Path) -> Counter[tuple[str, int, int]]:
    """How often each Kafka record (topic, partition, offset) is stored in the finished raw
    files under `raw_dir` (files still being written live in .tmp/ and are not counted)."""
    counts: Counter[tuple[str, int, int]] = Counter()
    for path in raw_dir.glob("*/date=*/*.ndjson"):
        if FILE_NAME_RE.match(path.name) is None:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            kafka = json.loads(line)["kafka"]
            counts[(kafka["topic"], kafka["partition"], kafka["offset"])] += 1
    return counts


def committed_in_topic(kafka: KafkaConnection, topic: str) -> int:
    """The committed records `topic` holds, read back (its offsets count transaction markers
    as well)."""
    spans = [OffsetSpan(p.partition, p.start, p.end) for p in partition_offsets(kafka, topic, 30)]
    return sum(f.count for f in committed_records(kafka, topic, spans, 60) if f is not None)


def group_behind(kafka: KafkaConnection, topic: str, group: str) -> bool:
    """Whether a committed record of `topic` lies after `group`'s committed offsets."""
    lags = group_lag(kafka, topic, group, 30)
    found = [Gap(p.partition, p.committed or p.start, p.end) for p in lags if p.lag > 0]
    return bool(found) and bool(confirmed(kafka, topic, found, 30))
