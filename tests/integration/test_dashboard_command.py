"""`weatherpipe dashboard` as users start it: on DASHBOARD_PORT unless --port says otherwise, and
a taken port is one clear error naming its owner instead of Streamlit's bare one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration


def dashboard(tmp_path: Path, *args: str, port: int | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DASHBOARD_PORT"}
    if port is not None:
        env["DASHBOARD_PORT"] = str(port)
    env["STATE_DIR"] = str(tmp_path)
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "dashboard", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def refused(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out == ""
    return " ".join(err.split())


@pytest.mark.parametrize("how", ["DASHBOARD_PORT", "--port"])
def test_a_taken_port_names_its_owner_and_the_way_out(
    tmp_path: Path, squatter: int, how: str
) -> None:
    proc = (
        dashboard(tmp_path, port=squatter)
        if how == "DASHBOARD_PORT"
        else dashboard(tmp_path, "--port", str(squatter), port=free_port())
    )
    message = refused(proc)
    assert message.startswith(f"error: The dashboard cannot start: port {squatter} ")
    assert f"used by pid {os.getpid()} " in message
    assert "--port <port> or DASHBOARD_PORT=<port>" in message
    assert "http://" not in message and "Traceback" not in message


def test_the_dashboard_serves_on_dashboard_port(tmp_path: Path) -> None:
    port = free_port()
    proc = dashboard(tmp_path, port=port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as answer:
                    assert answer.read() == b"ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"dashboard: http://localhost:{port}" in err
