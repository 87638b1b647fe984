"""Writes raw-zone files for tests and benchmarks exactly as the consumer does:
`RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition:05>+<first:020>+<last:020>.ndjson`, one
`{"kafka": {...}, "value": ...}` line per Kafka record (a value that is not valid JSON is kept as
text with `value_error`)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final


@dataclass(frozen=True)
class Record:
    """One Kafka record: its coordinates and its value (any JSON value, or `Undecodable`)."""

    partition: int
    offset: int
    value: Any
    timestamp_ms: int = 1_709_300_000_000
    key: str | None = None


@dataclass(frozen=True)
class Undecodable:
    """A value the consumer stored as text because it was not JSON (or not UTF-8)."""

    text: str
    error: str = "invalid_json"


def line_for(topic: str, record: Record) -> str:
    kafka = {
        "topic": topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": record.key,
    }
    if isinstance(record.value, Undecodable):
        body: dict[str, Any] = {
            "kafka": kafka,
            "value": record.value.text,
            "value_error": record.value.error,
        }
    else:
        body = {"kafka": kafka, "value": record.value}
    return json.dumps(body, ensure_ascii=False, allow_nan=True)


def file_path(raw_dir: Path, topic: str, partition: int, first: int, last: int, ts_ms: int) -> Path:
    day = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")
    name = f"{topic}+{partition:05d}+{first:020d}+{last:020d}.ndjson"
    return raw_dir / topic / f"date={day}" / name


def write_file(
    raw_dir: Path, topic: str, records: Sequence[Record], extra_lines: Sequence[str] = ()
) -> Path:
    """One finished file of `records` (all of one partition) plus `extra_lines` appended as
    they are (corrupt lines); written to RAW_DIR/.tmp first and renamed, like the consumer."""
    partition = records[0].partition
    offsets = [r.offset for r in records]
    path = file_path(raw_dir, topic, partition, min(offsets), max(offsets), records[0].timestamp_ms)
    text = "".join(line_for(topic, r) + "\n" for r in records)
    text += "".join(line + "\n" for line in extra_lines)
    tmp = raw_dir / ".tmp" / path.name
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(path)
    return path


CITIES: Final = ("Chicago", "Houston", "Phoenix", "Dallas", "San Jose", "New York", "Austin")


def random_event(rng: random.Random) -> dict[str, Any]:
    """A valid event of one of CITIES on 1 to 9 March 2024, with measures drawn from `rng`."""
    return event(
        CITIES[rng.randrange(len(CITIES))],
        f"2024-03-{rng.randint(1, 9):02d} {rng.randint(0, 23):02d}:14:05",
        round(rng.uniform(-10, 35), 1),
        round(rng.uniform(20, 95), 1),
        round(rng.uniform(0, 12), 2),
        round(rng.uniform(0, 40), 1),
    )


def event(location: str, timestamp: str, t: float, h: float, p: float, w: float) -> dict[str, Any]:
    return {
        "location": location,
        "timestamp": timestamp,
        "temperature_c": t,
        "humidity_pct": h,
        "precipitation_mm": p,
        "wind_speed_kmh": w,
    }
