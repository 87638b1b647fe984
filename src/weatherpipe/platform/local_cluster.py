"""The cluster profile's Kafka: 3 KRaft controllers and 3 brokers in separate processes, from
the same jars as the lab's single node, secured the way production clusters are.

- TLS on every listener, with certificates from the local CA (`certificates`). Brokers take
  clients and each other over SASL_SSL; controllers take brokers and each other over mutual
  TLS (a certificate on both sides, its CN the principal).
- Logins are SASL/SCRAM-SHA-512 users with generated passwords (STATE_DIR, mode 600). The
  administrator and the brokers' own user are created when the storage is formatted, since
  nobody could log in to create them later; the producer, consumer and dashboard users are
  created by the administrator over the Admin API at every `up`.
- ACLs (`StandardAuthorizer`: nothing is allowed unless granted) give each user only what its
  job needs: see `acl_bindings`.
- Topics get replication factor 3 and min.insync.replicas 2 (the brokers' defaults), so one
  broker may die without losing an acknowledged record or stopping the producers.

Files: STATE_DIR/kafka-cluster/node-<id>/ (server.properties, data/, logs/, kafka.pid),
STATE_DIR/kafka-cluster/logins/, STATE_DIR/tls/ (CA and certificates), and the client
properties of Kafka's own command-line tools in STATE_DIR/kafka-cluster/clients/.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Final, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from weatherpipe.errors import SettingsError, TerminalError
from weatherpipe.kafka.admin import admin_client, cluster_metadata
from weatherpipe.kafka.security import (
    LOGINS,
    KafkaLoginError,
    Role,
    kafka_connection,
    local_password,
)
from weatherpipe.local_tls import local_ca, tls_folder
from weatherpipe.net import accepts_connections
from weatherpipe.platform import processes
from weatherpipe.platform.certificates import KeyPair, LocalCA
from weatherpipe.platform.local_kafka import (
    MAIN_CLASS,
    STORAGE_TOOL,
    KafkaSetupError,
    KafkaStatus,
    LocalKafka,
    jvm_command,
)
from weatherpipe.settings import LOCAL_HOSTS, Settings

_RESOURCES = resources.files("weatherpipe.platform") / "resources"
QUORUM_TOOL: Final = "org.apache.kafka.tools.MetadataQuorumCommand"
FIRST_CONTROLLER_ID: Final = 101
BROKER_USER: Final = "broker"
CONTROLLER_CN: Final = "controller"
SCRAM: Final = "SCRAM-SHA-512"
# Group ids of consumers that only read at offsets they choose and never commit (the
# dashboard's last messages, the producer's read-back of an interrupted run).
DASHBOARD_GROUPS: Final = "weatherpipe-dashboard-"
READBACK_GROUPS: Final = "weatherpipe-readback-"
# A node killed a moment ago may hold its port until its last thread is gone.
_PORT_WAIT: Final = 15.0


@dataclass(frozen=True)
class Node:
    """One Kafka process of the cluster: its id, role, port and folder."""

    node_id: int
    role: Literal["controller", "broker"]
    port: int
    home: Path

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    def pid(self) -> int | None:
        """Our process of this node, if it runs."""
        return processes.running_pid(self.pid_file, str(self.properties))

    def log_files(self) -> list[Path]:
        return [self.logs / "kafka.out", self.logs / "server.log"]


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    role: str
    port: int
    pid: int | None
    running: bool
    """Its process runs and accepts connections on its port."""


@dataclass(frozen=True)
class Voter:
    """A controller as the quorum's leader sees it."""

    node_id: int
    status: str
    """Leader or Follower."""
    lag: int
    """Metadata records it is behind the leader."""
    last_fetch_ms_ago: int | None
    """When it last fetched from the leader (None: never since the leader was elected)."""


@dataclass(frozen=True)
class QuorumStatus:
    leader: int | None
    voters: list[Voter]


@dataclass(frozen=True)
class ClusterStatus(KafkaStatus):
    """The cluster as a whole (`running`: it serves clients) and each of its nodes."""

    nodes: list[NodeStatus] = field(default_factory=list)
    quorum: QuorumStatus | None = None


