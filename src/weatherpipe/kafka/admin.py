"""Kafka admin helpers: readiness probe, topic creation and description."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from weatherpipe.errors import TerminalError, TransientError
from weatherpipe.kafka.security import (
    ClientWatch,
    KafkaAuthorizationError,
    KafkaConnection,
    KafkaLoginError,
    denied,
    refusal,
)
from weatherpipe.net import any_accepts

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient, ClusterMetadata  # type: ignore[attr-defined]

CLIENT_LOG = logging.getLogger("weatherpipe.kafka.client")
"""Where the Kafka clients' own log lines go (instead of raw lines on stderr). Only errors are
shown: the client retries what it warns about (a coordinator still loading after a broker
start, a dropped connection), and what it gives up on surfaces as a counted delivery or
consume error anyway. The CLI's log set-up (`weatherpipe.ui.logs`) may have chosen its level
already (LOG_LEVEL=DEBUG shows everything); this is the default elsewhere."""
if CLIENT_LOG.level == logging.NOTSET:
    CLIENT_LOG.setLevel(logging.ERROR)


def admin_client(connection: KafkaConnection, **extra: str | int | float) -> AdminClient:
    """An AdminClient for `connection`; `extra` is passed through as librdkafka config. Its log
    lines go to `CLIENT_LOG` (errors only), like the producer's and the consumer's."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({**connection.config(), **extra}, logger=CLIENT_LOG)


def cluster_metadata(connection: KafkaConnection, timeout: float) -> ClusterMetadata | None:
    """The cluster's metadata (brokers and topics), or None if no broker answered in time.

    Raises `KafkaLoginError` when the brokers answer but refuse the connection (a wrong login,
    plain text to a TLS listener, an untrusted certificate): waiting longer cannot fix that.
    The client's own log lines (every refused connection while a broker starts) are kept to
    explain a refusal, never printed.
    """
    if not any_accepts(connection.bootstrap_servers, min(timeout, 1.0)):
        return None  # nothing listens: decided without loading the Kafka client
    # Imported here: the Kafka client is heavy, and a broker that is down needs none.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    watch = ClientWatch()
    client = AdminClient(
        {
            **connection.config(),
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "reconnect.backoff.max.ms": 500,
            "error_cb": watch.error,  # type: ignore[dict-item]
        },
        logger=watch.logger,
    )
    deadline = time.monotonic() + timeout
    while True:
        # Asked in short rounds: a refusal is known after the first one, not after `timeout`.
        try:
            metadata: ClusterMetadata = client.list_topics(
                timeout=max(0.1, min(1.0, deadline - time.monotonic()))
            )
            if metadata.brokers:
                return metadata
        except KafkaException:
            pass
        client.poll(0)  # serves the error callbacks and log lines gathered meanwhile
        problem = refusal(connection, watch.errors, watch.lines)
        if problem is not None:
            raise KafkaLoginError(problem)
        if time.monotonic() >= deadline:
            return None


def check_login(connection: KafkaConnection, timeout: float = 10) -> None:
    """Raise `KafkaLoginError` (with what to change) when the brokers refuse `connection`;
    return quietly when they accept it or do not answer (clients wait for them)."""
    cluster_metadata(connection, timeout)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create if it is missing."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    """Topic configuration to create it with (e.g. cleanup.policy)."""


def ensure_topics(
    connection: KafkaConnection, topics: list[TopicSpec], timeout: float = 30
) -> list[str]:
    """Make sure the topics a producer writes exist and this login may write them.

    Creates the topics that do not exist yet (an existing topic is left as it is) and returns
    their names. Raises `TransientError` if no broker answers, `KafkaLoginError` if the brokers
    refuse the login, `KafkaAuthorizationError` if its ACLs allow no writing (checked before
    the first record, so a wrong login fails at once rather than record by record), and
    `TerminalError` if the broker refuses a topic (say, a replication factor above the broker
    count).
    """
    metadata = cluster_metadata(connection, min(timeout, 10))
    if metadata is None:
        raise TransientError(
            f"No Kafka broker answered at {connection.bootstrap_servers}. Start the local one "
            "with `weatherpipe platform up`, or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    client = admin_client(connection)  # created only now: it logs refused connections
    missing = [t for t in topics if t.name not in metadata.topics]
    created = []
    futures = (
        client.create_topics(
            [
                NewTopic(t.name, t.partitions, t.replication_factor, config=t.config)
                for t in missing
            ],
            request_timeout=timeout,
        )
        if missing
        else {}
    )
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if error.code() in _denied_codes():
                raise KafkaAuthorizationError(
                    denied(connection, "create", f"topic {name!r}", [])
                ) from exc
            raise TerminalError(
                f"Kafka refused to create topic {name!r}: {error.str()}. Create it yourself "
                "(or fix KAFKA_PARTITIONS / KAFKA_REPLICATION_FACTOR) and run again."
            ) from exc
    _require_write(client, connection, [t.name for t in topics], timeout)
    return created


def _denied_codes() -> tuple[int, ...]:
    from confluent_kafka import KafkaError

    return (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)


def _not_yet_codes() -> tuple[int, ...]:
    """A topic created a moment ago may not be known to every broker yet."""
    from confluent_kafka import KafkaError

    return (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE)


def _require_write(
    client: AdminClient, connection: KafkaConnection, names: list[str], timeout: float
) -> None:
    """Raise `KafkaAuthorizationError` unless this login may write every topic in `names`.

    The brokers say which operations the login may perform on each topic; a broker without
    an authorizer allows them all, one too old to say is not asked."""
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AclOperation  # type: ignore[attr-defined]

    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            future = client.describe_topics(
                TopicCollection([name]),
                include_authorized_operations=True,
                request_timeout=timeout,
            )[name]
            try:
                described = future.result()
                break
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() in _denied_codes():
                    raise KafkaAuthorizationError(
                        denied(connection, "write to", f"topic {name!r}", [])
                    ) from exc
                if error.code() not in _not_yet_codes() or time.monotonic() > deadline:
                    raise TerminalError(
                        f"Kafka could not describe topic {name!r}: {error.str()}."
                    ) from exc
                time.sleep(0.2)
        allowed = described.authorized_operations
        if allowed is not None and not {AclOperation.WRITE, AclOperation.ALL} & set(allowed):
            raise KafkaAuthorizationError(
                denied(connection, "write to", f"topic {name!r}", [op.name for op in allowed])
            )


def topic_config(connection: KafkaConnection, topic: str, name: str, timeout: float = 30) -> str:
    """The value of the configuration entry `name` of `topic` (its own or the broker's default).
    A topic created a moment ago may not be known to the broker answering yet, so it is asked
    again for a while."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    client = admin_client(connection)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            future = client.describe_configs([resource], request_timeout=timeout)[resource]
            return str(future.result(timeout)[name].value)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() in _not_yet_codes() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise TransientError(
                f"Kafka at {connection.bootstrap_servers} did not describe topic {topic!r} "
                f"({error.str()}). Check that the broker runs and run again."
            ) from exc
