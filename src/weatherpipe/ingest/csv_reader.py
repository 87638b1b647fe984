"""Columnar reading of the weather CSV: the header check, then blocks of rows.

The file is read in large byte blocks and split into lines by PyArrow, so every row keeps its
physical line number (header = line 1) and its raw text for the dead-letter topic. Accepts
UTF-8 with or without a byte order mark and LF, CRLF or CR-only line ends (the line end of the
header is the file's); a UTF-16 or UTF-32 file is refused with a clear error. Fields are split
by Arrow too; only rows that contain a double quote go through Python's `csv` module (the
Kaggle file has none).

A quoted field may hold line ends, as in RFC 4180: its lines make one row, numbered by the
first. A quote that does not close within MAX_FIELD_LINES lines (or by the end of the file) is
a broken row of that one line (`unclosed_quote`), and reading goes on with the next line, so a
stray quote cannot swallow the rest of the file.

A blank line (nothing but spaces or tabs) is no row at all, as for Python's `csv` and pandas:
it is skipped and counted, so an editor's trailing empty lines don't reach the dead-letter topic.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weatherpipe.errors import TerminalError
from weatherpipe.events import CSV_COLUMNS, Reason
from weatherpipe.ingest.reject import Reject

BOM: Final = b"\xef\xbb\xbf"
# Byte order marks of encodings that are not UTF-8, longest first (UTF-32 LE starts like UTF-16).
_OTHER_BOMS: Final = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_SNIFF_BYTES: Final = 4096
# About 40,000 rows: large enough that Arrow's per-block work is cheap, small enough that the
# blocks in flight (one read ahead, one being sent) and their Python values stay flat (8 MiB
# blocks took the producer to 420 MiB, 2 MiB to 250 MiB).
BLOCK_BYTES: Final = 2 << 20
MAX_FIELD_LINES: Final = 10
"""The most lines one quoted field may span."""
_HEADER_BYTES: Final = 1 << 20  # a longer first line is no header of this format anyway


class CsvError(TerminalError):
    """The CSV file cannot be read as a whole (missing, unreadable, wrong header)."""


@dataclass(frozen=True)
class LineBlock:
    """Consecutive rows of the file, without their line ends."""

    lines: pa.Array
    """Each row's text (the lines of a row with a multi-line quoted field joined by LF); a row
    that is not valid UTF-8 is null here."""
    numbers: np.ndarray
    """Physical line number (1-based, header = 1) where each row starts."""
    undecodable: dict[int, str] = field(default_factory=dict)
    """Index in `lines` -> the text of a row that is not valid UTF-8 (bad bytes as U+FFFD)."""
    parsed: dict[int, list[str]] = field(default_factory=dict)
    """Index in `lines` -> the fields of a row with a double quote, read by the CSV rules."""
    unclosed: frozenset[int] = frozenset()
    """Indexes in `lines` of rows whose quoted field does not close (the row is its first
    line alone)."""
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


@dataclass(frozen=True)
class Header:
    """What the first line says about the file."""

    offset: int
    """Byte offset of line 2."""
    newline: bytes
    """The line end: LF (LF and CRLF files) or CR (old Mac files)."""


def check_header(path: Path) -> Header:
    """Check the header against CSV_COLUMNS; return where the data starts and its line end.

    Raises `CsvError` naming the file, the missing / unexpected columns and the expected
    header, before anything is sent.
    """
    try:
        with path.open("rb") as handle:
            start = handle.read(_HEADER_BYTES)
    except FileNotFoundError as exc:
        raise CsvError(
            f"{path}: no such file. Pass --csv PATH (or set CSV_PATH), or create a sample "
            "data set with `weatherpipe generate`."
        ) from exc
    except OSError as exc:
        raise CsvError(f"{path}: cannot be read ({exc.strerror}). Check the path.") from exc
    _refuse_other_encodings(path, start)
    newline = _line_end(start)
    end = start.find(newline)
    first = start if end < 0 else start[: end + 1]
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
    return Header(len(first), newline)


def _refuse_other_encodings(path: Path, start: bytes) -> None:
    """A UTF-16 or UTF-32 file would otherwise be read as a wrong header of odd characters."""
    encoding = next(
        (name for bom, name in _OTHER_BOMS if start.startswith(bom) and _decodes(start, name)),
        None,
    )
    how = "it starts with a byte order mark of that encoding"
    line = start.split(b"\n", 1)[0]
    if encoding is None and b"\x00" in line:  # ASCII text in UTF-16 has a NUL in every pair
        encoding, how = "UTF-16 or UTF-32", "its first line holds NUL bytes"
    if encoding is not None:
        raise CsvError(
            f"{path}, line 1: the file is {encoding} text ({how}); weatherpipe reads UTF-8. "
            f"Save it as UTF-8 (for example `iconv -f {encoding.split()[0]} -t UTF-8 "
            f"{path.name} > {path.stem}-utf8.csv`) and run again; nothing was sent."
        )


def _decodes(start: bytes, encoding: str) -> bool:
    """Whether the file's first bytes are text in `encoding` (binary data may start like a
    byte order mark too)."""
    try:
        codecs.getincrementaldecoder(encoding)().decode(start[:_SNIFF_BYTES], final=False)
    except UnicodeDecodeError:
        return False
    return True


def _line_end(start: bytes) -> bytes:
    """CR when the first line ends with a CR that no LF follows, else LF."""
    cr, lf = start.find(b"\r"), start.find(b"\n")
    if cr >= 0 and (lf < 0 or cr < lf) and start[cr + 1 : cr + 2] != b"\n":
        return b"\r"
    return b"\n"


def read_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock]:
    """The rows of `path` after its header, in blocks of about `block_bytes` bytes.

    The header is checked at once (not when iteration starts), so a wrong file fails before
    anything else happens. A final line without a line end is a line; the empty string after
    the last line end is not.
    """
    header = check_header(path)
    return _read(path, block_bytes, header)


def _read(path: Path, block_bytes: int, header: Header) -> Iterator[LineBlock]:
    with path.open("rb") as handle:
        handle.seek(header.offset)
        yield from _blocks(handle, block_bytes, header)


def _blocks(handle: BinaryIO, block_bytes: int, header: Header) -> Iterator[LineBlock]:
    newline = header.newline
    carry = b""
    line_number = 2
    offset = header.offset  # of the first byte of `carry`
    while True:
        data = handle.read(block_bytes)
        if not data:
            break
        data = carry + data
        cut = data.rfind(newline)
        if cut < 0:
            carry = data
            continue
        block, lines, taken = _split_lines(line_number, data[:cut], newline, at_end=False)
        if block is None:  # one row still open: read on
            carry = data
            continue
        carry = data[taken + len(newline) :]
        offset += len(data) - len(carry)
        line_number += lines
        yield _with_end(block, offset)
    if carry:
        # A row left open by the last block ends with the file's last line end, after which
        # there is no line.
        rest = carry.removesuffix(newline)
        block, _, _ = _split_lines(line_number, rest, newline, at_end=True)
        if block is not None:
            yield _with_end(block, offset + len(carry))


def _with_end(block: LineBlock, end_offset: int) -> LineBlock:
    return LineBlock(
        block.lines, block.numbers, block.undecodable, block.parsed, block.unclosed, end_offset
    )


def _split_lines(
    first_line: int, data: bytes, newline: bytes, *, at_end: bool
) -> tuple[LineBlock | None, int, int]:
    """The rows of `data` (whole lines, without the last line end), how many physical lines
    and how many bytes of `data` they take: a quoted field still open at the end of `data` is
    left for the next block, unless `at_end`. No block when no row is complete yet."""
    raw_lines = pc.list_flatten(pc.split_pattern(pa.array([data], pa.binary()), pattern=newline))
    lines = raw_lines
    if newline == b"\n":
        crlf = pc.ends_with(lines, pattern=b"\r")
        if pc.any(crlf).as_py():
            lines = pc.if_else(crlf, pc.binary_slice(lines, 0, -1), lines)
    texts, undecodable = _decode(lines)
    numbers = np.arange(first_line, first_line + len(texts), dtype=np.int64)
    if b'"' not in data:
        return LineBlock(texts, numbers, undecodable), len(texts), len(data)
    rows = _QuotedRows(texts, undecodable, at_end)
    if rows.open_from is None:
        return rows.block(numbers), len(texts), len(data)
    if rows.open_from == 0:
        return None, 0, 0
    lengths = pc.binary_length(raw_lines).to_numpy(zero_copy_only=False)
    taken = int(lengths[: rows.open_from].sum()) + (rows.open_from - 1) * len(newline)
    return rows.block(numbers), rows.open_from, taken


def _decode(lines: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """The lines as text; a line that is not UTF-8 is null, its text (with U+FFFD) aside."""
    try:
        return lines.cast(pa.string()), {}
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
    return pa.array(texts, pa.string()), undecodable


class _QuotedRows:
    """The rows of a block with double quotes: each line with a quote is read by the CSV
    rules; one that leaves a quoted field open is joined with the lines that follow until the
    field closes."""

    def __init__(self, texts: pa.Array, undecodable: dict[int, str], at_end: bool) -> None:
        self.texts = texts
        self.undecodable = undecodable
        self.parsed: dict[int, list[str]] = {}  # by physical index
        self.joined: dict[int, int] = {}  # physical index -> lines it takes
        self.unclosed: set[int] = set()
        self.open_from: int | None = None
        """Physical index of a row still open at the end of the block (read it again with
        the next block)."""
        quoted = pc.match_substring(pc.fill_null(texts, ""), '"').to_numpy(zero_copy_only=False)
        count = len(texts)
        skip_to = 0
        for index in np.flatnonzero(quoted):
            i = int(index)
            if i < skip_to or i in undecodable:
                continue
            lines = 1
            while True:
                fields = _read_row(self._text(i, lines))
                if fields is not None:
                    self.parsed[i] = fields
                    break
                if lines == MAX_FIELD_LINES or (i + lines == count and at_end):
                    self.unclosed.add(i)
                    lines = 1
                    break
                if i + lines == count:
                    self.open_from = i
                    return
                lines += 1
            if lines > 1:
                self.joined[i] = lines
            skip_to = i + lines

    def _text(self, first: int, lines: int) -> str:
        return "\n".join(
            self.undecodable.get(i) or str(self.texts[i].as_py())
            for i in range(first, first + lines)
        )

    def block(self, numbers: np.ndarray) -> LineBlock:
        """The rows up to `open_from` as a block."""
        end = len(self.texts) if self.open_from is None else self.open_from
        if not self.joined:
            return LineBlock(
                self.texts.slice(0, end),
                numbers[:end],
                {i: t for i, t in self.undecodable.items() if i < end},
                self.parsed,
                frozenset(self.unclosed),
            )
        keep = np.ones(end, dtype=bool)
        texts: list[str | None] = self.texts.slice(0, end).to_pylist()
        undecodable = dict(self.undecodable)
        for first, lines in self.joined.items():
            keep[first + 1 : first + lines] = False
            texts[first] = self._text(first, lines)
            if any(i in self.undecodable for i in range(first, first + lines)):
                undecodable[first] = str(texts[first])
                texts[first] = None
        rows = np.flatnonzero(keep)
        index = {int(physical): n for n, physical in enumerate(rows)}
        return LineBlock(
            pa.array([texts[i] for i in rows], pa.string()),
            numbers[:end][keep],
            {index[i]: t for i, t in undecodable.items() if i in index},
            {index[i]: f for i, f in self.parsed.items() if i not in undecodable},
            frozenset(index[i] for i in self.unclosed),
        )


def _read_row(text: str) -> list[str] | None:
    """The fields of one row by the CSV rules; None when a quoted field is still open at its
    end. Otherwise lenient, as Python's reader is by default (`"a"b` reads as `ab`)."""
    if len(text) > csv.field_size_limit():
        # The reader would raise on a field this long; a row too large for a message is
        # rejected after it is read (`split_fields`), so let the reader take it.
        csv.field_size_limit(len(text))
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return None
    return next(csv.reader([text]), [])


