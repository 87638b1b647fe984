"""Writes a raw zone in the original project's layout,
`<root>/<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson`, as its at-least-once consumer leaves it, and
says what it holds.

The consumer is simulated: it reads fetches of one partition at a time, appends each record as
a line (Python's `json.dumps`, spaced), rotates its chunk by size and by its own clock's date,
and commits now and then. A crash loses what came after the last commit: the restart reads
those records again (repeated lines), and the line being written when it crashed is left cut
short at the end of its chunk. The truth (each distinct record once) is returned for tests to
compute expectations from.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

TOPIC = "weather_data_raw"
CITIES = ("New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "San Diego")
START = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: str | None
    value: Any

    def line(self) -> str:
        kafka = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "key": self.key,
        }
        return json.dumps({"kafka": kafka, "value": self.value})


@dataclass
class OriginalZone:
    """What was written: every distinct record, and the defects planted, by file and line."""

    root: Path
    records: dict[tuple[str, int, int], Record] = field(default_factory=dict)
    repeated_lines: int = 0
    truncated: list[tuple[Path, int]] = field(default_factory=list)
    """Lines cut short by a crash (the last line of a chunk, or run together with the line
    a restart appended to the same chunk: see `glued`)."""
    glued: list[tuple[Path, int]] = field(default_factory=list)
    not_json: list[tuple[Path, int]] = field(default_factory=list)
    chunks: list[Path] = field(default_factory=list)

    @property
    def lines(self) -> int:
        """Non-empty lines in the chunks."""
        return (
            len(self.records)
            + self.repeated_lines
            + len(self.truncated)
            - len(self.glued)
            + len(self.not_json)
        )


def weather(rng: random.Random, city: str, moment: datetime) -> dict[str, Any]:
    return {
        "location": city,
        "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "temperature_c": round(rng.uniform(-10, 35), 2),
        "humidity_pct": round(rng.uniform(20, 100), 2),
        "precipitation_mm": round(rng.uniform(0, 12), 2),
        "wind_speed_kmh": round(rng.uniform(0, 50), 2),
    }


def _produce(
    rng: random.Random, per_partition: int, partitions: int, bad_values: int
) -> list[list[Record]]:
    """The topic: `per_partition` records in each partition, in time order; a few values break
    the rules (the batch must quarantine those, the import must carry them)."""
    topic: list[list[Record]] = [[] for _ in range(partitions)]
    for p in range(partitions):
        for offset in range(per_partition):
            city = CITIES[(offset + p) % len(CITIES)]
            moment = START + timedelta(minutes=7 * offset + p)
            value = weather(rng, city, moment)
            stamp: int | None = int(moment.timestamp() * 1000)
            if offset % 97 == 13 and bad_values:
                value["humidity_pct"] = 140.0  # out_of_range
                bad_values -= 1
            if offset == 5 and p == 0:
                stamp = None  # no timestamp: the import dates it by its chunk's folder
            topic[p].append(Record(TOPIC, p, offset, stamp, city, value))
    return topic


def _fetches(topic: list[list[Record]], rng: random.Random) -> Iterator[list[Record]]:
    """The topic as a consumer receives it: runs of one partition at a time."""
    positions = [0] * len(topic)
    while any(pos < len(records) for pos, records in zip(positions, topic, strict=True)):
        p = rng.choice([i for i, records in enumerate(topic) if positions[i] < len(records)])
        size = rng.randint(5, 40)
        yield topic[p][positions[p] : positions[p] + size]
        positions[p] += size


class _Writer:
    """The original's consumer: chunk files per its clock's date, rotated by line count."""

    def __init__(self, zone: OriginalZone, lines_per_chunk: int) -> None:
        self.zone = zone
        self.lines_per_chunk = lines_per_chunk
        self.numbers: dict[str, int] = {}
        self.path: Path | None = None
        self.count = 0
        self.append_next = False  # the next line goes on at the end of this chunk

    def _open(self, day: date) -> Path:
        folder = self.zone.root / TOPIC / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        number = self.numbers.get(day.isoformat(), 0) + 1
        self.numbers[day.isoformat()] = number
        path = folder / f"chunk-{number:04d}.ndjson"
        self.zone.chunks.append(path)
        self.count = 0
        return path

    def write(self, text: str, clock: date, *, newline: bool = True) -> tuple[Path, int]:
        if self.path is None or (
            not self.append_next
            and (self.count >= self.lines_per_chunk or self.path.parent.name != clock.isoformat())
        ):
            self.path = self._open(clock)
        self.append_next = False
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text + ("\n" if newline else ""))
        self.count += 1
        return self.path, self.count

    def rotate(self) -> None:
        self.path = None


def write(
    root: Path,
    *,
    per_partition: int = 400,
    partitions: int = 3,
    lines_per_chunk: int = 150,
    crashes: int = 2,
    bad_values: int = 4,
    seed: int = 3,
) -> OriginalZone:
    """Write the original's raw zone under `root` and return what it holds. After the last
    crash the restart appends to the chunk it crashed in, so its first line runs on from the
    cut-short one."""
    rng = random.Random(seed)
    zone = OriginalZone(root)
    topic = _produce(rng, per_partition, partitions, bad_values)
    writer = _Writer(zone, lines_per_chunk)
    queue = deque(_fetches(topic, rng))
    crash_after = set(rng.sample(range(5, len(queue) - 5), crashes))
    since_commit: list[Record] = []  # what a restart reads again
    done = 0
    while queue:
        fetch = queue.popleft()
        # The consumer's clock runs an hour behind the records' (its chunks' dates lag).
        clock = (_moment(fetch[0]) - timedelta(hours=1)).date()
        for record in fetch:
            key = (record.topic, record.partition, record.offset)
            if key in zone.records:
                zone.repeated_lines += 1
            zone.records[key] = record
            writer.write(record.line(), clock)
        since_commit += fetch
        done += 1
        if done in crash_after and queue:
            # Crash while writing the next fetch's first line: half of it reaches the disk.
            # The restart starts a new chunk and reads from the last commit again.
            text = queue[0][0].line()
            path, line = writer.write(text[: len(text) // 2], clock, newline=False)
            zone.truncated.append((path, line))
            if done == max(crash_after):
                zone.glued.append((path, line))
                writer.append_next, writer.count = True, writer.count - 1
            else:
                writer.rotate()
            queue.appendleft(since_commit)
            since_commit = []
        elif done % 4 == 0:  # a commit now and then (auto-commit)
            since_commit = []
    # A line edited by hand into a chunk of its own: not JSON at all.
    day = START.date() + timedelta(days=1)
    folder = root / TOPIC / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    odd = folder / f"chunk-{writer.numbers.get(day.isoformat(), 0) + 1:04d}.ndjson"
    odd.write_text("this is not json\n", encoding="utf-8")
    zone.chunks.append(odd)
    zone.not_json.append((odd, 1))
    return zone


def _moment(record: Record) -> datetime:
    if record.timestamp_ms is None:
        return START
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
