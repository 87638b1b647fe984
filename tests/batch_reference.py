"""An independent, plain-Python reading of the raw zone: what the batch must compute.

It shares only the contract with the engine (field names, bounds, formats and reason codes from
`weatherpipe.events`), not its rules list or SQL, so an error in either shows up as a difference.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from weatherpipe.events import (
    CONTROL_CHARACTERS,
    LOCATION_MAX_LENGTH,
    MEASURES,
    TIMESTAMP_FORMAT,
    YEARS,
    Reason,
)

NAME = re.compile(r"^[^+]+\+\d{5}\+\d{20}\+\d{20}\.ndjson$")
BLANKS = " \t\r\n"
TS_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ASCII_TS_SHAPE = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _control(text: str) -> bool:
    return any(low <= ord(ch) <= high for ch in text for low, high in CONTROL_CHARACTERS)


def _absent(obj: dict[str, Any], key: str) -> bool:
    return key not in obj or obj[key] is None or obj[key] == ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check(line: dict[str, Any] | None) -> tuple[str, str | None] | None:
    """(reason, field) for a rejected raw line (None: not a JSON object), None if valid."""
    if not isinstance(line, dict):
        return Reason.INVALID_JSON, None
    kafka = line.get("kafka") if isinstance(line.get("kafka"), dict) else {}
    if not isinstance(kafka.get("topic"), str):
        return Reason.MISSING_FIELD, "kafka.topic"
    for key in ("partition", "offset"):
        if not _natural(kafka.get(key)):
            return Reason.MISSING_FIELD, f"kafka.{key}"
    if line.get("value_error") == Reason.NOT_UTF8:
        return Reason.NOT_UTF8, None
    if line.get("value_error") is not None:
        return Reason.INVALID_JSON, None
    value = line.get("value")
    if not isinstance(value, dict):
        return Reason.NOT_AN_OBJECT, None
    if _absent(value, "location") or not isinstance(value["location"], str):
        return Reason.MISSING_FIELD, "location"
    if value["location"].strip(BLANKS) == "":
        return Reason.EMPTY_LOCATION, "location"
    if len(value["location"].strip(BLANKS)) > LOCATION_MAX_LENGTH:
        return Reason.LOCATION_TOO_LONG, "location"
    if _control(value["location"]):
        return Reason.CONTROL_CHARACTER, "location"
    if _absent(value, "timestamp"):
        return Reason.MISSING_FIELD, "timestamp"
    ts = value["timestamp"]
    shaped = isinstance(ts, str) and ASCII_TS_SHAPE.fullmatch(ts)
    if shaped and not YEARS[0] <= int(ts[:4]) <= YEARS[1]:
        return Reason.OUT_OF_RANGE, "timestamp"
    try:
        if not isinstance(ts, str) or not TS_SHAPE.match(ts):
            raise ValueError(ts)
        datetime.strptime(ts, TIMESTAMP_FORMAT)
    except ValueError:
        return Reason.BAD_TIMESTAMP, "timestamp"
    for m in MEASURES:
        if _absent(value, m.field):
            return Reason.MISSING_FIELD, m.field
        number = _number(value[m.field])
        if number is None:
            return Reason.NOT_NUMERIC, m.field
        if not math.isfinite(number):
            return Reason.NOT_FINITE, m.field
        if not m.low <= number <= m.high:
            return Reason.OUT_OF_RANGE, m.field
    return None


@dataclass
class Expected:
    daily: dict[tuple[str, date], dict[str, float]]
    rejected: list[tuple[str, int, str, str | None]]  # file, line, reason, field


def parse_line(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def compute(raw_dir: Path) -> Expected:
    """Read every finished raw file under `raw_dir` and aggregate like the batch must."""
    seen: set[tuple[str, int, int]] = set()
    groups: dict[tuple[str, date], list[dict[str, float]]] = defaultdict(list)
    rejected = []
    for path in sorted(raw_dir.glob("*/date=*/*.ndjson")):
        if not NAME.match(path.name):
            continue
        rel = path.relative_to(raw_dir).as_posix()
        for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            if text == "":
                continue
            line = parse_line(text)
            verdict = check(line)
            coords = None
            if line is not None and (verdict is None or not str(verdict[1]).startswith("kafka")):
                k = line["kafka"]
                coords = (k["topic"], k["partition"], k["offset"])
            if coords is not None:
                if coords in seen:
                    continue
                seen.add(coords)
            if verdict is not None:
                rejected.append((rel, number, verdict[0], verdict[1]))
                continue
            assert line is not None
            v = line["value"]
            day = datetime.strptime(v["timestamp"], TIMESTAMP_FORMAT).date()
            nums = {m.field: float(_number(v[m.field]) or 0.0) for m in MEASURES}
            groups[(v["location"].strip(BLANKS), day)].append(nums)
    daily = {}
    for key, rows in groups.items():
        n = len(rows)
        t = [r["temperature_c"] for r in rows]
        daily[key] = {
            "observations": n,
            "avg_temperature_c": math.fsum(t) / n,
            "avg_humidity_pct": math.fsum(r["humidity_pct"] for r in rows) / n,
            "avg_wind_speed_kmh": math.fsum(r["wind_speed_kmh"] for r in rows) / n,
            "total_precipitation_mm": math.fsum(r["precipitation_mm"] for r in rows),
            "avg_precipitation_mm": math.fsum(r["precipitation_mm"] for r in rows) / n,
            "min_temperature_c": min(t),
            "max_temperature_c": max(t),
        }
    return Expected(daily=daily, rejected=rejected)
