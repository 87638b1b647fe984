"""Recovery on a temp folder: the files own the offsets, stale temp files are removed, and a
newest file whose content disagrees with its name is set aside."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from weatherpipe.rawzone import listing, naming, recovery
from weatherpipe.rawzone.lines import LineEncoder

TOPIC = "weather_data_raw"
_ENCODER = LineEncoder(TOPIC)


def lines(partition: int, offsets: range) -> bytes:
    prefix = _ENCODER.prefix(partition)
    return b"".join(
        _ENCODER.line(prefix, n, 1_709_251_200_000, None, b'{"n":1}', Counter()) for n in offsets
    )


def put(
    raw_dir: Path, date: str, partition: int, first: int, last: int, content: bytes | None = None
) -> Path:
    path = naming.final_path(raw_dir, TOPIC, date, partition, first, last)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines(partition, range(first, last + 1)) if content is None else content)
    return path


def put_temp(raw_dir: Path, partition: int, first: int, owner: str, topic: str = TOPIC) -> Path:
    path = naming.temp_dir(raw_dir) / naming.temp_name(topic, partition, first, owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"half a li')
    return path


def test_empty_raw_zone_resumes_nowhere(tmp_path: Path) -> None:
    assert recovery.highest_offsets(tmp_path, TOPIC) == {}
    assert recovery.resume_offsets(tmp_path, TOPIC, [0, 1]) == recovery.Resume()
    assert recovery.stale_temp_files(tmp_path, TOPIC, [0]) == []


def test_resume_after_the_highest_last_offset_across_dates(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 99)
    put(tmp_path, "2024-03-02", 0, 100, 149)
    put(tmp_path, "2024-03-01", 0, 150, 152)  # a late record of the day before
    put(tmp_path, "2024-03-01", 1, 0, 9)
    put(tmp_path, "2024-03-01", 10, 0, 1000)
    assert recovery.highest_offsets(tmp_path, TOPIC) == {0: 152, 1: 9, 10: 1000}
    assert recovery.resume_offsets(tmp_path, TOPIC, [0, 1, 2]).offsets == {0: 153, 1: 10}


def test_other_topics_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 5)
    other = naming.final_path(tmp_path, "other", "2024-03-01", 0, 0, 999)
    other.parent.mkdir(parents=True)
    other.write_bytes(b"")
    # A file of another topic misplaced in our folder, a README, a folder that is no date.
    folder = naming.date_dir(tmp_path, TOPIC, "2024-03-01")
    (folder / naming.file_name("other", 0, 0, 999)).write_bytes(b"")
    (folder / "README.txt").write_text("x")
    (tmp_path / TOPIC / "notes").mkdir()
    (tmp_path / TOPIC / "notes" / naming.file_name(TOPIC, 0, 0, 999)).write_bytes(b"")
    assert recovery.highest_offsets(tmp_path, TOPIC) == {0: 5}
    assert [raw.name for raw in listing.topic_files(tmp_path, TOPIC)] == [
        naming.RawFileName(TOPIC, 0, 0, 5)
    ]


def test_stale_temp_files_of_the_assigned_partitions_only_are_removed(tmp_path: Path) -> None:
    mine = [put_temp(tmp_path, 1, 0, "111-aa"), put_temp(tmp_path, 1, 500, "222-bb")]
    others = [
        put_temp(tmp_path, 11, 0, "111-aa"),  # partition 11 is not partition 1
        put_temp(tmp_path, 2, 0, "111-aa"),
        put_temp(tmp_path, 1, 0, "111-aa", topic="weather_data_raw2"),
    ]
    removed = recovery.remove_stale_temp_files(tmp_path, TOPIC, [1])
    assert removed == sorted(mine)
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in others)


def test_temp_files_never_count_as_stored(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 9)
    put_temp(tmp_path, 0, 10, "1-a")
    assert recovery.resume_offsets(tmp_path, TOPIC, [0]).offsets == {0: 10}


def test_a_newest_file_holding_more_than_its_name_is_set_aside(tmp_path: Path) -> None:
    """What a full disk left behind before files were checked: the name ends at 409, the
    content goes on to 411 and a line cut in the middle."""
    put(tmp_path, "2024-03-01", 0, 0, 390)
    full = lines(0, range(391, 413))
    damaged = put(tmp_path, "2024-03-01", 0, 391, 409, full[: len(full) - 40])
    put(tmp_path, "2024-03-01", 1, 0, 5)
    resume = recovery.resume_offsets(tmp_path, TOPIC, [0, 1])
    assert resume.offsets == {0: 391, 1: 6}
    moved = naming.damaged_dir(tmp_path) / damaged.relative_to(tmp_path)
    assert resume.set_aside == [
        recovery.SetAside(damaged, moved, "its last line is cut off (no newline at its end)")
    ]
    assert not damaged.exists() and moved.read_bytes() == full[: len(full) - 40]
    # Out of the batch's and recovery's sight.
    assert sorted(tmp_path.glob("*/date=*/*.ndjson")) == [
        naming.final_path(tmp_path, TOPIC, "2024-03-01", p, 0, last)
        for p, last in ((0, 390), (1, 5))
    ]


def test_whole_lines_past_the_name_and_a_name_past_the_lines_are_set_aside(
    tmp_path: Path,
) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 9)
    past = put(tmp_path, "2024-03-01", 0, 10, 19, lines(0, range(10, 25)))
    short = put(tmp_path, "2024-03-02", 0, 20, 29, lines(0, range(20, 26)))
    resume = recovery.resume_offsets(tmp_path, TOPIC, [0])
    assert resume.offsets == {0: 10}
    assert [(s.path, s.problem) for s in resume.set_aside] == [
        (
            short,
            "its last line is partition 0 offset 25, where the name says partition 0 offset 29",
        ),
        (past, "its last line is partition 0 offset 24, where the name says partition 0 offset 19"),
    ]


def test_a_name_taken_in_the_damaged_folder_is_never_overwritten(tmp_path: Path) -> None:
    first = put(tmp_path, "2024-03-01", 0, 0, 9, b"{not a line}\n")
    recovery.resume_offsets(tmp_path, TOPIC, [0])
    again = put(tmp_path, "2024-03-01", 0, 0, 9, b"")
    resume = recovery.resume_offsets(tmp_path, TOPIC, [0])
    assert resume.offsets == {}
    (set_aside,) = resume.set_aside
    assert (set_aside.path, set_aside.problem) == (again, "it is empty")
    assert set_aside.moved_to.name == first.name + ".1"
    assert (naming.damaged_dir(tmp_path) / first.relative_to(tmp_path)).read_bytes() == (
        b"{not a line}\n"
    )