def split_fields(
    block: LineBlock, max_row_bytes: int | None = None
) -> tuple[SplitRows, list[Reject]]:
    """Split a block's rows into CSV fields.

    Returns the rows with the expected number of fields, and the others as rejects (wrong
    field count, not UTF-8, an unclosed quote, longer than `max_row_bytes` in UTF-8); blank
    lines are neither, only counted.
    """
    width = len(CSV_COLUMNS)
    numbers = block.numbers
    lines = pc.fill_null(block.lines, "")
    usable = np.ones(len(lines), dtype=bool)
    usable[list(block.undecodable)] = False
    rejects = [
        Reject(int(numbers[i]), text, Reason.NOT_UTF8, None, "the line is not valid UTF-8")
        for i, text in block.undecodable.items()
    ]
    if block.unclosed:
        usable[list(block.unclosed)] = False
        rejects += [_unclosed(int(numbers[i]), str(lines[i].as_py())) for i in block.unclosed]
    if max_row_bytes is not None:
        sizes = pc.binary_length(lines.cast(pa.binary())).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero((sizes > max_row_bytes) & usable):  # few: only bad rows
            usable[i] = False
            rejects.append(_too_large(int(numbers[i]), str(lines[i].as_py()), max_row_bytes))
    quoted = pc.match_substring(lines, '"').to_numpy(zero_copy_only=False)
    parts = pc.split_pattern(lines, pattern=",")
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    blank = np.zeros(len(lines), dtype=bool)
    for i in np.flatnonzero((counts == 1) & ~quoted & usable):  # few: only bad rows
        blank[i] = not str(lines[i].as_py()).strip(" \t")
    simple = (counts == width) & ~quoted & usable
    mask = pa.array(simple)
    good = pc.list_flatten(parts.filter(mask))
    n = int(simple.sum())
    fields = [good.take(pa.array(np.arange(i, n * width, width))) for i in range(width)]
    line = numbers[simple]
    raw = lines.filter(mask)
    rejects += [
        _wrong_count(int(numbers[i]), str(lines[i].as_py()), int(counts[i]))
        for i in np.flatnonzero((counts != width) & ~quoted & usable & ~blank)
    ]
    slow = np.flatnonzero(quoted & usable)
    if len(slow):
        line, raw, fields = _add_quoted_rows(
            [(int(numbers[i]), str(lines[i].as_py()), block.parsed.get(int(i))) for i in slow],
            line,
            raw,
            fields,
            rejects,
        )
    rejects.sort(key=lambda r: r.line)
    return SplitRows(line, raw, tuple(fields), int(blank.sum())), rejects


