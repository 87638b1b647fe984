"""A raw line's Kafka envelope (topic, partition, offset, timestamp), judged by the shared rules.

Placing a line in the raw zone needs only its envelope: the file is named by topic, partition
and offsets, and dated by the timestamp. Whether the line can be placed is decided by the
envelope's rules in `weatherpipe.rules` (the line is a JSON object; topic a string;
partition and offset integers >= 0), rendered here for one line at a time in Python. The
rules about the value stay with the batch, which judges every line of the raw zone anyway.

Beyond the rules, two things a file name cannot hold are refused: a topic that is not a Kafka
topic name (it becomes a folder) and a partition of more than five digits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable
from typing import Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from weatherpipe import rules
from weatherpipe.events import Reason
from weatherpipe.rawzone import naming
from weatherpipe.topic_name import is_topic_name

ENVELOPE_PATHS: Final = (rules.LINE, rules.TOPIC, rules.PARTITION, rules.OFFSET)
ENVELOPE_RULES: Final = tuple(r for r in rules.RULES if r.predicate.path in ENVELOPE_PATHS)

BAD_TOPIC_NAME: Final = "bad_topic_name"
"""Reason: `kafka.topic` is a string, but not a Kafka topic name ([A-Za-z0-9._-], 1-249)."""

# DuckDB reads the JSON integer -0 as 0, so the engines take it for the integer 0 as well.
_INTEGER: Final = re.compile(rb"-0|[0-9]{1,19}")
_BIGINT_MAX: Final = 2**63 - 1
_MAX_PARTITION: Final = 10**naming.PARTITION_DIGITS - 1
_MAX_DAY: Final = (dt.date.max - dt.date(1970, 1, 1)).days
_ABSENT: Final = msgspec.Raw(b"")


class _Line(msgspec.Struct):
    kafka: msgspec.Raw = _ABSENT


class _Typed(msgspec.Struct):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


class _TypedLine(msgspec.Struct):
    kafka: _Typed


class _Kafka(msgspec.Struct):
    topic: msgspec.Raw = _ABSENT
    partition: msgspec.Raw = _ABSENT
    offset: msgspec.Raw = _ABSENT
    timestamp_ms: msgspec.Raw = _ABSENT


# Decoding into a Struct checks the whole line's JSON grammar but builds only these fields.
_decode_line = msgspec.json.Decoder(_Line).decode
_decode_kafka = msgspec.json.Decoder(_Kafka).decode
_decode_typed = msgspec.json.Decoder(_Typed).decode
_decode_typed_lines = msgspec.json.Decoder(list[_TypedLine]).decode
_decode_str = msgspec.json.Decoder(str).decode
_NO_KAFKA: Final = _Kafka()


class Envelope(NamedTuple):
    """Where a line belongs: its Kafka coordinates and the UTC day of its timestamp (None when
    the line has no usable timestamp)."""

    topic: str
    partition: int
    offset: int
    day: int | None


class Block(NamedTuple):
    """The envelopes of a block of lines, as columns (`days`: -1 where there is no usable
    timestamp)."""

    topics: list[str]
    partitions: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    days: npt.NDArray[np.int64]


class Refusal(NamedTuple):
    """Why a line cannot be placed: a reason code and the field concerned, if one."""

    reason: str
    field: str | None


def _integer(raw: bytes | msgspec.Raw) -> int | None:
    """The value of a JSON integer >= 0 that fits a BIGINT, written as plain digits."""
    if not _INTEGER.fullmatch(raw):
        return None
    value = abs(int(bytes(raw)))
    return value if value <= _BIGINT_MAX else None


_Check = Callable[[bool, _Kafka], bool]
"""Whether a rule's predicate holds for a line (is it an object; its "kafka" member)."""
_FIELD_OF: Final = {rules.TOPIC: "topic", rules.PARTITION: "partition", rules.OFFSET: "offset"}


def _render(predicate: rules.Predicate) -> _Check:
    """One envelope predicate as a Python check."""
    if isinstance(predicate, rules.NotObject) and predicate.path == rules.LINE:
        return lambda is_object, _kafka: not is_object
    name = _FIELD_OF.get(predicate.path)
    if name is not None and isinstance(predicate, rules.NotString):
        return lambda _is_object, kafka: bytes(getattr(kafka, name))[:1] != b'"'
    if name is not None and isinstance(predicate, rules.NotInteger):
        return lambda _is_object, kafka: _integer(getattr(kafka, name)) is None
    raise TypeError(f"no envelope rendering for {predicate!r}")


