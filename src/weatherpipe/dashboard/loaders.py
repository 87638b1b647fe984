"""Where the dashboard's pages get their data: cached, with failures turned into clear messages.

PostgreSQL is read only with the SELECT-only login (`reader_url`), over one connection per URL
kept by `st.cache_resource` and replaced when it breaks. Results are kept by `st.cache_data` for
DASHBOARD_CACHE_SECONDS: the number of that period since the epoch is part of each cache key,
so the setting can change without restarting and a period's results expire together.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import psycopg
import streamlit as st

from weatherpipe.dashboard import queries
from weatherpipe.db.connection import connect, masked
from weatherpipe.db.roles import reader_url
from weatherpipe.errors import WeatherpipeError
from weatherpipe.kafka import browse, describe, readback, topic_views
from weatherpipe.kafka.security import KafkaConnection, kafka_connection
from weatherpipe.kafka.topic_views import KafkaUnavailableError
from weatherpipe.rawzone.listing import topic_files
from weatherpipe.settings import Settings, load_settings

T = TypeVar("T")
# Results are held at most this long even when DASHBOARD_CACHE_SECONDS is larger.
_MAX_TTL = 3600
# Memory bound of each cached function: a few periods of many different filter choices.
_MAX_ENTRIES = 256
# Records read back of each span of offsets no raw file covers: enough for a few transactions'
# worth of a consumer catching up, little time when it is far behind.
READBACK_LIMIT = 10_000

NO_DATA = (
    "No data yet — run `make run`, or step by step: `weatherpipe platform up`, "
    "`weatherpipe produce`, `weatherpipe consume --until-idle 10`, then `weatherpipe batch`."
)


class ReadError(WeatherpipeError):
    """What a page shows instead of a section it cannot read.

    `advice` is our own Markdown (what happened, what to do); `detail` is text that came from
    outside (a server's message, a URL, a file name) and is only ever shown as literal text.
    """

    def __init__(self, advice: str, detail: str | None = None) -> None:
        super().__init__(advice if detail is None else f"{advice} ({detail})")
        self.advice = advice
        self.detail = detail


class NoDataError(ReadError):
    """The processed zone has no tables yet (the batch never ran on this database)."""


class DatabaseUnavailableError(ReadError):
    """PostgreSQL did not answer or refused the dashboard's login or query."""


class UnreadableDataError(ReadError):
    """PostgreSQL answered with values the dashboard cannot turn into Python values."""


class KafkaDownError(ReadError):
    """Kafka did not answer the dashboard."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (server messages go on with hints and context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def settings() -> Settings:
    """The settings of the current environment and `.env` file, so a page never works with
    values older than its process's environment. Read again only when either changed:
    validating them costs a page run some 25 ms."""
    dotenv = Path(".env")
    try:
        stat = dotenv.stat()
        version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _settings(tuple(sorted(os.environ.items())), str(dotenv.resolve()), version)


@lru_cache(maxsize=8)
def _settings(
    environ: tuple[tuple[str, str], ...], dotenv: str, version: tuple[int, int] | None
) -> Settings:
    return load_settings()


def epoch(current: Settings) -> int:
    """The current caching period; a new one starts every DASHBOARD_CACHE_SECONDS (zero: every
    call is its own period, nothing is reused)."""
    if current.dashboard_cache_seconds <= 0:
        return time.monotonic_ns()
    return int(time.time() // current.dashboard_cache_seconds)


def database_url(current: Settings) -> str:
    """The SELECT-only login's URL."""
    return reader_url(current)


def _usable(conn: psycopg.Connection) -> bool:
    return not conn.closed and not conn.broken


@st.cache_resource(validate=_usable, show_spinner=False)
def _connection(url: str, timeout: float) -> psycopg.Connection:
    conn = connect(url, timeout=timeout, autocommit=True)
    # Times are shown in UTC, like the raw zone's day folders and the batch's days.
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET default_transaction_read_only = on")
    return conn


def _query(url: str, timeout: float, query: Callable[[psycopg.Connection], T]) -> T:
    conn = _connection(url, timeout)
    try:
        return query(conn)
    except psycopg.OperationalError:
        if not conn.broken:
            raise
    # The kept connection died (a server restart): one new connection gets one more try.
    return query(_connection(url, timeout))


def _read(url: str, timeout: float, query: Callable[[psycopg.Connection], T]) -> T:
    try:
        return _query(url, timeout, query)
    except psycopg.errors.UndefinedTable as exc:
        raise NoDataError(NO_DATA) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseUnavailableError(
            "The dashboard's login may not read this. Run the batch once (`weatherpipe batch`): "
            "it grants the read rights.",
            exc.diag.message_primary or first_line(exc),
        ) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            "Cannot read PostgreSQL. Start it with `make run` (or `weatherpipe platform up`), or "
            "check DATABASE_URL; if the server is up but refuses the login, run the batch once "
            "(`weatherpipe batch`): it creates the dashboard's login.",
            f"{masked(url)}: {first_line(exc)}",
        ) from exc
    except psycopg.DataError as exc:
        raise UnreadableDataError(
            "PostgreSQL holds values this section cannot show. `weatherpipe batch --full` "
            "rebuilds the daily table from the raw zone under the current validation rules.",
            first_line(exc),
        ) from exc
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(
            "PostgreSQL refused the dashboard's query; the schema may be older than the "
            "dashboard. Run the batch once (`weatherpipe batch`): it brings the schema up to date.",
            first_line(exc),
        ) from exc


