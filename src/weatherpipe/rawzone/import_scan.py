"""Step 1 of an import: read the original's chunks and note where each record is.

Every line is judged by its envelope (`envelope.judge`). A line that can be placed is noted by
topic-partition (offset, UTC day, chunk, byte range, line number), in the order read; one that
cannot is set aside with its file, line and reason. Chunks are only read.

Two defects of an at-least-once writer are told apart from other broken lines:
- the last line of a chunk, without a newline, that is not JSON: a write cut short by a crash
  (`truncated_line`);
- a line that is not JSON but ends in a complete record: a restart appended to a chunk whose
  last line had been cut short, so the two ran together. The cut head is a `truncated_line`,
  the record after it is kept (it may exist nowhere else).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from weatherpipe.events import Reason
from weatherpipe.rawzone.envelope import Block, Envelope, Refusal, judge, judge_array, judge_block
from weatherpipe.rawzone.original_layout import Chunk, UnreadableChunkError

TRUNCATED_LINE: Final = "truncated_line"
"""Reason: a line cut short by a crash of the writer (not JSON, without its newline)."""
# A line that is not JSON is searched for a record that starts after its beginning at no more
# than this many places (each `{"`), so a long line of garbage stays cheap.
_MAX_RESTARTS: Final = 16
_RECORD_START: Final = b'{"'
# Lines decoded at once by the typed read; a block holding a bad line is judged line by line.
_BLOCK_LINES: Final = 4096
_NEWLINE, _COMMA, _OPEN, _CLOSE = (ord(c) for c in "\n,[]")

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SetAside:
    """A line that is not imported: where it is, why, and what it says."""

    file: str
    line: int
    reason: str
    field: str | None
    raw: str
    offset: int | None = None


class Spots:
    """Where the records of one topic-partition are, in the order read: columns added a
    block at a time, joined once when asked for."""

    __slots__ = ("_columns", "_parts")

    def __init__(self) -> None:
        self._parts: list[tuple[Int64s, ...]] = []
        self._columns: Columns | None = None

    def add(
        self,
        offsets: Int64s,
        days: Int64s,
        chunk: int,
        starts: Int64s,
        lengths: Int64s,
        lines: Int64s,
    ) -> None:
        chunks = np.full(len(offsets), chunk, dtype=np.int64)
        self._parts.append((offsets, days, chunks, starts, lengths, lines))
        self._columns = None

    @property
    def columns(self) -> Columns:
        if self._columns is None:
            self._columns = Columns(*(np.concatenate(c) for c in zip(*self._parts, strict=True)))
            self._parts = [tuple(self._columns)]
        return self._columns

    def __len__(self) -> int:
        return sum(len(part[0]) for part in self._parts)


class Columns(NamedTuple):
    """Per record: offset, UTC day, chunk index, start and length of its line in the chunk
    (bytes, without the newline) and the line's number (1-based)."""

    offsets: Int64s
    days: Int64s
    chunks: Int64s
    starts: Int64s
    lengths: Int64s
    lines: Int64s


@dataclass
class Scan:
    """What the chunks hold."""

    chunks: list[Chunk]
    spots: dict[tuple[str, int], Spots] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)
    lines: int = 0
    blank_lines: int = 0
    bytes: int = 0


