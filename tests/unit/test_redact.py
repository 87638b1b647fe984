"""The password masker and the TCP check that lets a status skip a client library."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import free_port
from weatherpipe.net import accepts_connections, any_accepts
from weatherpipe.redact import masked
from weatherpipe.settings import load_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:S3cret@db:5432/x", "postgresql://u:***@db:5432/x"),
        # libpq takes the last "@" as the end of the user part
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u:pa/ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://db/x?user=u&password=S3cret&sslmode=require",
         "postgresql://db/x?user=u&password=***&sslmode=require"),
        ("host=db password=S3cret user=u", "host=db password=*** user=u"),
        ("host=db password='two words' user=u", "host=db password=*** user=u"),
        ("s3a://KEY:SECRET@bucket/raw", "s3a://KEY:***@bucket/raw"),
        ("failed on postgresql://a:1@h1/x and postgresql://b:2@h2/y",
         "failed on postgresql://a:***@h1/x and postgresql://b:***@h2/y"),
        ("DATABASE_URL='mysql://u:S3cret@db/x': bad", "DATABASE_URL='mysql://u:***@db/x': bad"),
    ],
)  # fmt: skip
def test_passwords_are_masked(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@db:5432/x",
        "http://localhost:8501",
        "localhost:9092,kafka:29092",
        "data/[/x]a.csv",
        "a password is needed",
    ],
)
def test_text_without_a_password_is_unchanged(text: str) -> None:
    assert masked(text) == text


def test_settings_repr_hides_the_database_url() -> None:
    settings = load_settings(database_url="postgresql://u:S3cret@db/x", postgres_password="S3cret")

    assert "S3cret" not in repr(settings)
    assert settings.database_url == "postgresql://u:S3cret@db/x"  # still usable


def test_tcp_check_tells_a_listener_from_a_closed_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        closed = free_port()

        assert accepts_connections("127.0.0.1", port)
        assert not accepts_connections("127.0.0.1", closed)
        assert any_accepts(f"127.0.0.1:{closed}, 127.0.0.1:{port}")
        assert not any_accepts(f"127.0.0.1:{closed}")
