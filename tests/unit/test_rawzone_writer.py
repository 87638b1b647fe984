"""One raw file's life: temp -> fsync -> rename -> published, never touched again."""

from __future__ import annotations

from pathlib import Path

import pytest

from weatherpipe.rawzone import naming
from weatherpipe.rawzone.writer import FileState, RawZone

DAY = 19_783  # 2024-03-01


def test_file_is_invisible_until_finished_then_at_its_final_name(tmp_path: Path) -> None:
    zone = RawZone(tmp_path, "t", "1-a")
    raw = zone.open(3, DAY, 100)
    raw.write(b"a\n", 100)
    raw.write(b"b\n", 101)
    assert raw.state is FileState.OPEN
    assert raw.temp_path.parent == naming.temp_dir(tmp_path)
    assert list(tmp_path.glob("t/date=*/*.ndjson")) == []
    final = raw.finish()
    assert final == naming.final_path(tmp_path, "t", "2024-03-01", 3, 100, 101)
    assert final.read_bytes() == b"a\nb\n"
    assert raw.state is FileState.PUBLISHED
    assert not raw.temp_path.exists()
    assert (raw.records, raw.size, raw.last_offset) == (2, 4, 101)
    assert raw.finish() == final  # idempotent: a retry does not redo a step
    with pytest.raises(RuntimeError, match="never be removed"):
        raw.abort()


def test_offsets_with_gaps_name_the_first_and_last(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 5)
    for offset in (5, 6, 9):  # gaps: transaction markers, compaction
        raw.write(b"x\n", offset)
    assert raw.finish().name == naming.file_name("t", 0, 5, 9)


def test_finish_resumes_at_the_failed_step(tmp_path: Path) -> None:
    zone = RawZone(tmp_path, "t", "1-a")
    raw = zone.open(0, DAY, 0)
    raw.write(b"x\n", 0)
    # The date folder cannot be created (a file is in its way): rename fails after fsync.
    (tmp_path / "t").write_text("in the way")
    with pytest.raises(OSError):
        raw.finish()
    assert raw.state is FileState.SYNCED
    assert raw.temp_path.read_bytes() == b"x\n"
    (tmp_path / "t").unlink()
    assert raw.finish().read_bytes() == b"x\n"
    assert raw.state is FileState.PUBLISHED


def test_abort_removes_the_temp_file(tmp_path: Path) -> None:
    raw = RawZone(tmp_path, "t", "1-a").open(0, DAY, 0)
    raw.write(b"x\n", 0)
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