def _raw_text(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace")


def scan(
    chunks: list[Chunk], on_read: Callable[[int, bytes], None] = lambda _index, _data: None
) -> Scan:
    """Read `chunks` in written order; `on_read` gets each chunk's index and content."""
    result = Scan(chunks)
    for index, chunk in enumerate(chunks):
        try:
            data = chunk.path.read_bytes()
        except OSError as exc:
            raise UnreadableChunkError.of(chunk.path, exc) from None
        _scan_chunk(result, index, chunk, data)
        result.bytes += len(data)
        on_read(index, data)
    return result


def _scan_chunk(result: Scan, index: int, chunk: Chunk, data: bytes) -> None:
    if not _scan_clean_chunk(result, index, chunk, data):
        _scan_lines(result, index, chunk, data)


def _scan_clean_chunk(result: Scan, index: int, chunk: Chunk, data: bytes) -> bool:
    """The common chunk in one go: its complete lines as one JSON array, decoded at once.
    False (nothing done) unless every complete line surely has an envelope; a last line
    without its newline is judged on its own."""
    end = data.rfind(b"\n") + 1  # the complete lines
    text = np.frombuffer(data, dtype=np.uint8, count=end)
    newlines = np.flatnonzero(text == _NEWLINE)
    starts = np.zeros(len(newlines), dtype=np.int64)
    starts[1:] = newlines[:-1] + 1
    lengths = newlines - starts
    if not len(lengths) or lengths.min() == 0:  # blank lines: the careful way
        return False
    # "[" + the lines joined by "," + "]", built with one copy of the chunk.
    joined = bytearray(end + 1)
    array = np.frombuffer(joined, dtype=np.uint8)
    array[1:] = text
    array[newlines + 1] = _COMMA
    array[0], array[-1] = _OPEN, _CLOSE
    typed = judge_array(joined, len(lengths))
    if typed is None:
        return False
    result.lines += len(lengths)
    _add_block(result, index, chunk, typed, starts, lengths, np.arange(1, len(lengths) + 1))
    tail = data[end:]
    if tail:
        result.lines += 1
        _judge_each(result, index, chunk, [(len(lengths) + 1, end, tail)], last=True)
    return True


def _scan_lines(result: Scan, index: int, chunk: Chunk, data: bytes) -> None:
    """A chunk with something odd: blocks of lines at a time, the odd blocks line by line."""
    pieces = data.split(b"\n")
    terminated = pieces[-1] == b""
    if terminated:
        pieces.pop()
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    starts = np.zeros(len(pieces), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    filled = np.flatnonzero(lengths > 0)
    result.blank_lines += len(pieces) - len(filled)
    result.lines += len(filled)
    # A last line without its newline is judged on its own: a cut-short write would send its
    # whole block the slow way.
    tail = None
    if not terminated and len(filled) and filled[-1] == len(pieces) - 1:
        tail, filled = filled[-1:], filled[:-1]
    for begin in range(0, len(filled), _BLOCK_LINES):
        block = filled[begin : begin + _BLOCK_LINES]
        lines = [pieces[i] for i in block.tolist()]
        typed = judge_block(lines)
        if typed is None:
            numbered = [
                (i + 1, int(starts[i]), line) for i, line in zip(block.tolist(), lines, strict=True)
            ]
            _judge_each(result, index, chunk, numbered, last=False)
        else:
            _add_block(result, index, chunk, typed, starts[block], lengths[block], block + 1)
    if tail is not None:
        last = int(tail[0])
        _judge_each(result, index, chunk, [(last + 1, int(starts[last]), pieces[last])], last=True)


def _add_block(
    result: Scan,
    index: int,
    chunk: Chunk,
    typed: Block,
    starts: Int64s,
    lengths: Int64s,
    numbers: Int64s,
) -> None:
    days = typed.days.copy()
    days[days < 0] = chunk.day
    _add(
        result, index, typed.topics, typed.partitions, typed.offsets, days, starts, lengths, numbers
    )


def _add(
    result: Scan,
    index: int,
    topics: list[str],
    partitions: Int64s,
    offsets: Int64s,
    days: Int64s,
    starts: Int64s,
    lengths: Int64s,
    numbers: Int64s,
) -> None:
    """Add the records of a block, by topic-partition."""
    names = set(topics)
    for topic in sorted(names):
        in_topic = None if len(names) == 1 else np.array([t == topic for t in topics])
        for partition in np.unique(partitions if in_topic is None else partitions[in_topic]):
            mask = partitions == partition
            if in_topic is not None:
                mask &= in_topic
            key = (topic, int(partition))
            spots = result.spots.get(key)
            if spots is None:
                spots = result.spots[key] = Spots()
            spots.add(offsets[mask], days[mask], index, starts[mask], lengths[mask], numbers[mask])


def _judge_each(
    result: Scan, index: int, chunk: Chunk, lines: list[tuple[int, int, bytes]], *, last: bool
) -> None:
    """Judge `lines` (number, start in the chunk, text) one by one (`last`: the one line is
    the chunk's unterminated last line), setting aside those without an envelope."""
    name = str(chunk.path)
    found: list[tuple[Envelope, int, int, int]] = []  # envelope, start, length, line number
    for number, start, piece in lines:
        verdict = judge(piece)
        if type(verdict) is Envelope:
            found.append((verdict, start, len(piece), number))
            continue
        assert isinstance(verdict, Refusal)
        cut = last and _unparsed(verdict)
        after = None if cut or not _unparsed(verdict) else _record_after(piece)
        if after is None:
            reason, field_name = (TRUNCATED_LINE, None) if cut else verdict
            result.set_aside.append(SetAside(name, number, reason, field_name, _raw_text(piece)))
            continue
        skip, record = after
        result.set_aside.append(
            SetAside(name, number, TRUNCATED_LINE, None, _raw_text(piece[:skip]))
        )
        found.append((record, start + skip, len(piece) - skip, number))
    if found:
        days = np.array([chunk.day if e.day is None else e.day for e, *_ in found], dtype=np.int64)
        _add(
            result,
            index,
            [e.topic for e, *_ in found],
            np.array([e.partition for e, *_ in found], dtype=np.int64),
            np.array([e.offset for e, *_ in found], dtype=np.int64),
            days,
            np.array([f[1] for f in found], dtype=np.int64),
            np.array([f[2] for f in found], dtype=np.int64),
            np.array([f[3] for f in found], dtype=np.int64),
        )


def _unparsed(refusal: Refusal) -> bool:
    """Whether a refusal says the line is not a JSON object (or not UTF-8) at all."""
    return refusal.reason in (Reason.INVALID_JSON, Reason.NOT_UTF8) and refusal.field is None


def _record_after(line: bytes) -> tuple[int, Envelope] | None:
    """A complete record that ends `line` after a cut-short one: where it starts, and its
    envelope; None if there is none."""
    position = 0
    for _ in range(_MAX_RESTARTS):
        position = line.find(_RECORD_START, position + 1)
        if position < 0:
            return None
        verdict = judge(line[position:])
        if type(verdict) is Envelope:
            return position, verdict
    return None
