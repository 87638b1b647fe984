"""A generated raw zone of weather events for the dashboard's tests: `cities` by `days` with
`per_day` observations per city and day, spread over three partitions (one file per day and
partition, as the consumer writes them), plus a few records the batch must quarantine. The
valid events are returned so tests can compute the expected figures without the database."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.rawzone_files import Record, Undecodable, event, write_file
from weatherpipe.datagen import CITY_NAMES as CITIES

PARTITIONS = 3
FIRST_DAY = date(2024, 1, 1)


@dataclass
class RawZone:
    """What was written: the valid events, the rejected ones by reason, and file facts."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    files: int = 0
    days: set[date] = field(default_factory=set)

    def expected(self, cities: set[str], start: date, end: date) -> dict[str, float | int]:
        """Weighted averages and totals of the valid events of `cities` from `start` to `end`,
        computed exactly (Decimal) from the events themselves."""
        chosen = [
            e
            for e in self.events
            if e["location"] in cities and start <= _day(e["timestamp"]) <= end
        ]
        n = len(chosen)

        def total(name: str) -> Decimal:
            return sum((Decimal(str(e[name])) for e in chosen), Decimal(0))

        return {
            "observations": n,
            "temperature": float(total("temperature_c") / n),
            "humidity": float(total("humidity_pct") / n),
            "wind": float(total("wind_speed_kmh") / n),
            "precipitation": float(total("precipitation_mm")),
        }


def _day(timestamp: str) -> date:
    return date.fromisoformat(timestamp[:10])


def write(
    raw_dir: Path,
    topic: str,
    *,
    cities: tuple[str, ...] = CITIES,
    days: int = 5,
    per_day: int = 2,
    seed: int = 7,
) -> RawZone:
    """Write the raw zone under `raw_dir` and return what it holds."""
    rng = random.Random(seed)
    zone = RawZone()
    next_offset = dict.fromkeys(range(PARTITIONS), 0)
    for d in range(days):
        day = FIRST_DAY + timedelta(days=d)
        zone.days.add(day)
        by_partition: dict[int, list[Record]] = {p: [] for p in range(PARTITIONS)}
        for c, city in enumerate(cities):
            partition = c % PARTITIONS
            for i in range(per_day):
                # Spread over the day, never past its end: per_day <= 8,640 keeps the gaps
                # wider than the city offset.
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                    seconds=(i * 86_400) // per_day + c
                )
                value = event(
                    city,
                    moment.strftime("%Y-%m-%d %H:%M:%S"),
                    round(rng.uniform(-15, 40), 1),
                    round(rng.uniform(10, 100), 1),
                    round(rng.uniform(0, 12), 2),
                    round(rng.uniform(0, 60), 1),
                )
                zone.events.append(value)
                by_partition[partition].append(
                    Record(
                        partition,
                        next_offset[partition] + len(by_partition[partition]),
                        value,
                        int(moment.timestamp() * 1000),
                        city,
                    )
                )
        if d == 0:
            # Two defects the batch must quarantine, on the first day's partition 0.
            moment = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            records = by_partition[0]
            hot = event(cities[0], f"{day} 12:00:00", 99.9, 50, 0, 10)
            hot["temperature_c"] = 1000.0
            for value in (hot, Undecodable("{not json")):
                records.append(Record(0, next_offset[0] + len(records), value, moment, cities[0]))
            zone.rejected = {"out_of_range": 1, "invalid_json": 1}
        for partition, records in by_partition.items():
            if records:
                write_file(raw_dir, topic, records)
                zone.files += 1
                next_offset[partition] += len(records)
    return zone
