"""The local platform: Kafka and a PostgreSQL server, started and stopped on request.

Each service is local (started by us, files under STATE_DIR) unless the settings point at an
existing one: DATABASE_URL for PostgreSQL, a non-local KAFKA_BOOTSTRAP_SERVERS (or
LOCAL_KAFKA=false) for Kafka. External services are only probed, never started or stopped.
PLATFORM_PROFILE picks the local Kafka: one node (`lab`) or a secured cluster (`cluster`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from weatherpipe.db.connection import LoginRefusedError, masked, ping
from weatherpipe.db.url import database_url
from weatherpipe.kafka.admin import cluster_metadata
from weatherpipe.kafka.security import KafkaLoginError, kafka_connection
from weatherpipe.platform.local_kafka import KafkaStatus, LocalKafka
from weatherpipe.platform.local_postgres import LocalPostgres, PostgresStatus
from weatherpipe.platform.processes import ServiceTimeoutError, wait_until_ready
from weatherpipe.settings import Settings

if TYPE_CHECKING:
    from weatherpipe.platform.local_cluster import LocalCluster


Service = Literal["kafka", "postgres"]


@dataclass(frozen=True)
class Started:
    """What one `up` call did: the local services it started (not those that ran before it),
    so its caller can stop just those with `down(settings, started)`, and the seconds it waited
    for each service to answer."""

    services: tuple[Service, ...] = ()
    waited: dict[Service, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformStatus:
    kafka: KafkaStatus
    postgres: PostgresStatus

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {"kafka": asdict(self.kafka), "postgres": asdict(self.postgres)}


def local_kafka(settings: Settings) -> LocalKafka | LocalCluster:
    """The local Kafka of the settings' profile: one node, or the secured cluster."""
    if settings.platform_profile == "cluster":
        # Imported here: the cluster's TLS and Kafka admin code is heavy for the one node.
        from weatherpipe.platform.local_cluster import LocalCluster

        return LocalCluster(settings)
    return LocalKafka(settings)


def up(settings: Settings, timeout: float | None = None) -> Started:
    """Start what is local and not yet running, wait until every service answers.

    Idempotent: services already up are only probed. A service that fails to start is stopped
    again only if this call started it."""
    limit = timeout if timeout is not None else settings.startup_timeout
    started: list[Service] = []
    waited: dict[Service, float] = {}
    if settings.manages_kafka:
        kafka = local_kafka(settings)
        if kafka.pid() is None:
            started.append("kafka")
        waited["kafka"] = kafka.start(limit)
    else:
        connection = kafka_connection(settings, "admin")
        waited["kafka"] = _wait_external(
            "Kafka at " + connection.describe(),
            lambda: cluster_metadata(connection, 2) is not None,
            limit,
        )
    if settings.manages_postgres:
        postgres = LocalPostgres(settings)
        if postgres.pid() is None:
            started.append("postgres")
        waited["postgres"] = postgres.start(limit)
    else:
        url = database_url(settings)
        waited["postgres"] = _wait_external(
            f"PostgreSQL at {masked(url)}", lambda: ping(url), limit
        )
    return Started(tuple(started), waited)


def down(settings: Settings, started: Started | None = None) -> dict[Service, bool]:
    """Stop the local services we started (by their pid files); never touch anything else.

    With `started` (what an `up` call returned), only the services that call started; each
    service's value says whether it was running and is stopped now."""

    def wanted(service: Service) -> bool:
        return started is None or service in started.services

    return {
        "kafka": settings.manages_kafka and wanted("kafka") and local_kafka(settings).stop(),
        "postgres": settings.manages_postgres
        and wanted("postgres")
        and LocalPostgres(settings).stop(),
    }


def status(settings: Settings) -> PlatformStatus:
    kafka: KafkaStatus
    if settings.manages_kafka:
        kafka = local_kafka(settings).status()
    else:
        try:
            running = cluster_metadata(kafka_connection(settings, "admin"), 2) is not None
            problem = None
        except KafkaLoginError as exc:
            running, problem = False, str(exc)
        kafka = KafkaStatus(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            managed=False,
            running=running,
            pid=None,
            problem=problem,
        )
    if settings.manages_postgres:
        postgres = LocalPostgres(settings).status()
    else:
        url = database_url(settings)
        try:
            postgres = PostgresStatus(url=masked(url), managed=False, running=ping(url), pid=None)
        except LoginRefusedError as exc:
            postgres = PostgresStatus(
                url=masked(url), managed=False, running=False, pid=None, problem=str(exc)
            )
    return PlatformStatus(kafka=kafka, postgres=postgres)


def _wait_external(what: str, answers: Callable[[], bool], timeout: float) -> float:
    try:
        return wait_until_ready(what, answers, lambda: True, timeout, [])
    except ServiceTimeoutError as exc:
        raise ServiceTimeoutError(
            f"{what} did not answer within {timeout:g} s. It is configured as an existing "
            "service, so weatherpipe does not start it: start it, or unset the setting to use "
            "the local one."
        ) from exc
