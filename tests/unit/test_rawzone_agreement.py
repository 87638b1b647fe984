"""A raw file's content against its name: whole last line, partition, last offset, size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from weatherpipe.rawzone.agreement import disagreement, last_line
from weatherpipe.rawzone.lines import LineEncoder

_ENCODER = LineEncoder("t")


def line(partition: int, offset: int, value: bytes = b'{"n":1}') -> bytes:
    return _ENCODER.line(_ENCODER.prefix(partition), offset, 1, None, value, Counter())


@pytest.mark.parametrize("length", [1, 100, 65_535, 65_536, 65_537, 300_000])
def test_last_line_is_found_whatever_its_length(tmp_path: Path, length: int) -> None:
    path = tmp_path / "f"
    last = line(0, 2, b'"' + b"x" * length + b'"')
    path.write_bytes(line(0, 0) + line(0, 1) + last)
    assert last_line(path) == last
    path.write_bytes(last)  # the only line
    assert last_line(path) == last
    path.write_bytes(line(0, 0) + last[:-1])  # cut off: no newline
    assert last_line(path) == last[:-1]


def test_an_empty_file_has_an_empty_last_line(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert last_line(path) == b""
    assert disagreement(path, 0, 0) == "it is empty"


def test_a_file_agrees_when_its_last_line_carries_the_names_last_offset(tmp_path: Path) -> None:
    path = tmp_path / "f"
    content = line(3, 10) + line(3, 11)
    path.write_bytes(content)
    assert disagreement(path, 3, 11) is None
    assert disagreement(path, 3, 11, size=len(content)) is None
    assert disagreement(path, 3, 11, size=len(content) + 1) == (
        f"it holds {len(content):,} bytes where {len(content) + 1:,} were written"
    )
    assert disagreement(path, 3, 12) == (
        "its last line is partition 3 offset 11, where the name says partition 3 offset 12"
    )
    assert disagreement(path, 4, 11) == (
        "its last line is partition 3 offset 11, where the name says partition 4 offset 11"
    )
    path.write_bytes(content[:-1])
    assert disagreement(path, 3, 11) == "its last line is cut off (no newline at its end)"
    path.write_bytes(content + b'{"kafka":{"topic":"t","partition":3,"offset":12,"ti\n')
    assert disagreement(path, 3, 12) == "its last line is not a whole raw-zone record"
