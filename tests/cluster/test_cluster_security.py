"""The cluster profile refuses what it should, with one message that says what to change: no
login, a wrong password, the dashboard's login trying to produce or to join the consumer's
group, and plain text to a TLS listener. Nothing is sent or stored on a refusal."""

from __future__ import annotations

import re
import socket
import ssl
import struct

import pytest

from tests.cluster.pipeline import run, topic_offsets
from weatherpipe.datagen import write_csv
from weatherpipe.kafka import browse, readback, topic_views
from weatherpipe.kafka.security import LOGINS, kafka_connection
from weatherpipe.local_tls import local_ca
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

# weatherpipe's own progress lines (`consume` says which member joins which group).
OWN_INFO = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO weatherpipe\.")


def refused(err: str) -> str:
    """The one error line (unwrapped), after checking that it is all there is besides
    weatherpipe's own progress lines."""
    assert "Traceback" not in err
    err = "".join(line for line in err.splitlines(keepends=True) if not OWN_INFO.match(line))
    assert len(err.splitlines()) <= 8, err  # one message, no client log lines
    assert err.startswith("error: "), err
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"KAFKA_SASL_PASSWORD": "not-the-password"},
            "refused the login of user 'weatherpipe-producer' (SCRAM-SHA-512): the user name "
            "or password is wrong",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL"},
            "closed the connection right after the TLS handshake: the brokers expect a login. "
            "Set KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
            "closed the connection as soon as weatherpipe spoke in plain text "
            "(KAFKA_SECURITY_PROTOCOL=PLAINTEXT): the brokers expect TLS",
        ),
        (
            {"KAFKA_SASL_USERNAME": LOGINS["dashboard"]},
            # The first thing produce does is make sure its topics exist: the dashboard's
            # login may not even see the ledger topic, so creating it is what is refused.
            "does not allow user 'weatherpipe-dashboard' to create topic",
        ),
    ],
    ids=["wrong-password", "no-login", "plaintext", "dashboard-login"],
)
def test_produce_refused_with_what_to_change(
    job_settings: Settings, env: dict[str, str], says: str
) -> None:
    write_csv(job_settings.csv_path, 100, seed=30)
    code, err = run(job_settings, "produce")  # the topic exists and holds the file once
    assert code == 0, err
    code, err = run(job_settings, "produce", **env)
    assert code == 1
    assert says in refused(err)
    assert "not-the-password" not in err
    assert len(topic_offsets(job_settings, job_settings.kafka_topic)) == 100


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"KAFKA_SASL_PASSWORD": "not-the-password"},
            "refused the login of user 'weatherpipe-consumer'",
        ),
        (
            {"KAFKA_SASL_USERNAME": LOGINS["dashboard"]},
            "does not allow user 'weatherpipe-dashboard' to join consumer group",
        ),
    ],
    ids=["wrong-password", "dashboard-login"],
)
def test_consume_refused_with_what_to_change(
    job_settings: Settings, env: dict[str, str], says: str
) -> None:
    write_csv(job_settings.csv_path, 100, seed=31)
    code, err = run(job_settings, "produce")
    assert code == 0, err
    code, err = run(job_settings, "consume", "--until-idle", "3", **env)
    assert code == 1
    assert says in refused(err)
    assert not list(job_settings.raw_dir.glob("*/date=*/*.ndjson"))


def test_dashboard_login_describes_and_reads(job_settings: Settings) -> None:
    write_csv(job_settings.csv_path, 100, seed=32)
    code, err = run(job_settings, "produce")
    assert code == 0, err
    dashboard = kafka_connection(job_settings, "dashboard")
    assert dashboard.username == LOGINS["dashboard"]
    offsets = topic_views.partition_offsets(dashboard, job_settings.kafka_topic, 10)
    spans = [readback.OffsetSpan(o.partition, o.start, o.end) for o in offsets]
    found = readback.committed_records(dashboard, job_settings.kafka_topic, spans, 30)
    assert sum(f.count for f in found if f is not None) == 100
    partition = max(offsets, key=lambda o: o.records).partition
    messages = browse.newest(dashboard, job_settings.kafka_topic, 5, 10, partition)
    assert len(messages) == 5
    assert all(m.value and m.value.startswith(b"{") for m in messages)


def test_plaintext_request_to_a_broker_gets_no_kafka_answer(cluster_settings: Settings) -> None:
    port = int(cluster_settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")[2])
    client_id = b"plain"
    # An ApiVersions request (key 18, version 0), as a client without TLS would send it.
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    # A Kafka answer would be a size and our correlation id 1; at most a TLS alert comes back.
    assert answer[4:8] != struct.pack(">i", 1)
    assert answer == b"" or answer[0] == 0x15  # TLS record type 21: alert
    # Over TLS with the local CA, the same port completes a handshake for localhost.
    context = ssl.create_default_context(cafile=str(local_ca(cluster_settings)))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
