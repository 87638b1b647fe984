"""podman as the compose suite runs it: root podman with runc and cgroupfs (the machine's hybrid
cgroups and the missing systemd rule out podman's defaults), set by a containers.conf in the
project's state folder, so nothing system-wide changes beyond the installed packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".weatherpipe" / "compose"

CONTAINERS_CONF = """\
# Written by the compose test suite (tests/compose/podman.py); podman reads it via CONTAINERS_CONF.
[containers]
# Explicit limits: podman's defaults ask for more open files than this machine allows.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun refuses this machine's hybrid cgroups; without systemd, cgroupfs and a file event log.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class PodmanMissingError(RuntimeError):
    """podman or podman-compose is not installed."""


@dataclass(frozen=True)
class Podman:
    """Runs podman and podman-compose with the suite's containers.conf."""

    env: dict[str, str]

    @classmethod
    def configured(cls) -> Podman:
        for tool in ("podman", "runc", "debootstrap"):
            if shutil.which(tool) is None:
                raise PodmanMissingError(
                    f"`{tool}` is not installed: run `make test-compose`, which installs podman, "
                    "runc and debootstrap from Debian's packages."
                )
        STATE.mkdir(parents=True, exist_ok=True)
        conf = STATE / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        return cls({**os.environ, "CONTAINERS_CONF": str(conf)})

    def run(
        self, *args: str, check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """`podman ARGS`; a failure raises with podman's own output."""
        return self._run(["podman", *args], check, timeout)

    def compose(
        self, *args: str, check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """`podman-compose ARGS` from the repository's root, where docker-compose.yml is."""
        tool = Path(sys.executable).with_name("podman-compose")  # in the venv, from uv.lock
        return self._run([str(tool), *args], check, timeout)

    def _run(
        self, argv: list[str], check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(argv)}` exited with {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        return result

    def label(self, image: str, key: str) -> str | None:
        """The value of label `key` on local `image`; None when the image does not exist."""
        result = self.run(
            "image", "inspect", "--format", f'{{{{index .Labels "{key}"}}}}', image, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def exists(self, image: str) -> bool:
        return self.run("image", "exists", image, check=False).returncode == 0
