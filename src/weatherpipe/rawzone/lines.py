"""One Kafka record -> one NDJSON line of the raw zone (the seed's line format).

`{"kafka":{"topic":…,"partition":…,"offset":…,"timestamp_ms":…,"key":…},"value":…}`

The raw zone keeps everything it received, so no value is ever refused:
- valid UTF-8 JSON is spliced in as it came (checked by msgspec's JSON scanner, which builds no
  Python objects, and never decoded or re-encoded);
- UTF-8 that is not JSON (the empty value too) is stored as a JSON string and marked
  `"value_error":"invalid_json"`; a null value (tombstone) is `null` with the same mark;
- bytes that are not UTF-8 are stored base64-encoded and marked `"value_error":"not_utf8"`.
A key that is not UTF-8 is stored base64-encoded with `"key_encoding":"base64"`.
"""

from __future__ import annotations

import base64
import re
from collections import Counter, deque
from collections.abc import Sequence
from itertools import repeat
from typing import Final

import msgspec
import orjson

from weatherpipe.events import Reason
from weatherpipe.topic_name import TOPIC_NAME

_NEWLINES: Final = b"\r\n"
_INVALID_JSON: Final = b',"value_error":"' + Reason.INVALID_JSON.encode() + b'"'
_NOT_UTF8: Final = b',"value_error":"' + Reason.NOT_UTF8.encode() + b'"'
_NULL_KEY: Final = b'"key":null'
# Keys repeat (the producer keys by city and day), so their JSON is cached up to this many.
_KEY_CACHE_SIZE: Final = 4096
_LINE: Final = b'%b%d,"timestamp_ms":%d,%b},"value":%b}\n'
# Decoding into `Raw` runs the full JSON grammar check but keeps the bytes as they are. It
# does not check UTF-8, so callers decode first. Unlike orjson it accepts numbers beyond the
# double range (1e999), as RFC 8259 does.
_check_json = msgspec.json.Decoder(msgspec.Raw).decode
_JSONError = msgspec.DecodeError
# The start of every line `LineEncoder` builds; topic names need no JSON escapes.
_COORDINATES: Final = re.compile(
    rb'\{"kafka":\{"topic":"' + TOPIC_NAME.encode() + rb'","partition":([0-9]+),"offset":([0-9]+),'
)


def encode_value(value: bytes | None) -> tuple[bytes, str | None]:
    """The JSON for `"value":` (plus a `"value_error"` member when needed) and the error reason.

    Valid JSON is returned unchanged, except that raw CR/LF are deleted: in valid JSON they can
    only be whitespace between tokens, so deleting them keeps the value exactly (big integers,
    duplicate keys and all) while a pretty-printed value can no longer break the line.
    """
    if value is None:
        return b"null" + _INVALID_JSON, Reason.INVALID_JSON
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return b'"' + base64.b64encode(value) + b'"' + _NOT_UTF8, Reason.NOT_UTF8
    try:
        _check_json(value)
    except _JSONError:
        return orjson.dumps(text) + _INVALID_JSON, Reason.INVALID_JSON
    if b"\n" in value or b"\r" in value:
        return value.translate(None, _NEWLINES), None
    return value, None


def coordinates(line: bytes) -> tuple[int, int] | None:
    """(partition, offset) of one whole line as `LineEncoder` builds it (newline stripped);
    None when it is not such a line: cut short, or not JSON."""
    match = _COORDINATES.match(line)
    if match is None:
        return _envelope_coordinates(line)
    try:
        _check_json(line)
    except _JSONError:
        return None
    return int(match[1]), int(match[2])


def _envelope_coordinates(line: bytes) -> tuple[int, int] | None:
    """(partition, offset) of a whole line in another writer's spelling of the same format:
    an imported raw zone keeps the original project's text (key order, spacing)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    kafka = record.get("kafka") if isinstance(record, dict) else None
    if not isinstance(kafka, dict):
        return None
    partition, offset = kafka.get("partition"), kafka.get("offset")
    if type(partition) is int and type(offset) is int:
        return partition, offset
    return None


def encode_key(key: bytes | None) -> bytes:
    """The `"key":…` member (plus `"key_encoding":"base64"` for a key that is not UTF-8)."""
    if key is None:
        return _NULL_KEY
    try:
        return b'"key":' + orjson.dumps(key.decode("utf-8"))
    except UnicodeDecodeError:
        return b'"key":"' + base64.b64encode(key) + b'","key_encoding":"base64"'


class LineEncoder:
    """Builds the lines of one topic; caches the per-partition prefix and the keys seen."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._topic_json = orjson.dumps(topic)
        self._keys: dict[bytes | None, bytes] = {None: _NULL_KEY}

    def prefix(self, partition: int) -> bytes:
        """The constant start of every line of `partition`, up to the offset's value."""
        return b'{"kafka":{"topic":%b,"partition":%d,"offset":' % (self._topic_json, partition)

    def key(self, key: bytes | None) -> bytes:
        """`encode_key`, cached."""
        encoded = self._keys.get(key)
        if encoded is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys = {None: _NULL_KEY}
            encoded = self._keys[key] = encode_key(key)
        return encoded

    def line(
        self,
        prefix: bytes,
        offset: int,
        timestamp_ms: int | None,
        key: bytes | None,
        value: bytes | None,
        errors: Counter[str],
    ) -> bytes:
        """One record's line, ending in a newline; a marked value's reason is counted in
        `errors`. The careful path, for records `clean_lines` leaves to it."""
        body, error = encode_value(value)
        if error is not None:
            errors[error] += 1
        encoded_key = self._keys.get(key) or self.key(key)
        if timestamp_ms is None:
            return b'%b%d,"timestamp_ms":null,%b},"value":%b}\n' % (
                prefix,
                offset,
                encoded_key,
                body,
            )
        return _LINE % (prefix, offset, timestamp_ms, encoded_key, body)

    def clean_lines(
        self,
        prefix: bytes,
        offsets: Sequence[int],
        timestamps: Sequence[int],
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
    ) -> list[bytes] | None:
        """The lines of a run of records of one partition, if every value is one-line UTF-8
        JSON (all timestamps must be valid); None if any record needs the careful path.

        The common case for a whole batch, so it works on columns with C-level loops (`map`,
        one join and one UTF-8 check for all values) instead of Python code per record.
        """
        try:
            joined = b"".join(values)  # type: ignore[arg-type]  # a None raises TypeError
            if b"\n" in joined or b"\r" in joined:
                return None
            if not joined.isascii():  # ASCII is UTF-8; only decode when it is not
                joined.decode("utf-8")
            deque(map(_check_json, values), maxlen=0)  # type: ignore[arg-type]
        except (TypeError, UnicodeDecodeError, _JSONError):
            return None
        try:  # keys repeat: usually every one is cached already
            encoded_keys = list(map(self._keys.__getitem__, keys))
        except KeyError:
            encoded_keys = [self._keys.get(key) or self.key(key) for key in keys]
        return list(
            map(
                _LINE.__mod__,
                zip(repeat(prefix), offsets, timestamps, encoded_keys, values, strict=False),
            )
        )
