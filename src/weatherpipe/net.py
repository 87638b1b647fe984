"""A TCP check: is anything listening at host:port? Cheap enough to run before a client library
is even imported, so a service that is down is reported without loading its client."""

from __future__ import annotations

import socket


def accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port is accepted within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def any_accepts(servers: str, timeout: float = 1.0) -> bool:
    """True when one of the comma-separated host:port `servers` accepts a TCP connection."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if port.isdigit() and accepts_connections(host.strip("[]"), int(port), timeout):
            return True
    return False
