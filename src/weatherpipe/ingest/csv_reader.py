"""Columnar reading of the weather CSV: the header check, then blocks of physical lines.

The file is read in large byte blocks and split into lines by PyArrow, so every line keeps its
physical line number (header = line 1) and its raw text for the dead-letter topic. Accepts
UTF-8 with or without a byte order mark and LF or CRLF line ends. Fields are split by Arrow too;
only lines that contain a double quote go through Python's `csv` module (the Kaggle file has
none). A quoted field spanning several lines is not supported: each physical line is a row.
A blank line (nothing but spaces or tabs) is no row at all, as for Python's `csv` and pandas:
it is skipped and counted, so an editor's trailing empty lines don't reach the dead-letter topic.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weatherpipe.errors import TerminalError
from weatherpipe.events import CSV_COLUMNS, Reason
from weatherpipe.ingest.reject import Reject

BOM: Final = b"\xef\xbb\xbf"
BLOCK_BYTES: Final = 8 << 20


class CsvError(TerminalError):
    """The CSV file cannot be read as a whole (missing, unreadable, wrong header)."""


@dataclass(frozen=True)
class LineBlock:
    """Consecutive physical lines of the file, without their line ends."""

    first_line: int
    """Physical line number (1-based, header = 1) of `lines[0]`."""
    lines: pa.Array
    """The lines as a string array; a line that is not valid UTF-8 is null here."""
    undecodable: dict[int, str]
    """Index in `lines` -> the text of a line that is not valid UTF-8 (bad bytes as U+FFFD)."""
    end_offset: int = 0
    """Byte offset in the file just after this block (for progress)."""


@dataclass(frozen=True)
class SplitRows:
    """The fields of a block's rows that have exactly the expected number of fields."""

    line: np.ndarray
    """Physical line number of each row."""
    raw: pa.Array
    """Each row's raw text."""
    fields: tuple[pa.Array, ...]
    """One string array per CSV column, in CSV_COLUMNS order."""
    blank: int = 0
    """Blank lines of the block: skipped, neither a row nor a reject."""


def check_header(path: Path) -> int:
    """Check the header against CSV_COLUMNS; return the byte offset of line 2.

    Raises `CsvError` naming the file, the missing / unexpected columns and the expected
    header, before anything is sent.
    """
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except FileNotFoundError as exc:
        raise CsvError(
            f"{path}: no such file. Pass --csv PATH (or set CSV_PATH), or create a sample "
            "data set with `weatherpipe generate`."
        ) from exc
    except OSError as exc:
        raise CsvError(f"{path}: cannot be read ({exc.strerror}). Check the path.") from exc
    offset = len(first)
    text = first.removeprefix(BOM).rstrip(b"\r\n")
    try:
        found = next(csv.reader([text.decode("utf-8")]), [])
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"{path}, line 1: the header is not UTF-8 text. Save the file as UTF-8."
        ) from exc
    names = [name.strip() for name in found]
    if names != list(CSV_COLUMNS):
        missing = [c for c in CSV_COLUMNS if c not in names]
        unexpected = [n for n in names if n not in CSV_COLUMNS]
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if unexpected:
            problems.append("unexpected column(s) " + ", ".join(repr(n) for n in unexpected))
        if not problems:
            problems.append("columns in the wrong order")
        raise CsvError(
            f"{path}, line 1: wrong header ({'; '.join(problems)}). Expected exactly "
            f"{','.join(CSV_COLUMNS)} (the Kaggle prasad22/weather-data header); nothing "
            "was sent. Fix the header line and run again."
        )
    return offset


def read_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock]:
    """The data lines of `path` after its header, in blocks of about `block_bytes` bytes.

    The header is checked at once (not when iteration starts), so a wrong file fails before
    anything else happens. A final line without a line end is a line; the empty string after
    the last line end is not.
    """
    offset = check_header(path)
    return _read(path, block_bytes, offset)


def _read(path: Path, block_bytes: int, offset: int) -> Iterator[LineBlock]:
    with path.open("rb") as handle:
        handle.seek(offset)
        yield from _blocks(handle, block_bytes, first_line=2, offset=offset)


def _blocks(
    handle: BinaryIO, block_bytes: int, first_line: int, offset: int
) -> Iterator[LineBlock]:
    carry = b""
    line_number = first_line
    while True:
        data = handle.read(block_bytes)
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        offset += cut + 1
        block = _split_lines(line_number, data[:cut], offset)
        yield block
        line_number += len(block.lines)
    if carry:
        yield _split_lines(line_number, carry, offset + len(carry))


