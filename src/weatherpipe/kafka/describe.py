"""Read-only descriptions of a Kafka cluster for the dashboard: brokers and the KRaft controller
quorum, topic configurations and sizes on disk, consumer groups with their lag.

confluent-kafka's AdminClient has no DescribeMetadataQuorum nor DescribeLogDirs: the quorum is
described by the brokers' own settings (`process.roles`, `controller.quorum.*`), and, where a
broker's `log.dirs` lie on this machine (the local platform), its leader and epoch are read
from the KRaft `quorum-state` file and partition sizes from the partition folders.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import (
    partition_offsets,
    readonly_consumer,
    shared_admin,
    unavailable,
)

# Broker settings that say what a node does in the KRaft quorum.
QUORUM_SETTINGS = (
    "process.roles",
    "node.id",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
)
# Topic settings shown first: how long and how much the topic keeps, and how.
MAIN_TOPIC_SETTINGS = (
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "min.insync.replicas",
    "compression.type",
    "max.message.bytes",
)


@dataclass(frozen=True)
class Broker:
    """A broker as the cluster's metadata lists it."""

    id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True)
class Cluster:
    """The cluster's id, the node the metadata names as controller, and its brokers."""

    id: str | None
    controller: int | None
    brokers: list[Broker]


@dataclass(frozen=True)
class Setting:
    """A configuration entry: its value (None when unset or secret) and whether it is the
    default."""

    name: str
    value: str | None
    default: bool
    source: str


@dataclass(frozen=True)
class QuorumState:
    """What a KRaft node's `quorum-state` file says: the current leader and its epoch."""

    leader: int | None
    epoch: int | None
    path: str


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group: its state, members, and the topics its members are assigned."""

    id: str
    state: str
    members: int
    protocol: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class GroupLag:
    """A group's position in one partition; `committed` is None before its first commit."""

    topic: str
    partition: int
    end: int
    committed: int | None
    start: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed if self.committed is not None else self.start)


def cluster(kafka: KafkaConnection, timeout: float) -> Cluster:
    """The cluster's id, controller and brokers, by broker id."""
    try:
        described = (
            shared_admin(kafka, timeout).describe_cluster(request_timeout=timeout).result(timeout)
        )
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    controller = described.controller.id if described.controller is not None else None
    brokers = sorted(
        (Broker(n.id, n.host, n.port, n.rack) for n in described.nodes), key=lambda b: b.id
    )
    return Cluster(described.cluster_id, controller, brokers)


def _source(code: int) -> str:
    """Where a setting's value comes from, in words ("static broker config", "default config")."""
    try:
        return str(ConfigSource(code).name).lower().replace("_", " ")
    except ValueError:
        return str(code)


def _settings(kafka: KafkaConnection, resource: ConfigResource, timeout: float) -> list[Setting]:
    admin = shared_admin(kafka, timeout)
    try:
        futures = admin.describe_configs([resource], request_timeout=timeout)
        entries = next(iter(futures.values())).result(timeout)
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    return sorted(
        (
            Setting(
                e.name,
                None if e.is_sensitive else e.value,
                bool(e.is_default),
                _source(e.source),
            )
            for e in entries.values()
        ),
        key=lambda s: s.name,
    )


def broker_settings(kafka: KafkaConnection, broker: int, timeout: float) -> list[Setting]:
    """Every setting of one broker, by name."""
    return _settings(kafka, ConfigResource(ResourceType.BROKER, str(broker)), timeout)


def topic_settings(kafka: KafkaConnection, topic: str, timeout: float) -> list[Setting]:
    """Every setting of one topic, by name."""
    return _settings(kafka, ConfigResource(ResourceType.TOPIC, topic), timeout)


def log_dirs(settings: list[Setting]) -> list[Path]:
    """A broker's log folders (from `log.dirs`, else `log.dir`) that exist on this machine."""
    by_name = {s.name: s.value for s in settings}
    value = by_name.get("log.dirs") or by_name.get("log.dir") or ""
    return [Path(d) for d in value.split(",") if d and Path(d).is_dir()]


def quorum_state(settings: list[Setting]) -> QuorumState | None:
    """The leader and epoch a KRaft node last recorded, when its metadata folder is on this
    machine; None otherwise."""
    by_name = {s.name: s.value for s in settings}
    metadata = by_name.get("metadata.log.dir")
    folders = [Path(metadata)] if metadata else []
    for folder in [*folders, *log_dirs(settings)]:
        path = folder / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        leader, epoch = state.get("leaderId"), state.get("leaderEpoch")
        return QuorumState(
            leader if isinstance(leader, int) and leader >= 0 else None,
            epoch if isinstance(epoch, int) else None,
            str(path),
        )
    return None


def topic_sizes(folders: list[Path], topic: str) -> dict[int, int]:
    """Bytes on disk of each partition of `topic` in a broker's log folders (partition ->
    bytes): the files of `<topic>-<partition>` folders, without reading any of them."""
    sizes: dict[int, int] = {}
    for folder in folders:
        for entry in os.scandir(folder):
            name, _, number = entry.name.rpartition("-")
            if name != topic or not number.isdigit() or not entry.is_dir():
                continue
            total = sum(f.stat().st_size for f in os.scandir(entry.path) if f.is_file())
            sizes[int(number)] = sizes.get(int(number), 0) + total
    return sizes


def groups(kafka: KafkaConnection, timeout: float) -> list[GroupInfo]:
    """The cluster's consumer groups, by id, with their state and members."""
    admin = shared_admin(kafka, timeout)
    try:
        listed = admin.list_consumer_groups(request_timeout=timeout).result(timeout)
        ids = sorted(g.group_id for g in listed.valid)
        if not ids:
            return []
        futures = admin.describe_consumer_groups(ids, request_timeout=timeout)
        described = {gid: f.result(timeout) for gid, f in futures.items()}
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    found = []
    for gid in ids:
        d = described[gid]
        topics = sorted(
            {tp.topic for m in d.members for tp in (m.assignment.topic_partitions or [])}
        )
        state = d.state.name if isinstance(d.state, ConsumerGroupState) else str(d.state)
        found.append(GroupInfo(gid, state, len(d.members), d.partition_assignor, tuple(topics)))
    return found


def group_lag(
    kafka: KafkaConnection, group_id: str, topics: list[str], timeout: float
) -> list[GroupLag]:
    """Per partition of the `topics`, what `group_id` has committed and its lag; partitions of
    topics the group never committed to are left out.

    The committed offsets are fetched by a consumer of that group that never subscribes (so it
    never joins the group nor commits): the admin API's ListConsumerGroupOffsets crashed
    librdkafka (a null group handle in its OffsetFetch response path)."""
    offsets = {t: partition_offsets(kafka, t, timeout) for t in topics}
    wanted = [TopicPartition(t, o.partition) for t, parts in offsets.items() for o in parts]
    if not wanted:
        return []
    consumer = readonly_consumer(kafka, group_id, timeout)
    try:
        answer = consumer.committed(wanted, timeout=timeout)
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    committed = {
        (tp.topic, tp.partition): tp.offset for tp in answer if tp.offset >= 0 and not tp.error
    }
    used = {t for t, _ in committed}
    return [
        GroupLag(t, o.partition, o.end, committed.get((t, o.partition)), o.start)
        for t, parts in offsets.items()
        if t in used
        for o in parts
    ]
