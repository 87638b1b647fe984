"""The producer's ledger: a compacted topic `<topic>.ledger` beside the event topic, written in
the producers' transactions, that says which data sets the topic holds and which run was
interrupted.

It lives in Kafka rather than in a local file so that every producer of the topic sees it,
on whichever machine it runs, and so that it changes together with the records it describes:
the note of a new run goes out in the run's first transaction, the record of a finished data
set and the removal of the note in its last. Records (key: JSON value):

- `attempt`: the run that started and has not finished (`Attempt`); a tombstone once it has;
- `sent:<sha256 of the file>`: a data set sent in full with `--all` (`SentRun`).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from weatherpipe.errors import TerminalError
from weatherpipe.kafka.readback import records_since
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import KafkaUnavailableError

LEDGER_SUFFIX: Final = ".ledger"
ATTEMPT_KEY: Final = "attempt"
SENT_PREFIX: Final = "sent:"
# The ledger is read in full at the start of each run: small, but ask for it patiently.
TIMEOUT_S: Final = 30.0


def ledger_topic(topic: str) -> str:
    return topic + LEDGER_SUFFIX


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Attempt:
    """A producer run that started and has not finished: what it sends (the file, its
    content's digest, the day for `--daily`) and where each topic ended before its first
    record (topic -> partition -> end offset)."""

    source: str
    day: str | None
    digest: str
    start: dict[str, dict[int, int]]
    started_utc: str
    host: str

    def same_job(self, source: Path, digest: str, day: str | None) -> bool:
        """Whether a run of `source` (with `digest`) for `day` continues this one: the same
        day, and the same file or the same content (a file moved, or edited after the
        interruption)."""
        return self.day == day and (self.source == str(source.resolve()) or self.digest == digest)

    @property
    def flag(self) -> str:
        return "--daily" if self.day else "--all"


@dataclass(frozen=True)
class SentRun:
    """A data set sent in full to the topic (the last run that sent it)."""

    digest: str
    source: str
    rows: int
    sent: int
    quarantined: int
    started_utc: str
    finished_utc: str
    host: str
    runs: int = 1
    """How many runs sent it in full (more than one only with `--again`)."""


@dataclass
class LedgerState:
    """What the ledger says now."""

    attempt: Attempt | None = None
    sent: dict[str, SentRun] = field(default_factory=dict)

    def sent_run(self, digest: str) -> SentRun | None:
        return self.sent.get(digest)


def new_attempt(
    source: Path, digest: str, day: str | None, start: dict[str, dict[int, int]]
) -> Attempt:
    return Attempt(str(source.resolve()), day, digest, start, now_utc(), socket.gethostname())


def finished(
    attempt: Attempt, earlier: SentRun | None, rows: int, sent: int, quarantined: int
) -> SentRun:
    """The ledger record of `attempt`'s data set, sent in full just now."""
    run = SentRun(
        attempt.digest,
        attempt.source,
        rows,
        sent,
        quarantined,
        attempt.started_utc,
        now_utc(),
        socket.gethostname(),
    )
    return replace(run, runs=earlier.runs + 1) if earlier else run


def attempt_record(attempt: Attempt | None) -> tuple[str, bytes | None]:
    """The ledger record noting `attempt` (None: the tombstone that removes the note)."""
    if attempt is None:
        return ATTEMPT_KEY, None
    return ATTEMPT_KEY, json.dumps(asdict(attempt), sort_keys=True).encode()


def sent_record(run: SentRun) -> tuple[str, bytes]:
    return SENT_PREFIX + run.digest, json.dumps(asdict(run), sort_keys=True).encode()


def read(kafka: KafkaConnection, topic: str) -> LedgerState:
    """The ledger of `topic` as it stands: its committed records, the latest per key."""
    latest: dict[str, bytes | None] = {}
    for raw_key, raw_value in _records(kafka, ledger_topic(topic)):
        if raw_key is not None:
            latest[raw_key.decode("utf-8", errors="replace")] = raw_value
    state = LedgerState()
    for name, value in latest.items():
        if value is None:
            continue
        if name == ATTEMPT_KEY:
            state.attempt = _parse(topic, name, value, _attempt)
        elif name.startswith(SENT_PREFIX):
            run = _parse(topic, name, value, lambda d: SentRun(**d))
            state.sent[run.digest] = run
    return state


def _records(kafka: KafkaConnection, name: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every committed record of the ledger topic `name`. A topic created a moment ago may
    not have its partition's leader yet, so the broker is asked again for a while."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return list(records_since(kafka, name, {}, TIMEOUT_S))
        except KafkaUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _attempt(data: dict[str, Any]) -> Attempt:
    return Attempt(
        source=str(data["source"]),
        day=data["day"],
        digest=str(data["digest"]),
        start={
            str(topic): {int(p): int(o) for p, o in offsets.items()}
            for topic, offsets in data["start"].items()
        },
        started_utc=str(data["started_utc"]),
        host=str(data["host"]),
    )


def _parse(topic: str, key: str, value: bytes, build: Callable[[Any], Any]) -> Any:
    try:
        return build(json.loads(value))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TerminalError(
            f"The record {key!r} of the producer ledger {ledger_topic(topic)} is unreadable "
            f"({exc}). It was not written by this version of weatherpipe; delete the ledger "
            "topic to start afresh (a finished data set could then be sent again)."
        ) from exc