def _wrong_count(line: int, text: str, count: int) -> Reject:
    detail = f"expected {len(CSV_COLUMNS)} comma-separated fields, found {count}"
    return Reject(line, text, Reason.WRONG_FIELD_COUNT, None, detail)


def _unclosed(line: int, text: str) -> Reject:
    detail = (
        f"a quoted field opens on this line and does not close within {MAX_FIELD_LINES} lines "
        "(or before the end of the file); the line is set aside alone and reading goes on "
        "with the next one"
    )
    return Reject(line, text, Reason.UNCLOSED_QUOTE, None, detail)


def _too_large(line: int, text: str, limit: int) -> Reject:
    size = len(text.encode("utf-8", errors="replace"))
    detail = (
        f"the row has {size:,} bytes; a message on the topic may have at most "
        f"{limit:,} for a row (the topic's max.message.bytes less room for the JSON around it)"
    )
    return Reject(line, text, Reason.TOO_LARGE, None, detail)


def _add_quoted_rows(
    quoted: list[tuple[int, str, list[str] | None]],
    line: np.ndarray,
    raw: pa.Array,
    fields: list[pa.Array],
    rejects: list[Reject],
) -> tuple[np.ndarray, pa.Array, list[pa.Array]]:
    """Rows with double quotes (read by the CSV rules), merged back in line order."""
    width = len(CSV_COLUMNS)
    extra_line: list[int] = []
    extra_raw: list[str] = []
    extra_fields: list[list[str]] = [[] for _ in range(width)]
    for number, text, parsed in quoted:
        row = parsed if parsed is not None else (_read_row(text) or [])
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
