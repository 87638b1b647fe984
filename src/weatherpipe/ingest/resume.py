"""Resuming an interrupted producer run, so that a crash never sends a row twice or loses one.

Before its first record, a run notes in the ledger (`weatherpipe.ingest.ledger`) where the topic
and its dead-letter topic end (`Attempt`), in the same transaction as its first records. A run
that finishes with every row delivered removes the note. A run that finds the note of the same
job (the same CSV file or content; for `--daily`, the same day) knows the earlier one was
interrupted (Ctrl-C, a crash, SIGKILL, a lost broker, another producer that took over) after
some of its transactions had committed. It reads the records committed since the noted offsets
back and sends only the rows not among them. Rows are matched by content: encoding a row gives
the same bytes every time, and the match counts (two identical CSV rows are two records). The
offsets noted by the first attempt stay, so a resumed run that is interrupted again is resumed
as a whole. A run of another job (another CSV file, mode or day) refuses to start while such a
note waits: it would otherwise mix the two data sets' rows in the topic.

Anything another producer writes to the topic meanwhile is read back too; only a record
identical to one of this file's rows could be mistaken for it.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from weatherpipe.errors import TerminalError
from weatherpipe.ingest.ledger import Attempt, new_attempt
from weatherpipe.kafka.readback import values_since
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import KafkaUnavailableError, partition_offsets

# Offsets and read-back wait at most this long for the broker.
TIMEOUT_S = 30.0


class UnfinishedRunError(TerminalError):
    """Another job's interrupted run waits to be resumed. Starting this one would mix two data
    sets, and leave the interrupted one's undelivered rows unsent."""

    def __init__(self, topic: str, noted: Attempt) -> None:
        job = f"{noted.source}, {noted.flag}" + (f" (day {noted.day})" if noted.day else "")
        super().__init__(
            f"An interrupted producer run to {topic} has not finished: {job}, started "
            f"{noted.started_utc} on {noted.host}. Starting another one now would leave the "
            "rows it did not deliver unsent. Finish it first with "
            f"`weatherpipe produce {noted.flag} --csv {shlex.quote(noted.source)}` (it sends "
            "only what is missing), or give it up with `--abandon-interrupted`."
        )


class Resume:
    """The rows an interrupted earlier attempt of the same job already delivered, per topic,
    as a count per record content; `unsent` takes them out of what is about to be sent."""

    def __init__(self, attempt: Attempt, found: dict[str, Counter[bytes]], noted: bool) -> None:
        self.attempt = attempt
        self.noted = noted
        """Whether the ledger holds the note of `attempt` already (else the first transaction
        writes it)."""
        self._found = found
        self.matched: Counter[str] = Counter()
        """Per topic: rows not sent again because an earlier attempt had delivered them."""

    @classmethod
    def begin(
        cls,
        kafka: KafkaConnection,
        noted: Attempt | None,
        topics: Sequence[str],
        source: Path,
        digest: str,
        day: str | None = None,
        abandon: bool = False,
    ) -> Resume:
        """Resume the `noted` attempt if it is this job's, or begin a new one (the topics must
        exist, and no producer may be writing to them: call after the producer's `init`).
        Another job's attempt is an error unless `abandon` gives it up."""
        if noted is not None and noted.same_job(source, digest, day):
            found = {
                topic: Counter(
                    fingerprint(v)
                    for v in values_since(kafka, topic, noted.start.get(topic, {}), TIMEOUT_S)
                    if v is not None
                )
                for topic in topics
            }
            return cls(noted, found, noted=True)
        if noted is not None and not abandon:
            raise UnfinishedRunError(topics[0], noted)
        start = {topic: _end_offsets(kafka, topic) for topic in topics}
        return cls(new_attempt(source, digest, day, start), {}, noted=False)

    @property
    def resuming(self) -> bool:
        return bool(self._found)

    def unsent(
        self, topic: str, values: list[bytes], keys: list[str]
    ) -> tuple[list[bytes], list[str]]:
        """`values` (with their `keys`) without those an earlier attempt delivered."""
        found = self._found.get(topic)
        if not found:
            return values, keys
        kept_values: list[bytes] = []
        kept_keys: list[str] = []
        for value, key in zip(values, keys, strict=True):
            seen = fingerprint(value)
            if found[seen] > 0:
                found[seen] -= 1
                self.matched[topic] += 1
            else:
                kept_values.append(value)
                kept_keys.append(key)
        return kept_values, kept_keys


def _end_offsets(kafka: KafkaConnection, topic: str) -> dict[int, int]:
    """Where each partition of `topic` ends. A topic created a moment ago may not have its
    partition leaders yet, so the broker is asked again for a while."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return {o.partition: o.end for o in partition_offsets(kafka, topic, 10)}
        except KafkaUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def fingerprint(value: bytes) -> bytes:
    """What stands for a record's value when matching rows by content."""
    # A 128-bit digest stands for the record: a million of them take a fraction of the memory
    # of the values themselves, and a collision is out of reach.
    return hashlib.blake2b(value, digest_size=16).digest()