class LocalCluster:
    """The six processes of the cluster profile, started and stopped together or one by one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir.resolve() / "kafka-cluster"
        self.clients = self.home / "clients"
        self.ca = LocalCA(tls_folder(settings))
        self.brokers = [
            Node(i + 1, "broker", port, self.home / f"node-{i + 1}")
            for i, port in enumerate(_broker_ports(settings))
        ]
        self.controllers = [
            Node(
                FIRST_CONTROLLER_ID + i,
                "controller",
                settings.kafka_controller_port + i,
                self.home / f"node-{FIRST_CONTROLLER_ID + i}",
            )
            for i in range(3)
        ]
        clash = {n.port for n in self.brokers} & {n.port for n in self.controllers}
        if clash:
            raise SettingsError(
                f"The cluster's brokers (KAFKA_BOOTSTRAP_SERVERS) and controllers "
                f"(KAFKA_CONTROLLER_PORT and the next two ports) would share port(s) "
                f"{sorted(clash)}: choose ports that do not overlap."
            )

    @property
    def nodes(self) -> list[Node]:
        return [*self.controllers, *self.brokers]

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def pid(self) -> int | None:
        """The pid of one of our running nodes; None when none runs."""
        return next((pid for n in self.nodes if (pid := n.pid()) is not None), None)

    # --- provisioning -----------------------------------------------------------------------
    def prepare(self) -> None:
        """Jars, certificates, logins, configuration and formatted storage of every node."""
        local = LocalKafka(self.settings)
        local.ensure_jars()
        self.ca.ensure()
        for node in self.nodes:
            for folder in (node.data, node.logs):
                folder.mkdir(parents=True, exist_ok=True)
            cn = CONTROLLER_CN if node.role == "controller" else BROKER_USER
            self._render(node, self.ca.issue(f"kafka-node-{node.node_id}", cn))
        self._write_client_properties()
        self._format([n for n in self.nodes if not (n.data / "meta.properties").exists()])

    def _render(self, node: Node, pair: KeyPair) -> None:
        voters = ",".join(f"{c.node_id}@127.0.0.1:{c.port}" for c in self.controllers)
        template = f"cluster-{node.role}.properties"
        text = Template((_RESOURCES / template).read_text()).substitute(
            node_id=node.node_id,
            voters=voters,
            port=node.port,
            log_dirs=node.data,
            broker_jaas=_jaas(BROKER_USER, self._password(BROKER_USER)),
        )
        text += Template((_RESOURCES / "cluster-common.properties").read_text()).substitute(
            certificate_chain=_inline_pem(pair.certificate),
            private_key=_inline_pem(pair.key),
            ca_file=self.ca.certificate,
            super_users=";".join(
                f"User:{u}" for u in (CONTROLLER_CN, BROKER_USER, LOGINS["admin"])
            ),
        )
        _write_private(node.properties, text)  # it holds the node's key and a password

    def _format(self, nodes: list[Node]) -> None:
        """Format the storage of `nodes` (in parallel: each is a JVM start). The controllers'
        storage gets the two logins needed before anyone can log in."""
        if not nodes:
            return
        cluster_id = self._cluster_id()
        scram = [
            arg
            for user in (LOGINS["admin"], BROKER_USER)
            for arg in ("--add-scram", f"{SCRAM}=[name={user},password={self._password(user)}]")
        ]
        running = []
        for node in nodes:
            command = [
                *self._tool_jvm(),
                STORAGE_TOOL,
                "format",
                f"--cluster-id={cluster_id}",
                "--config",
                str(node.properties),
                *(scram if node.role == "controller" else []),
            ]
            running.append(
                (node, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
            )
        for node, proc in running:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise KafkaSetupError(
                    f"Formatting the storage of Kafka node {node.node_id} in {node.data} failed:"
                    f"\n{out.decode(errors='replace')[-3000:]}"
                )

    def _cluster_id(self) -> str:
        path = self.home / "cluster.id"
        if not path.exists():
            path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        return path.read_text().strip()

    def _password(self, user: str) -> str:
        return local_password(self.settings, user)

    def _jvm(self, node: Node, heap: str) -> list[str]:
        local = LocalKafka(self.settings)
        return jvm_command(local.java(), local.lib, node.logs, heap)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float) -> float:
        """Start every node that is not running, wait until all brokers serve clients, then
        create the logins and ACLs of the current settings. Returns the seconds waited.

        A node that dies during start-up is reported with its log; the nodes this call
        started are stopped again then."""
        started = time.monotonic()
        stopped = [n for n in self.nodes if n.pid() is None]
        for node in stopped:
            processes.require_free_port(
                node.port, f"Kafka node {node.node_id}", _port_hint(node), wait=_PORT_WAIT
            )
        self.prepare()
        try:
            for node in stopped:
                self._launch(node)
            processes.wait_until_ready(
                "The Kafka cluster",
                self.serving,
                lambda: all(n.pid() is not None for n in stopped),
                timeout,
                [log for n in self.nodes for log in n.log_files()],
            )
            self.grant(timeout)
        except BaseException:
            for node in stopped:
                self.stop_node(node)
            raise
        return time.monotonic() - started

    def start_node(self, node: Node, timeout: float) -> None:
        """Start one node that is not running (after a crash) and wait until the cluster
        serves clients with all its brokers again."""
        if node.pid() is None:
            processes.require_free_port(
                node.port, f"Kafka node {node.node_id}", _port_hint(node), wait=_PORT_WAIT
            )
            self._launch(node)
        processes.wait_until_ready(
            f"Kafka node {node.node_id}",
            lambda: self.serving() and accepts_connections("127.0.0.1", node.port),
            lambda: node.pid() is not None,
            timeout,
            node.log_files(),
        )

    def _launch(self, node: Node) -> None:
        heap = (
            self.settings.kafka_cluster_controller_heap
            if node.role == "controller"
            else self.settings.kafka_cluster_broker_heap
        )
        with (node.logs / "kafka.out").open("ab") as out:
            proc = subprocess.Popen(
                [*self._jvm(node, heap), MAIN_CLASS, str(node.properties)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; `platform down` stops it
            )
        node.pid_file.write_text(f"{proc.pid}\n")

    def serving(self) -> bool:
        """True when every broker is registered and serves the administrator's login."""
        metadata = cluster_metadata(kafka_connection(self.settings, "admin"), 2)
        return metadata is not None and set(metadata.brokers) >= {b.node_id for b in self.brokers}

    def stop(self, timeout: float = 60) -> bool:
        """Stop our nodes, brokers first (their controlled shutdown needs the controllers),
        then the controllers; True if any was running."""
        ran = False
        for group in (self.brokers, self.controllers):
            pids = [pid for n in group if (pid := n.pid()) is not None]
            ran = ran or bool(pids)
            processes.terminate_all(pids, timeout)
            for node in group:
                node.pid_file.unlink(missing_ok=True)
        return ran

    def stop_node(self, node: Node, timeout: float = 60) -> None:
        pid = node.pid()
        if pid is not None:
            processes.terminate(pid, timeout)
        node.pid_file.unlink(missing_ok=True)

    # --- logins and ACLs --------------------------------------------------------------------
    def grant(self, timeout: float = 60) -> None:
        """Create (or reset) the producer's, consumer's and dashboard's logins and the ACLs
        for the current KAFKA_TOPIC, its dead-letter topic and KAFKA_GROUP_ID; then wait until
        every broker accepts each login. Idempotent: run by every `platform up`."""
        admin = admin_client(kafka_connection(self.settings, "admin"))
        roles: list[Role] = ["producer", "consumer", "dashboard"]
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                LOGINS[role],
                ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                self._password(LOGINS[role]).encode(),
            )
            for role in roles
        ]
        try:
            for future in admin.alter_user_scram_credentials(upserts).values():
                future.result(timeout)
            for future in admin.create_acls(acl_bindings(self.settings)).values():
                future.result(timeout)
        except KafkaException as exc:
            raise TerminalError(
                f"Creating the cluster's logins and ACLs failed: {exc.args[0]}. See the "
                f"brokers' logs in {self.home}/node-*/logs."
            ) from exc
        deadline = time.monotonic() + timeout
        for role in roles:
            # New credentials reach each broker through the metadata log a moment later.
            while True:
                try:
                    if cluster_metadata(kafka_connection(self.settings, role), 5) is not None:
                        break
                except KafkaLoginError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.2)

    # --- inspection -------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        nodes = [
            NodeStatus(
                n.node_id,
                n.role,
                n.port,
                pid,
                pid is not None and accepts_connections("127.0.0.1", n.port),
            )
            for n in self.nodes
            for pid in [n.pid()]
        ]
        problem = None
        serving = False
        if any(s.running for s in nodes if s.role == "broker"):
            try:
                connection = kafka_connection(self.settings, "admin")
                serving = cluster_metadata(connection, 3) is not None
            except KafkaLoginError as exc:
                problem = str(exc)
        controllers_up = any(s.running for s in nodes if s.role == "controller")
        return ClusterStatus(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            managed=True,
            running=serving,
            pid=self.pid(),
            nodes=nodes,
            quorum=self.quorum() if controllers_up and problem is None else None,
            problem=problem,
        )

    def quorum(self) -> QuorumStatus | None:
        """The KRaft quorum as its leader reports it (asked over the controllers' listener
        with the administrator's certificate, so it answers even when no broker runs); None
        when no controller answers."""
        config = self._client_properties_file("controller-admin")
        endpoints = ",".join(f"127.0.0.1:{c.port}" for c in self.controllers)
        try:
            result = subprocess.run(
                [
                    *self._tool_jvm(),
                    QUORUM_TOOL,
                    "--bootstrap-controller",
                    endpoints,
                    "--command-config",
                    str(config),
                    "describe",
                    "--replication",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        if result.returncode != 0:
            return None
        return parse_replication(result.stdout, int(time.time() * 1000))

    def _tool_jvm(self) -> list[str]:
        local = LocalKafka(self.settings)
        # A short-lived tool: quick start matters more than peak speed.
        return [
            local.java(),
            "-Xmx128m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={_RESOURCES / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.home / 'tool-logs'}",
            "-cp",
            f"{local.lib}/*",
        ]

    # --- Kafka's own tools ------------------------------------------------------------------
    def client_properties(self, role: Role) -> Path:
        """A client properties file (Java clients: Kafka's command-line and performance tools)
        that logs in as `role` over SASL_SSL and trusts the local CA. Mode 600."""
        return self._client_properties_file(role)

    def _client_properties_file(self, name: str) -> Path:
        return self.clients / f"{name}.properties"

    def _write_client_properties(self) -> None:
        for role, user in LOGINS.items():
            _write_private(
                self._client_properties_file(role),
                "security.protocol=SASL_SSL\n"
                f"sasl.mechanism={SCRAM}\n"
                f"sasl.jaas.config={_jaas(user, self._password(user))}\n"
                "ssl.truststore.type=PEM\n"
                f"ssl.truststore.location={local_ca(self.settings)}\n",
            )
        pair = self.ca.issue("kafka-admin", LOGINS["admin"])
        _write_private(
            self._client_properties_file("controller-admin"),
            "security.protocol=SSL\n"
            "ssl.keystore.type=PEM\n"
            f"ssl.keystore.certificate.chain={_inline_pem(pair.certificate)}\n"
            f"ssl.keystore.key={_inline_pem(pair.key)}\n"
            "ssl.truststore.type=PEM\n"
            f"ssl.truststore.location={local_ca(self.settings)}\n",
        )


def acl_bindings(settings: Settings) -> list[AclBinding]:
    """Least privilege for KAFKA_TOPIC, its dead-letter topic and KAFKA_GROUP_ID:

    - producer: create, describe and write both topics and the ledger, read the topic's
      configuration (its message size limit); read them back to
      resume an interrupted run (with group ids it never commits to); write in transactions
      of the topic's transactional id;
    - consumer: read and describe the topic, join and commit to its group, read it back;
    - dashboard: describe and read both topics, see the group's committed offsets (its lag),
      read recent messages (with group ids it never commits to).
    """
    # Heavy modules; only their names.
    from weatherpipe.ingest.csv_to_topic import DLQ_SUFFIX, transactional_id
    from weatherpipe.ingest.ledger import ledger_topic

    topics = (settings.kafka_topic, settings.kafka_topic + DLQ_SUFFIX)
    producer, consumer, dashboard = (
        f"User:{LOGINS[r]}" for r in ("producer", "consumer", "dashboard")
    )
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    op = AclOperation
    grants: list[tuple[str, ResourceType, str, ResourcePatternType, AclOperation]] = []
    for topic in topics:
        for operation in (op.CREATE, op.DESCRIBE, op.WRITE, op.READ):
            grants.append((producer, ResourceType.TOPIC, topic, literal, operation))
        for operation in (op.DESCRIBE, op.READ):
            grants.append((dashboard, ResourceType.TOPIC, topic, literal, operation))
    # The producer reads the topic's message size limit, so a row too large for it is
    # dead-lettered instead of failing the send.
    grants.append(
        (producer, ResourceType.TOPIC, settings.kafka_topic, literal, op.DESCRIBE_CONFIGS)
    )
    for operation in (op.CREATE, op.DESCRIBE, op.WRITE, op.READ):
        grants.append(
            (producer, ResourceType.TOPIC, ledger_topic(settings.kafka_topic), literal, operation)
        )
    for operation in (op.DESCRIBE, op.WRITE):
        grants.append(
            (
                producer,
                ResourceType.TRANSACTIONAL_ID,
                transactional_id(settings.kafka_topic),
                literal,
                operation,
            )
        )
    for operation in (op.DESCRIBE, op.READ):
        grants.append((consumer, ResourceType.TOPIC, settings.kafka_topic, literal, operation))
        grants.append((consumer, ResourceType.GROUP, settings.kafka_group_id, literal, operation))
    grants.append((dashboard, ResourceType.GROUP, settings.kafka_group_id, literal, op.DESCRIBE))
    grants.append((dashboard, ResourceType.GROUP, DASHBOARD_GROUPS, prefixed, op.READ))
    # Read-backs (the producer's resume, the consumer's and the dashboard's check that an
    # offset past the last stored record holds a record, not a transaction marker) use
    # throw-away group ids they never commit to.
    for reader in (producer, consumer, dashboard):
        grants.append((reader, ResourceType.GROUP, READBACK_GROUPS, prefixed, op.READ))
    return [
        AclBinding(kind, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)
        for principal, kind, name, pattern, operation in grants
    ]


def parse_replication(text: str, now_ms: int) -> QuorumStatus | None:
    """The voters in `kafka-metadata-quorum describe --replication`'s table (brokers, which
    are observers, left out)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    header = next((i for i, cols in enumerate(lines) if cols and cols[0] == "NodeId"), None)
    if header is None:
        return None
    names = lines[header]
    voters = []
    for cols in lines[header + 1 :]:
        row = dict(zip(names, cols, strict=False))
        if row.get("Status") not in ("Leader", "Follower"):
            continue
        fetched = int(row.get("LastFetchTimestamp", "-1"))
        voters.append(
            Voter(
                node_id=int(row["NodeId"]),
                status=row["Status"],
                lag=int(row.get("Lag", "0")),
                last_fetch_ms_ago=max(0, now_ms - fetched) if fetched > 0 else None,
            )
        )
    leader = next((v.node_id for v in voters if v.status == "Leader"), None)
    return QuorumStatus(leader=leader, voters=sorted(voters, key=lambda v: v.node_id))


def _broker_ports(settings: Settings) -> list[int]:
    """One broker per entry of KAFKA_BOOTSTRAP_SERVERS, each on this machine."""
    ports = []
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if host.strip("[]") not in LOCAL_HOSTS:
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers!r}: the cluster "
                f"profile starts its brokers on this machine, but {server.strip()!r} is not "
                "local. List local addresses (e.g. localhost:9192,localhost:9193,"
                "localhost:9194), or set LOCAL_KAFKA=false to use that cluster as it is."
            )
        ports.append(int(port))
    if len(ports) < 3 or len(set(ports)) != len(ports):
        raise SettingsError(
            f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers!r}: the cluster profile "
            "needs at least three brokers on distinct ports, one per entry (e.g. "
            "localhost:9192,localhost:9193,localhost:9194)."
        )
    return ports


def _port_hint(node: Node) -> str:
    if node.role == "broker":
        return "choose other broker ports in KAFKA_BOOTSTRAP_SERVERS"
    return "choose another first controller port with KAFKA_CONTROLLER_PORT=<port>"


def _jaas(user: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";'
    )


def _inline_pem(path: Path) -> str:
    """A PEM file as one properties value: Java's properties reader turns `\\n` back into
    line breaks."""
    return path.read_text().strip().replace("\n", "\\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds a key or a password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
