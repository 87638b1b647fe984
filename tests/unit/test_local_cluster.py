"""The cluster profile's pure parts: ports, ACLs, the quorum report and the local CA."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from weatherpipe.errors import SettingsError
from weatherpipe.platform.certificates import LocalCA
from weatherpipe.platform.local_cluster import LocalCluster, acl_bindings, parse_replication
from weatherpipe.settings import load_settings


def test_nodes_follow_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        platform_profile="cluster",
        state_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:21001,localhost:21002,127.0.0.1:21003",
        kafka_controller_port=22000,
    )
    cluster = LocalCluster(settings)
    assert [(n.node_id, n.role, n.port) for n in cluster.nodes] == [
        (101, "controller", 22000),
        (102, "controller", 22001),
        (103, "controller", 22002),
        (1, "broker", 21001),
        (2, "broker", 21002),
        (3, "broker", 21003),
    ]


@pytest.mark.parametrize(
    "servers",
    ["localhost:21001,localhost:21002", "kafka.example.com:9092,localhost:2,localhost:3"],
)
def test_bootstrap_servers_that_cannot_be_a_local_cluster(tmp_path: Path, servers: str) -> None:
    settings = load_settings(
        platform_profile="cluster", state_dir=tmp_path, kafka_bootstrap_servers=servers
    )
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS"):
        LocalCluster(settings)


def test_acls_give_each_login_only_its_job(tmp_path: Path) -> None:
    settings = load_settings(kafka_topic="w", kafka_group_id="g", state_dir=tmp_path)
    grants = {
        (b.principal, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name)
        for b in acl_bindings(settings)
    }
    by_user: dict[str, set[tuple[str, str, str, str]]] = {}
    for principal, *rest in grants:
        by_user.setdefault(principal, set()).add(tuple(rest))  # type: ignore[arg-type]
    assert by_user["User:weatherpipe-consumer"] == {
        ("TOPIC", "w", "LITERAL", "READ"),
        ("TOPIC", "w", "LITERAL", "DESCRIBE"),
        ("GROUP", "g", "LITERAL", "READ"),
        ("GROUP", "g", "LITERAL", "DESCRIBE"),
        ("GROUP", "weatherpipe-readback-", "PREFIXED", "READ"),  # throw-away read-back groups
    }
    dashboard = by_user["User:weatherpipe-dashboard"]
    assert {op for *_, op in dashboard} == {"READ", "DESCRIBE"}
    assert ("GROUP", "g", "LITERAL", "READ") not in dashboard  # it cannot join the group
    producer = by_user["User:weatherpipe-producer"]
    assert ("TOPIC", "w.dlq", "LITERAL", "WRITE") in producer
    assert ("TOPIC", "w", "LITERAL", "DESCRIBE_CONFIGS") in producer  # its message size limit
    assert not any(kind == "GROUP" and name == "g" for kind, name, _, _ in producer)
    assert set(by_user) == {
        "User:weatherpipe-producer",
        "User:weatherpipe-consumer",
        "User:weatherpipe-dashboard",
    }


def test_quorum_report_of_kafkas_tool() -> None:
    text = (
        "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\t"
        "LastCaughtUpTimestamp\tStatus  \t\n"
        "102   \tAAAA\t279\t0\t1000\t1000\tLeader  \t\n"
        "101   \tAAAA\t270\t9\t900\t900\tFollower\t\n"
        "103   \tAAAA\t0\t279\t-1\t-1\tFollower\t\n"
        "1     \tsj_O\t279\t0\t990\t990\tObserver\t\n"
    )
    quorum = parse_replication(text, now_ms=1500)
    assert quorum is not None and quorum.leader == 102
    assert [(v.node_id, v.status, v.lag, v.last_fetch_ms_ago) for v in quorum.voters] == [
        (101, "Follower", 9, 600),
        (102, "Leader", 0, 500),
        (103, "Follower", 279, None),
    ]
    assert parse_replication("Error: no quorum", 0) is None


def test_local_ca_issues_certificates_for_the_local_host_once(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path)
    ca.ensure()
    pair = ca.issue("node-1", "broker")
    cert = x509.load_pem_x509_certificate(pair.certificate.read_bytes())
    root = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    cert.verify_directly_issued_by(root)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "broker"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert pair.key.stat().st_mode & 0o777 == 0o600
    assert ca.key.stat().st_mode & 0o777 == 0o600
    assert ca.issue("node-1", "broker").certificate.read_bytes() == pair.certificate.read_bytes()
    LocalCA(tmp_path / "other").ensure()
    other = LocalCA(tmp_path / "other")
    pair.certificate.replace(other.folder / "node-1.crt")
    pair.key.replace(other.folder / "node-1.key")
    reissued = other.issue("node-1", "broker")  # not signed by this CA: made again
    x509.load_pem_x509_certificate(reissued.certificate.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(other.certificate.read_bytes())
    )
