"""Process plumbing shared by the local services: pid files, port checks, readiness, log tails."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from weatherpipe.errors import TerminalError, TransientError

if TYPE_CHECKING:
    import psutil


class PortInUseError(TerminalError):
    """A port a local service needs is held by a process weatherpipe did not start."""


class ServiceTimeoutError(TransientError):
    """A service was started but did not answer within the timeout."""


class ServiceDiedError(TerminalError):
    """A service exited while weatherpipe waited for it to answer."""


def port_owner(port: int) -> str:
    """A short description of who listens on `port`, for error messages."""
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "another process"
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline())[:120]})"
    return "another process"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (a socket in TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR ignores lingering TIME_WAIT sockets but still fails on a live listener,
        # which is exactly the condition under which Kafka and PostgreSQL would fail to bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def require_free_port(port: int, service: str, hint: str, wait: float = 0) -> None:
    """Raise `PortInUseError` naming the owner and the setting to change when `port` is taken
    (still taken after `wait` seconds: a process that was just killed may hold it a moment)."""
    deadline = time.monotonic() + wait
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not port_is_free(port):
        raise PortInUseError(
            f"{service} cannot start: port {port} on 127.0.0.1 is already used by "
            f"{port_owner(port)}. Stop that process, or {hint}."
        )


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in `pid_file` if that process is alive and its command line contains `marker`.

    The marker check stops a recycled pid (after a reboot, say) from being taken for ours: we
    only ever signal processes whose command line names our own config file.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return None
    import psutil  # here: a status check of a platform that was never started needs none

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if marker in " ".join(proc.cmdline()):
            return pid
    except psutil.Error:
        pass
    return None


def working_in(folder: Path) -> list[psutil.Process]:
    """Live processes (zombies left out) whose working folder is `folder`: a PostgreSQL
    server's processes all work in their data folder, whatever their command line says."""
    import psutil

    target = str(folder)
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.status() != psutil.STATUS_ZOMBIE and proc.cwd() == target:
                found.append(proc)
    return found


def kill_leftovers(folder: Path, grace: float) -> int:
    """Wait up to `grace` seconds for the processes working in `folder` to exit, then SIGKILL
    the rest; returns how many had to be killed."""
    import psutil

    leftovers = working_in(folder)
    if not leftovers:
        return 0
    _, alive = psutil.wait_procs(leftovers, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    return len(alive)


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM `pid`, wait up to `timeout` seconds for it to exit, then SIGKILL it."""
    import psutil

    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            proc.wait(10)
    except psutil.NoSuchProcess:
        pass


def terminate_all(pids: list[int], timeout: float) -> None:
    """SIGTERM every pid at once, wait up to `timeout` seconds for all, SIGKILL the rest."""
    import psutil

    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


def tail(path: Path, lines: int = 25) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until_ready(
    service: str,
    answers: Callable[[], bool],
    alive: Callable[[], bool],
    timeout: float,
    logs: list[Path],
) -> float:
    """Poll `answers` until it returns True; return the seconds it took.

    Raises `ServiceDiedError` as soon as `alive` turns False and `ServiceTimeoutError` after
    `timeout` seconds, both with the tail of the service's logs so the cause is on screen.
    """
    start = time.monotonic()
    while True:
        if answers():
            return time.monotonic() - start
        if not alive():
            raise ServiceDiedError(
                f"{service} exited during start-up. Last lines of its log:\n{_tails(logs)}"
            )
        if time.monotonic() - start > timeout:
            raise ServiceTimeoutError(
                f"{service} did not answer within {timeout:g} s (raise STARTUP_TIMEOUT if the "
                f"machine is just slow). Last lines of its log:\n{_tails(logs)}"
            )
        time.sleep(0.2)


def _tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log} ---\n{tail(log)}" for log in logs)
