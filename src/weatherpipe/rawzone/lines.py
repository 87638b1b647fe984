"""One Kafka record -> one NDJSON line of the raw zone (the seed's line format).

`{"kafka":{"topic":…,"partition":…,"offset":…,"timestamp_ms":…,"key":…},"value":…}`

The raw zone keeps everything it received, so no value is ever refused:
- valid UTF-8 JSON is spliced in as it came (no decode / re-encode on the hot path);
- UTF-8 that is not JSON (the empty value too) is stored as a JSON string and marked
  `"value_error":"invalid_json"`; a null value (tombstone) is `null` with the same mark;
- bytes that are not UTF-8 are stored base64-encoded and marked `"value_error":"not_utf8"`.
A key that is not UTF-8 is stored base64-encoded with `"key_encoding":"base64"`.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Final

import orjson

from weatherpipe.events import Reason

_NEWLINES: Final = b"\r\n"
_INVALID_JSON: Final = b',"value_error":"' + Reason.INVALID_JSON.encode() + b'"'
_NOT_UTF8: Final = b',"value_error":"' + Reason.NOT_UTF8.encode() + b'"'
_NULL_KEY: Final = b'"key":null'
# Keys repeat (the producer keys by location), so their JSON is cached up to this many.
_KEY_CACHE_SIZE: Final = 4096
_loads = orjson.loads


def encode_value(value: bytes | None) -> tuple[bytes, str | None]:
    """The JSON for `"value":` (plus a `"value_error"` member when needed) and the error reason.

    Valid JSON is returned unchanged, except that raw CR/LF are deleted: in valid JSON they can
    only be whitespace between tokens, so deleting them keeps the value exactly (big integers,
    duplicate keys and all) while a pretty-printed value can no longer break the line.
    """
    if value is None:
        return b"null" + _INVALID_JSON, Reason.INVALID_JSON
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return b'"' + base64.b64encode(value) + b'"' + _NOT_UTF8, Reason.NOT_UTF8
        return orjson.dumps(text) + _INVALID_JSON, Reason.INVALID_JSON
    if b"\n" in value or b"\r" in value:
        return value.translate(None, _NEWLINES), None
    return value, None


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
        """The record's line, ending in a newline; a marked value's reason is counted in
        `errors`. Runs once per record: the common case (a one-line JSON value, a key seen
        before) costs one JSON parse and one formatting."""
        body: bytes | None
        try:
            _loads(value)  # type: ignore[arg-type]  # None raises JSONDecodeError too
        except orjson.JSONDecodeError:
            body = None
        else:
            body = value if b"\n" not in value and b"\r" not in value else None  # type: ignore[operator]
        if body is None:  # the careful path: not JSON, not UTF-8, null, or several lines
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
        return b'%b%d,"timestamp_ms":%d,%b},"value":%b}\n' % (
            prefix,
            offset,
            timestamp_ms,
            encoded_key,
            body,
        )