_CHECKS: Final = tuple(
    (rule.reason, rule.field, _render(rule.predicate)) for rule in ENVELOPE_RULES
)
_topics: dict[str, str | None] = {}  # checked names (a raw zone has a handful of topics)


def _topic_name(name: str) -> str | None:
    """`name` if it is a Kafka topic name, else None."""
    try:
        return _topics[name]
    except KeyError:
        found = name if is_topic_name(name) else None
        if len(_topics) < 1024:
            _topics[name] = found
        return found


def judge(line: bytes) -> Envelope | Refusal:
    """The envelope of one raw line (without its newline), or why it has none."""
    if not line.isascii():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return Refusal(Reason.NOT_UTF8, None)
    try:
        kafka_raw = bytes(_decode_line(line).kafka)
    except msgspec.DecodeError:  # not JSON, or JSON but not an object
        return _exact(False, _NO_KAFKA)
    # The common line in one typed decode: a sufficient condition for "no envelope rule
    # holds", as the batch's typed read is.
    fast = None
    if kafka_raw:  # absent: b""
        with contextlib.suppress(msgspec.ValidationError):
            fast = _decode_typed(kafka_raw)
    if fast is not None and 0 <= fast.partition <= _BIGINT_MAX and 0 <= fast.offset <= _BIGINT_MAX:
        topic = _topic_name(fast.topic)
        if topic is None:
            return Refusal(BAD_TOPIC_NAME, "kafka.topic")
        return _envelope(topic, fast.partition, fast.offset, fast.timestamp_ms)
    kafka = _NO_KAFKA
    # "kafka" that is not an object has none of its fields.
    with contextlib.suppress(msgspec.ValidationError):
        kafka = _decode_kafka(kafka_raw) if kafka_raw else _NO_KAFKA
    return _exact(True, kafka)


def _exact(is_object: bool, kafka: _Kafka) -> Envelope | Refusal:
    """The envelope rules one by one, in order: the first that holds is the refusal."""
    for reason, field, holds in _CHECKS:
        if holds(is_object, kafka):
            return Refusal(reason, field)
    topic = _topic_name(_decode_str(kafka.topic))
    if topic is None:
        return Refusal(BAD_TOPIC_NAME, "kafka.topic")
    stamp = _integer(kafka.timestamp_ms)
    return _envelope(topic, int(bytes(kafka.partition)), int(bytes(kafka.offset)), stamp)


def _envelope(topic: str, partition: int, offset: int, stamp: int | None) -> Envelope | Refusal:
    if partition > _MAX_PARTITION:
        return Refusal(Reason.OUT_OF_RANGE, "kafka.partition")
    day = None if stamp is None else _day(stamp)
    return Envelope(topic, partition, offset, None if day == -1 else day)


def _day(stamp: int) -> int:
    """The UTC day of a Kafka timestamp, -1 if it is none a date folder can name."""
    day = naming.day_of(stamp)
    return day if 0 <= day <= _MAX_DAY else -1


def judge_block(lines: list[bytes]) -> Block | None:
    """The envelopes of `lines` if every one of them surely has one, else None (then judge
    each line on its own, which finds out which do not)."""
    return judge_array(b"[" + b",".join(lines) + b"]", len(lines))


def judge_array(joined: bytes | bytearray, count: int) -> Block | None:
    """`judge_block` of `count` lines given as one JSON array (`[line,line,...]`).

    The typed read of `judge` over all the lines in one decode: most lines are clean, and for
    them the work per line is what the JSON scanner does."""
    if not joined.isascii():
        try:
            joined.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        decoded = _decode_typed_lines(joined)
    except msgspec.DecodeError:  # a line that is not an object, or not of the typed shape
        return None
    if len(decoded) != count or not count:  # a "line" holding two values, or none
        return None
    kafka = [line.kafka for line in decoded]
    try:
        partitions = np.array([k.partition for k in kafka], dtype=np.int64)
        offsets = np.array([k.offset for k in kafka], dtype=np.int64)
    except OverflowError:  # past 64 bits
        return None
    if partitions.min() < 0 or partitions.max() > _MAX_PARTITION or offsets.min() < 0:
        return None
    topics = [k.topic for k in kafka]
    if any(_topic_name(t) is None for t in set(topics)):
        return None
    stamps = [k.timestamp_ms for k in kafka]
    try:
        days = np.array(stamps, dtype=np.int64) // naming.DAY_MS
    except (TypeError, OverflowError):  # a missing timestamp, or one past 64 bits
        days = np.array([-1 if t is None else _day(t) for t in stamps], dtype=np.int64)
    else:
        days[(days < 0) | (days > _MAX_DAY)] = -1
    return Block(topics, partitions, offsets, days)