def _split_lines(first_line: int, data: bytes, end_offset: int) -> LineBlock:
    lines = pc.list_flatten(pc.split_pattern(pa.array([data], pa.binary()), pattern=b"\n"))
    crlf = pc.ends_with(lines, pattern=b"\r")
    if pc.any(crlf).as_py():
        lines = pc.if_else(crlf, pc.binary_slice(lines, 0, -1), lines)
    try:
        return LineBlock(first_line, lines.cast(pa.string()), {}, end_offset)
    except pa.ArrowInvalid:
        pass
    # Rare: some line is not UTF-8. Find those one by one; the rest stays columnar.
    texts: list[str | None] = []
    undecodable: dict[int, str] = {}
    for index, raw in enumerate(lines.to_pylist()):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
            undecodable[index] = raw.decode("utf-8", errors="replace")
    return LineBlock(first_line, pa.array(texts, pa.string()), undecodable, end_offset)


def split_fields(block: LineBlock) -> tuple[SplitRows, list[Reject]]:
    """Split a block's lines into CSV fields.

    Returns the rows with the expected number of fields, and the others as rejects (wrong
    field count, not UTF-8); blank lines are neither, only counted.
    """
    width = len(CSV_COLUMNS)
    numbers = np.arange(block.first_line, block.first_line + len(block.lines), dtype=np.int64)
    lines = pc.fill_null(block.lines, "")
    decodable = np.ones(len(lines), dtype=bool)
    decodable[list(block.undecodable)] = False
    quoted = pc.match_substring(lines, '"').to_numpy(zero_copy_only=False)
    parts = pc.split_pattern(lines, pattern=",")
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    blank = np.zeros(len(lines), dtype=bool)
    for i in np.flatnonzero((counts == 1) & ~quoted & decodable):  # few: only bad rows
        blank[i] = not str(lines[i].as_py()).strip(" \t")
    simple = (counts == width) & ~quoted & decodable
    mask = pa.array(simple)
    good = pc.list_flatten(parts.filter(mask))
    n = int(simple.sum())
    fields = [good.take(pa.array(np.arange(i, n * width, width))) for i in range(width)]
    line = numbers[simple]
    raw = lines.filter(mask)
    rejects = [
        Reject(int(numbers[i]), text, Reason.NOT_UTF8, None, "the line is not valid UTF-8")
        for i, text in block.undecodable.items()
    ]
    rejects += [
        _wrong_count(int(numbers[i]), str(lines[i].as_py()), int(counts[i]))
        for i in np.flatnonzero((counts != width) & ~quoted & decodable & ~blank)
    ]
    slow = np.flatnonzero(quoted & decodable)
    if len(slow):
        line, raw, fields = _add_quoted_rows(
            [(int(numbers[i]), str(lines[i].as_py())) for i in slow], line, raw, fields, rejects
        )
    rejects.sort(key=lambda r: r.line)
    return SplitRows(line, raw, tuple(fields), int(blank.sum())), rejects


def _wrong_count(line: int, text: str, count: int) -> Reject:
    detail = f"expected {len(CSV_COLUMNS)} comma-separated fields, found {count}"
    return Reject(line, text, Reason.WRONG_FIELD_COUNT, None, detail)


def _add_quoted_rows(
    quoted: list[tuple[int, str]],
    line: np.ndarray,
    raw: pa.Array,
    fields: list[pa.Array],
    rejects: list[Reject],
) -> tuple[np.ndarray, pa.Array, list[pa.Array]]:
    """Parse lines with double quotes by the CSV rules and merge them back in line order."""
    width = len(CSV_COLUMNS)
    extra_line: list[int] = []
    extra_raw: list[str] = []
    extra_fields: list[list[str]] = [[] for _ in range(width)]
    for number, text in quoted:
        row = next(csv.reader([text]), [])
        if len(row) != width:
            rejects.append(_wrong_count(number, text, len(row)))
            continue
        extra_line.append(number)
        extra_raw.append(text)
        for column, value in zip(extra_fields, row, strict=True):
            column.append(value)
    all_lines = np.concatenate([line, np.array(extra_line, dtype=np.int64)])
    order = np.argsort(all_lines, kind="stable")
    index = pa.array(order)
    merged_raw = pa.concat_arrays([raw, pa.array(extra_raw, pa.string())]).take(index)
    merged_fields = [
        pa.concat_arrays([f, pa.array(e, pa.string())]).take(index)
        for f, e in zip(fields, extra_fields, strict=True)
    ]
    return all_lines[order], merged_raw, merged_fields