def _kafka(servers: KafkaConnection, call: Callable[[], T]) -> T:
    try:
        return call()
    except KafkaUnavailableError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise KafkaDownError(
            "Kafka did not answer. Start it with `make run` (or `weatherpipe platform up`), or "
            "check KAFKA_BOOTSTRAP_SERVERS.",
            f"{servers}: {first_line(cause)}",
        ) from exc


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def coverage(url: str, timeout: float, epoch: int) -> queries.Coverage:
    """Cities and days in the processed zone."""
    return _read(url, timeout, queries.coverage)


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def kpis(url: str, timeout: float, epoch: int, selection: queries.Selection) -> queries.KpiPeriods:
    """Weighted KPIs of a selection and of the period before it."""
    return _read(url, timeout, lambda conn: queries.kpis(conn, selection))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def series(
    url: str, timeout: float, epoch: int, selection: queries.Selection, grain: queries.Grain
) -> list[queries.Row]:
    """Rows per city and day or week of a selection."""
    return _read(url, timeout, lambda conn: queries.series(conn, selection, grain))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def per_city(
    url: str, timeout: float, epoch: int, selection: queries.Selection
) -> list[queries.Row]:
    """Per-city comparison of a selection."""
    return _read(url, timeout, lambda conn: queries.per_city(conn, selection))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def runs(url: str, timeout: float, epoch: int, limit: int) -> list[queries.Row]:
    """Latest batch runs."""
    return _read(url, timeout, lambda conn: queries.runs(conn, limit))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def totals(url: str, timeout: float, epoch: int) -> queries.Row:
    """Totals over all runs."""
    return _read(url, timeout, queries.totals)


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def rejected_by_reason(url: str, timeout: float, epoch: int) -> list[queries.Row]:
    """Quarantined records per reason."""
    return _read(url, timeout, queries.rejected_by_reason)


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def rejected_records(
    url: str, timeout: float, epoch: int, reason: str | None, limit: int
) -> list[queries.Row]:
    """Latest quarantined records."""
    return _read(url, timeout, lambda conn: queries.rejected_records(conn, reason, limit))


@dataclass(frozen=True)
class RawDay:
    """Finished raw files of one day folder, and the lines their names account for."""

    day: str
    files: int
    bytes: int
    lines: int


@dataclass(frozen=True)
class RawZone:
    """The finished raw files of a topic: per day folder, and each file's lines (one per
    offset of the range in its name) by path relative to RAW_DIR."""

    days: list[RawDay]
    lines: dict[str, int]


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def raw_zone(raw_dir: str, topic: str, epoch: int) -> RawZone:
    """Finished raw files of `topic` (temp files are not counted), from their names and sizes:
    no file is read."""
    files: dict[str, int] = defaultdict(int)
    size: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    lines: dict[str, int] = {}
    for raw in topic_files(Path(raw_dir), topic):
        files[raw.date] += 1
        size[raw.date] += raw.size_bytes
        lines[raw.path] = raw.lines
        count[raw.date] += raw.lines
    return RawZone([RawDay(d, files[d], size[d], count[d]) for d in sorted(files)], lines)


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def processed_files(url: str, timeout: float, epoch: int, topic: str) -> dict[str, int]:
    """Lines of each raw file of `topic` the batch processed, by path."""
    rows = _read(url, timeout, lambda conn: queries.processed_files(conn, topic))
    return {r["path"]: r["lines"] for r in rows}


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def outcome(url: str, timeout: float, epoch: int) -> queries.Row:
    """Lines processed, quarantined, observations and duplicates since the last full run."""
    return _read(url, timeout, queries.outcome)


