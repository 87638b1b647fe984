"""Resuming an interrupted producer run, so that a crash never sends a row twice or loses one.

Before its first record, a run notes in an attempt file where the topic and its dead-letter
topic end (`Attempt`). A run that finishes with every row acknowledged removes the note. A run
that finds the note of the same job (the same CSV file; for `--daily`, the same day) knows the
earlier one was interrupted (Ctrl-C, a crash, SIGKILL, a lost broker) after an unknown part of
its rows reached Kafka. It reads the records written since the noted offsets back and sends
only the rows not among them. Rows are matched by content: encoding a row gives the same bytes
every time, and the match counts (two identical CSV rows are two records). The offsets noted
by the first attempt stay, so a resumed run that is interrupted again is resumed as a whole.
A run of another job (another CSV file, mode or day) refuses to start while such a note waits:
it would otherwise drop the only record of what the interrupted run left unsent.

Anything another producer writes to the topic meanwhile is read back too; only a record
identical to one of this file's rows could be mistaken for it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from weatherpipe.durable import remove, write_atomically
from weatherpipe.errors import TerminalError
from weatherpipe.kafka.readback import values_since
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import KafkaUnavailableError, partition_offsets

# Offsets and read-back wait at most this long for the broker.
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Attempt:
    """A producer run that started and has not finished: what it sends and where each topic
    ended before its first record (topic -> partition -> end offset)."""

    source: str
    day: str | None
    start: dict[str, dict[int, int]]

    def same_job(self, source: Path, day: str | None) -> bool:
        return self.source == str(source.resolve()) and self.day == day


def attempt_path(state_dir: Path, topic: str) -> Path:
    return state_dir / "produce" / f"{topic}.attempt.json"


def load(path: Path) -> Attempt | None:
    """The attempt noted in `path`, None when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Attempt(
            source=str(data["source"]),
            day=data["day"],
            start={
                str(topic): {int(p): int(o) for p, o in offsets.items()}
                for topic, offsets in data["start"].items()
            },
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TerminalError(
            f"{path}: the note of an interrupted producer run is unreadable ({exc}). Delete it "
            "to start afresh; rows the interrupted run delivered would then be sent again."
        ) from exc


class UnfinishedRunError(TerminalError):
    """Another job's interrupted run waits to be resumed. Starting this one would drop its note,
    and with it the only record of which of its rows never reached Kafka."""

    def __init__(self, path: Path, noted: Attempt) -> None:
        flag = "--daily" if noted.day else "--all"
        job = f"{noted.source}, {flag}" + (f" (day {noted.day})" if noted.day else "")
        super().__init__(
            f"An interrupted producer run has not finished: {job}. Starting another one now "
            "would leave the rows it did not deliver unsent for good. Finish it first with "
            f"`weatherpipe produce {flag} --csv {shlex.quote(noted.source)}` (it sends only "
            f"what is missing), or delete {path} to give it up."
        )


class Resume:
    """The rows an interrupted earlier attempt of the same job already delivered, per topic,
    as a count per record content; `unsent` takes them out of what is about to be sent."""

    def __init__(self, path: Path, found: dict[str, Counter[bytes]]) -> None:
        self.path = path
        self._found = found
        self.matched: Counter[str] = Counter()
        """Per topic: rows not sent again because an earlier attempt had delivered them."""

    @classmethod
    def begin(
        cls,
        kafka: KafkaConnection,
        state_dir: Path,
        topics: Sequence[str],
        source: Path,
        day: str | None = None,
    ) -> Resume:
        """Resume the noted attempt of this job, or note a new one (the topics must exist)."""
        path = attempt_path(state_dir, topics[0])
        noted = load(path)
        if noted is not None and noted.same_job(source, day):
            found = {
                topic: Counter(
                    digest(v)
                    for v in values_since(kafka, topic, noted.start.get(topic, {}), TIMEOUT_S)
                    if v is not None
                )
                for topic in topics
            }
            return cls(path, found)
        if noted is not None:
            raise UnfinishedRunError(path, noted)
        start = {topic: _end_offsets(kafka, topic) for topic in topics}
        attempt = Attempt(str(source.resolve()), day, start)
        write_atomically(path, json.dumps(asdict(attempt), indent=2) + "\n")
        return cls(path, {})

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
            seen = digest(value)
            if found[seen] > 0:
                found[seen] -= 1
                self.matched[topic] += 1
            else:
                kept_values.append(value)
                kept_keys.append(key)
        return kept_values, kept_keys

    def done(self) -> None:
        """Every row of the job is acknowledged: nothing left to resume."""
        remove(self.path)


def pending(state_dir: Path, topic: str, source: Path, day: str | None = None) -> bool:
    """Whether an interrupted run of this job waits to be resumed."""
    noted = load(attempt_path(state_dir, topic))
    return noted is not None and noted.same_job(source, day)


def forget_finished_day(state_dir: Path, topic: str, last_day: str | None) -> None:
    """Drop the note of a `--daily` attempt whose day the daily state already records as sent
    (the run stopped between recording the day and removing the note)."""
    path = attempt_path(state_dir, topic)
    noted = load(path)
    if noted is not None and noted.day and last_day and noted.day <= last_day:
        remove(path)


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


def digest(value: bytes) -> bytes:
    """What stands for a record's value when matching rows by content."""
    # A 128-bit digest stands for the record: a million of them take a fraction of the memory
    # of the values themselves, and a collision is out of reach.
    return hashlib.blake2b(value, digest_size=16).digest()
