"""One raw file's life: temp -> fsync -> check -> rename -> published, never touched again;
and a file whose write, flush or fsync failed, never published."""

from __future__ import annotations

import errno
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.short_writes import on_full_disk
from weatherpipe.rawzone import naming
from weatherpipe.rawzone.lines import LineEncoder
from weatherpipe.rawzone.writer import FileState, OpenFile, RawZone, RawZoneWriteError

DAY = 19_783  # 2024-03-01
_ENCODER = LineEncoder("t")


def line(partition: int, offset: int, value: bytes = b'{"n":1}') -> bytes:
    """A raw-zone line of topic "t", as the sink writes it."""
    prefix = _ENCODER.prefix(partition)
    return _ENCODER.line(prefix, offset, DAY * 86_400_000, b"k", value, Counter())


def test_file_is_invisible_until_finished_then_at_its_final_name(tmp_path: Path) -> None:
    zone = RawZone(tmp_path, "t", "1-a")
    raw = zone.open(3, DAY, 100)
    raw.write(line(3, 100), 100)
    raw.write(line(3, 101), 101)
    assert raw.state is FileState.OPEN
    assert raw.temp_path.parent == naming.temp_dir(tmp_path)
    assert list(tmp_path.glob("t/date=*/*.ndjson")) == []
    final = raw.finish()
    assert final == naming.final_path(tmp_path, "t", "2024-03-01", 3, 100, 101)
    assert final.read_bytes() == line(3, 100) + line(3, 101)
    assert raw.state is FileState.PUBLISHED
    assert not raw.temp_path.exists()
    assert (raw.records, raw.size, raw.last_offset) == (2, final.stat().st_size, 101)
    assert raw.finish() == final  # idempotent: a retry does not redo a step
    with pytest.raises(RuntimeError, match="never be removed"):
        raw.abort()


def test_offsets_with_gaps_name_the_first_and_last(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 5)
    for offset in (5, 6, 9):  # gaps: transaction markers, compaction
        raw.write(line(0, offset), offset)
    assert raw.finish().name == naming.file_name("t", 0, 5, 9)


def test_finish_resumes_at_the_failed_step(tmp_path: Path) -> None:
    zone = RawZone(tmp_path, "t", "1-a")
    raw = zone.open(0, DAY, 0)
    raw.write(line(0, 0), 0)
    # The date folder cannot be created (a file is in its way): rename fails after fsync.
    (tmp_path / "t").write_text("in the way")
    with pytest.raises(RawZoneWriteError, match="Could not publish raw file"):
        raw.finish()
    assert raw.state is FileState.SYNCED
    assert raw.temp_path.read_bytes() == line(0, 0)
    (tmp_path / "t").unlink()
    assert raw.finish().read_bytes() == line(0, 0)
    assert raw.state is FileState.PUBLISHED


def test_abort_removes_the_temp_file(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    raw.write(line(0, 0), 0)
    raw.abort()
    assert raw.state is FileState.ABORTED
    assert not raw.temp_path.exists()
    assert list(tmp_path.rglob("*.ndjson")) == []
    with pytest.raises(RuntimeError, match="aborted"):
        raw.finish()


def test_an_empty_file_is_never_published(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    with pytest.raises(RuntimeError, match="no record"):
        raw.finish()


def test_two_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    a = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    b = RawZone(tmp_path, "t", "2-b").open(0, DAY, 0)
    assert a.temp_path != b.temp_path
    with pytest.raises(FileExistsError):
        RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)


def assert_never_published(raw: OpenFile, tmp_path: Path) -> None:
    assert raw.state is FileState.POISONED
    assert not raw.temp_path.exists()
    assert list(tmp_path.rglob("*.ndjson*")) == []
    with pytest.raises(RuntimeError, match="poisoned"):
        raw.finish()


def test_a_short_write_on_a_full_disk_poisons_the_file(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    first = b"".join(line(0, n) for n in range(3))
    raw.write_lines(first, 3, 2)
    # More than the buffer: the data goes to the disk at once, part of it fits.
    big = b"".join(line(0, n, b'{"pad":"' + b"x" * 1000 + b'"}') for n in range(3, 2003))
    on_full_disk(raw, room=len(big) // 2)
    with pytest.raises(RawZoneWriteError) as failure:
        raw.write_lines(big, 2000, 2002)
    message = str(failure.value)
    assert f"Could not write to raw file {raw.temp_path}" in message
    assert "partition 0, 3 records, offsets 0-2" in message
    assert "No space left on device (errno 28)" in message
    assert re.search(rf"RAW_DIR \({re.escape(str(tmp_path))}\) has [0-9,.]+ MiB free of", message)
    assert "Free some space there" in message and "run `weatherpipe consume` again" in message
    assert_never_published(raw, tmp_path)


def test_a_failed_flush_poisons_the_file(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    on_full_disk(raw, room=10)
    raw.write(line(0, 0), 0)  # buffered: the disk is only reached when the file is finished
    with pytest.raises(RawZoneWriteError, match="Could not flush raw file"):
        raw.finish()
    assert_never_published(raw, tmp_path)


def test_an_io_error_says_to_fix_the_cause_rather_than_free_space(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    on_full_disk(raw, room=0, error=errno.EIO)
    raw.write(line(0, 0), 0)
    with pytest.raises(RawZoneWriteError) as failure:
        raw.finish()
    message = str(failure.value)
    assert "Input/output error (errno 5)" in message and "Fix the cause" in message
    assert "Free some space" not in message
    assert_never_published(raw, tmp_path)


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda path: path.write_bytes(path.read_bytes()[:-5]), "bytes where"),
        (lambda path: path.write_bytes(path.read_bytes() + b"{"), "bytes where"),
    ],
)
def test_a_file_whose_content_is_not_what_was_written_is_never_published(
    tmp_path: Path, tamper: object, problem: str
) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    raw.write(line(0, 0), 0)
    raw._file.flush()
    tamper(raw.temp_path)  # type: ignore[operator]
    with pytest.raises(RawZoneWriteError, match=f"Could not check raw file .*{problem}"):
        raw.finish()
    assert_never_published(raw, tmp_path)


def test_a_last_line_that_is_not_the_last_offset_is_never_published(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    raw.write(line(0, 0), 0)
    raw.write(line(0, 7), 1)  # the line of another offset than the one it is told
    with pytest.raises(RawZoneWriteError, match=r"offset 7, where the name says .* offset 1"):
        raw.finish()
    assert_never_published(raw, tmp_path)


@pytest.mark.parametrize("topic", [".tmp", ".damaged", "..", "."])
def test_a_topic_whose_folder_would_be_the_raw_zones_own_is_refused(
    tmp_path: Path, topic: str
) -> None:
    with pytest.raises(RawZoneWriteError, match="one of the raw zone's own"):
        RawZone(tmp_path, topic, "1-a")