def kafka(current: Settings) -> KafkaConnection:
    """The dashboard's Kafka connection: on the local cluster profile its own login, which may
    only describe and read. A connection that cannot be set up is reported like a broker that
    does not answer."""
    try:
        return kafka_connection(current, "dashboard")
    except WeatherpipeError as exc:
        raise KafkaDownError(
            "Kafka cannot be reached with the dashboard's settings.", first_line(exc)
        ) from exc


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def topics(servers: KafkaConnection, timeout: float, epoch: int) -> list[topic_views.TopicInfo]:
    """The cluster's topics."""
    return _kafka(servers, lambda: topic_views.topics(servers, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def partition_offsets(
    servers: KafkaConnection, topic: str, timeout: float, epoch: int
) -> list[topic_views.PartitionOffsets]:
    """Start and end offsets per partition."""
    return _kafka(servers, lambda: topic_views.partition_offsets(servers, topic, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def offsets_without_record(
    servers: KafkaConnection,
    topic: str,
    spans: tuple[tuple[int, int, int], ...],
    timeout: float,
    epoch: int,
) -> int:
    """How many offsets of the (partition, first, end) `spans` hold no committed record
    (transaction markers, aborted records), read back. A span with more than READBACK_LIMIT
    records (a consumer far behind) is taken to hold records only."""
    wanted = [readback.OffsetSpan(*span) for span in spans]
    found = _kafka(
        servers,
        lambda: readback.committed_records(servers, topic, wanted, timeout, READBACK_LIMIT),
    )
    return sum(
        w.end - w.first - (f.count if f is not None else 0)
        for w, f in zip(wanted, found, strict=True)
        if f is None or f.count < READBACK_LIMIT
    )


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def group_lag(
    servers: KafkaConnection, topic: str, group: str, timeout: float, epoch: int
) -> list[topic_views.PartitionLag]:
    """A consumer group's lag per partition."""
    return _kafka(servers, lambda: topic_views.group_lag(servers, topic, group, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def newest(
    servers: KafkaConnection,
    topic: str,
    partition: int | None,
    count: int,
    timeout: float,
    epoch: int,
) -> list[browse.Record]:
    """The newest records of a topic (or of one partition), newest first."""
    return _kafka(servers, lambda: browse.newest(servers, topic, count, timeout, partition))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def from_offset(
    servers: KafkaConnection,
    topic: str,
    partition: int,
    offset: int,
    count: int,
    timeout: float,
    epoch: int,
) -> list[browse.Record]:
    """Records of one partition from an offset on."""
    return _kafka(
        servers, lambda: browse.from_offset(servers, topic, partition, offset, count, timeout)
    )


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def from_time(
    servers: KafkaConnection,
    topic: str,
    partition: int | None,
    timestamp_ms: int,
    count: int,
    timeout: float,
    epoch: int,
) -> list[browse.Record]:
    """Records written at or after a moment."""
    return _kafka(
        servers,
        lambda: browse.from_time(servers, topic, timestamp_ms, count, timeout, partition),
    )


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def search(
    servers: KafkaConnection,
    topic: str,
    partition: int | None,
    text: str,
    scan: int,
    count: int,
    timeout: float,
    epoch: int,
) -> browse.Search:
    """Records among the newest of each partition whose key or value holds a text."""
    return _kafka(
        servers, lambda: browse.search(servers, topic, text, scan, count, timeout, partition)
    )


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def cluster(servers: KafkaConnection, timeout: float, epoch: int) -> describe.Cluster:
    """The cluster's id, controller and brokers."""
    return _kafka(servers, lambda: describe.cluster(servers, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def broker_settings(
    servers: KafkaConnection, broker: int, timeout: float, epoch: int
) -> list[describe.Setting]:
    """A broker's settings."""
    return _kafka(servers, lambda: describe.broker_settings(servers, broker, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def topic_settings(
    servers: KafkaConnection, topic: str, timeout: float, epoch: int
) -> list[describe.Setting]:
    """A topic's settings."""
    return _kafka(servers, lambda: describe.topic_settings(servers, topic, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def groups(servers: KafkaConnection, timeout: float, epoch: int) -> list[describe.GroupInfo]:
    """The cluster's consumer groups."""
    return _kafka(servers, lambda: describe.groups(servers, timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def lag_of_group(
    servers: KafkaConnection, group: str, topics: tuple[str, ...], timeout: float, epoch: int
) -> list[describe.GroupLag]:
    """A group's committed offsets and lag per partition of the topics it committed to."""
    return _kafka(servers, lambda: describe.group_lag(servers, group, list(topics), timeout))


@st.cache_data(ttl=_MAX_TTL, max_entries=_MAX_ENTRIES, show_spinner=False)
def disk_sizes(folders: tuple[str, ...], topic: str, epoch: int) -> dict[int, int]:
    """Bytes per partition of a topic in a broker's log folders on this machine."""
    return describe.topic_sizes([Path(f) for f in folders], topic)
