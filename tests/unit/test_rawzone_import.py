"""`import_raw` on temp folders: the original's chunks become weatherpipe raw files that hold
each record exactly once, the source is never touched, and a second import adds nothing."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests import original_rawzone
from tests.rawzone_files import Record, event, write_file
from weatherpipe.events import Reason
from weatherpipe.rawzone import import_log, listing, naming, recovery
from weatherpipe.rawzone.import_log import ImportBusyError
from weatherpipe.rawzone.import_scan import TRUNCATED_LINE
from weatherpipe.rawzone.importer import (
    CONFLICTING_COPY,
    NothingToImportError,
    RawImportConflictError,
    import_raw,
)
from weatherpipe.rawzone.original_layout import find_chunks

MIB = 1 << 20
TOPIC = original_rawzone.TOPIC


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with a digest of its content (and so its size)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def imported_lines(raw_dir: Path) -> list[tuple[Path, dict[str, object], bytes]]:
    """Every line of every finished raw file: (file, parsed line, bytes)."""
    out = []
    for file in listing.topic_files(raw_dir, TOPIC):
        path = file.location(raw_dir)
        for raw in path.read_bytes().splitlines():
            out.append((path, orjson.loads(raw), raw))
    return out


def test_each_record_once_in_files_like_the_consumers(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed")
    raw_dir = tmp_path / "raw"
    summary = import_raw(source.root, raw_dir, MIB)

    assert source.repeated_lines > 0 and source.truncated and source.glued  # defects planted
    found = imported_lines(raw_dir)
    keys = [
        (k["topic"], k["partition"], k["offset"]) for _, line, _ in found for k in [line["kafka"]]
    ]
    assert sorted(keys) == sorted(source.records)  # every record, each exactly once
    assert summary.written == len(source.records)
    assert summary.repeats == source.repeated_lines
    assert summary.lines == source.lines
    # Lines are copied as the original wrote them.
    assert {raw for *_, raw in found} == {r.line().encode() for r in source.records.values()}
    for name in listing.topic_files(raw_dir, TOPIC):
        path = name.location(raw_dir)
        lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        offsets = [x["kafka"]["offset"] for x in lines]
        # A file holds one partition's consecutive offsets, as its name says ...
        assert offsets == list(range(name.first_offset, name.last_offset + 1))
        assert {x["kafka"]["partition"] for x in lines} == {name.partition}
        # ... of one UTC date, the date of the Kafka timestamp (of the chunk without one).
        dates = {
            datetime.fromtimestamp(x["kafka"]["timestamp_ms"] / 1000, UTC).date().isoformat()
            for x in lines
            if x["kafka"]["timestamp_ms"] is not None
        }
        assert dates <= {path.parent.name.removeprefix("date=")}
    assert not list(naming.temp_dir(raw_dir).iterdir())


def test_lines_without_an_envelope_are_listed_with_file_line_and_reason(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed")
    raw_dir = tmp_path / "raw"
    summary = import_raw(source.root, raw_dir, MIB)

    listed = [
        orjson.loads(x) for x in import_log.quarantine_path(raw_dir).read_bytes().splitlines()
    ]
    where = {(e["file"], e["line"]): e["reason"] for e in listed}
    expected = {(str(p), n): TRUNCATED_LINE for p, n in source.truncated}
    expected |= {(str(p), n): Reason.INVALID_JSON for p, n in source.not_json}
    assert where == expected
    assert summary.set_aside == Counter(expected.values())
    assert summary.newly_listed == len(expected)
    assert all(e["raw"] for e in listed)


def test_the_record_a_restart_ran_into_a_cut_short_line_is_kept(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed")
    ((path, number),) = source.glued
    line = path.read_bytes().split(b"\n")[number - 1]
    # The glued line: a cut-short record, then a whole one (which is nowhere else).
    cut = line.rfind(b'{"kafka"')
    whole = orjson.loads(line[cut:])
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(line)
    raw_dir = tmp_path / "raw"
    import_raw(source.root, raw_dir, MIB)
    assert [raw for _, parsed, raw in imported_lines(raw_dir) if parsed == whole] == [line[cut:]]
    listed = [
        orjson.loads(x) for x in import_log.quarantine_path(raw_dir).read_bytes().splitlines()
    ]
    (entry,) = [e for e in listed if (e["file"], e["line"]) == (str(path), number)]
    assert (entry["reason"], entry["raw"]) == (TRUNCATED_LINE, line[:cut].decode())


def test_a_second_import_adds_nothing(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed")
    raw_dir = tmp_path / "raw"
    before = tree_digest(source.root)
    import_raw(source.root, raw_dir, MIB)
    after_first = tree_digest(raw_dir)

    again = import_raw(source.root, raw_dir, MIB)
    assert (again.written, again.files, again.newly_listed) == (0, 0, 0)
    assert again.already_stored == len(source.records)
    assert tree_digest(raw_dir) == after_first
    assert tree_digest(source.root) == before  # the source is only read


def test_the_consumer_resumes_after_the_imported_offsets(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed", per_partition=120)
    raw_dir = tmp_path / "raw"
    summary = import_raw(source.root, raw_dir, MIB)
    highest = Counter[int]()
    for _, p, o in source.records:
        highest[p] = max(highest[p], o)
    expected = {p: h + 1 for p, h in highest.items()}
    resume = recovery.resume_offsets(raw_dir, TOPIC, [0, 1, 2, 3])
    assert resume.offsets == expected
    assert resume.set_aside == []
    assert {r.partition: r.resumes_at for r in summary.partitions} == expected


def test_files_are_finished_at_rotate_mb_like_the_consumers(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed", crashes=0, per_partition=300)
    raw_dir = tmp_path / "raw"
    limit = 8_000
    import_raw(source.root, raw_dir, limit)
    by_partition: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for raw in listing.topic_files(raw_dir, TOPIC):
        by_partition.setdefault((raw.partition, raw.date), []).append(
            (raw.first_offset, raw.size_bytes)
        )
    assert sum(len(v) for v in by_partition.values()) > 20
    for files in by_partition.values():
        files.sort()
        # Every file but the last of a run is finished by the line that takes it past the
        # limit: it holds at least `limit` bytes, and less without its last line (< 400 B).
        for _, size in files[:-1]:
            assert limit <= size < limit + 400


def test_an_offset_missing_from_the_source_stays_free_for_a_later_import(tmp_path: Path) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    folder = first / TOPIC / "2024-03-01"
    folder.mkdir(parents=True)
    records = {
        o: original_rawzone.Record(TOPIC, 0, o, 1_709_280_000_000 + o, "x", {"o": o})
        for o in range(10)
    }
    (folder / "chunk-0001.ndjson").write_text(
        "".join(records[o].line() + "\n" for o in range(10) if o not in (4, 5))
    )
    raw_dir = tmp_path / "raw"
    summary = import_raw(first, raw_dir, MIB)
    (report,) = summary.partitions
    assert (report.lowest, report.highest, report.missing, report.files) == (0, 9, 2, 2)
    assert sorted((n.first_offset, n.last_offset) for n in listing.topic_files(raw_dir, TOPIC)) == [
        (0, 3),
        (6, 9),
    ]

    (later / TOPIC / "2024-03-01").mkdir(parents=True)
    (later / TOPIC / "2024-03-01" / "chunk-0001.ndjson").write_text(
        "".join(records[o].line() + "\n" for o in range(10))
    )
    again = import_raw(later, raw_dir, MIB)
    assert (again.written, again.already_stored) == (2, 8)
    offsets = sorted(parsed["kafka"]["offset"] for _, parsed, _ in imported_lines(raw_dir))
    assert offsets == list(range(10))


def test_a_repeated_offset_with_another_record_is_set_aside(tmp_path: Path) -> None:
    folder = tmp_path / "seed" / TOPIC / "2024-03-01"
    folder.mkdir(parents=True)
    first = original_rawzone.Record(TOPIC, 0, 0, 1_709_280_000_000, "x", {"n": 1})
    other = original_rawzone.Record(TOPIC, 0, 0, 1_709_280_000_000, "x", {"n": 2})
    (folder / "chunk-0001.ndjson").write_text(first.line() + "\n" + other.line() + "\n")
    raw_dir = tmp_path / "raw"
    summary = import_raw(tmp_path / "seed", raw_dir, MIB)
    assert summary.set_aside == Counter({CONFLICTING_COPY: 1})
    (entry,) = [
        orjson.loads(x) for x in import_log.quarantine_path(raw_dir).read_bytes().splitlines()
    ]
    assert (entry["line"], entry["offset"], entry["raw"]) == (2, 0, other.line())
    assert [raw for *_, raw in imported_lines(raw_dir)] == [first.line().encode()]


def test_records_of_another_cluster_under_the_same_name_stop_the_import(tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    # weatherpipe consumed a topic of the same name from another cluster: offsets 0..9.
    write_file(
        raw_dir,
        TOPIC,
        [Record(0, o, event("Elsewhere", "2024-03-01 10:00:00", 1, 2, 3, 4)) for o in range(10)],
    )
    before = tree_digest(raw_dir)
    source = original_rawzone.write(tmp_path / "seed", per_partition=50, crashes=0)
    with pytest.raises(RawImportConflictError, match=r"partition 0 offset 0.*Nothing was written"):
        import_raw(source.root, raw_dir, MIB)
    assert {k: v for k, v in tree_digest(raw_dir).items() if not k.startswith(".import")} == before


def test_the_same_records_consumed_before_are_recognised(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed", per_partition=50, crashes=0)
    raw_dir = tmp_path / "raw"
    # weatherpipe consumed offsets 0..19 of partition 0 from the same topic (compact JSON).
    consumed = sorted(
        (r for k, r in source.records.items() if k[1] == 0 and k[2] < 20), key=lambda r: r.offset
    )
    path = write_file(
        raw_dir, TOPIC, [Record(0, r.offset, r.value, r.timestamp_ms or 0, r.key) for r in consumed]
    )
    path.write_bytes(
        b"".join(
            json.dumps(json.loads(x), separators=(",", ":")).encode() + b"\n"
            for x in path.read_bytes().splitlines()
        )
    )
    summary = import_raw(source.root, raw_dir, MIB)
    assert summary.already_stored == 20
    assert summary.written == len(source.records) - 20


def test_an_interrupted_imports_temp_files_are_removed_and_the_consumers_kept(
    tmp_path: Path,
) -> None:
    source = original_rawzone.write(tmp_path / "seed", per_partition=30, crashes=0)
    raw_dir = tmp_path / "raw"
    temp = naming.temp_dir(raw_dir)
    temp.mkdir(parents=True)
    ours = temp / naming.temp_name(TOPIC, 0, 0, "import-123-abcdef01")
    consumers = temp / naming.temp_name(TOPIC, 1, 0, "456-abcdef01")
    ours.write_bytes(b'{"half')
    consumers.write_bytes(b'{"half')
    import_raw(source.root, raw_dir, MIB)
    assert not ours.exists()
    assert consumers.exists()


def test_a_folder_without_the_layout_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "topic" / "date=2024-03-01").mkdir(parents=True)
    (tmp_path / "topic" / "date=2024-03-01" / "x.ndjson").write_text("{}\n")
    (tmp_path / "loose.ndjson").write_text("{}\n")
    with pytest.raises(
        NothingToImportError, match=r"<topic>/<YYYY-MM-DD>/chunk-NNNN\.ndjson.*1 other"
    ):
        import_raw(tmp_path, tmp_path / "raw", MIB)
    with pytest.raises(NothingToImportError, match="is not a folder"):
        import_raw(tmp_path / "missing", tmp_path / "raw", MIB)


def test_chunks_are_read_in_written_order(tmp_path: Path) -> None:
    for rel in (
        "b/2024-03-02/chunk-0001.ndjson",
        "a/2024-03-02/chunk-0010.ndjson",
        "a/2024-03-02/chunk-0009.ndjson",
        "a/2024-03-01/chunk-0002.ndjson",
        "a/2024-02-30/chunk-0001.ndjson",  # no such date
        "a/2024-03-01/notes.ndjson",
        "a/date=2024-03-01/a+00000+00000000000000000000+00000000000000000001.ndjson",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = find_chunks(tmp_path)
    assert [str(c.path.relative_to(tmp_path)) for c in found.chunks] == [
        "a/2024-03-01/chunk-0002.ndjson",
        "a/2024-03-02/chunk-0009.ndjson",
        "a/2024-03-02/chunk-0010.ndjson",
        "b/2024-03-02/chunk-0001.ndjson",
    ]
    assert sorted(str(p.relative_to(tmp_path)) for p in found.others) == [
        "a/2024-02-30/chunk-0001.ndjson",
        "a/2024-03-01/notes.ndjson",
    ]


def test_a_line_goes_to_the_topic_it_names(tmp_path: Path) -> None:
    folder = tmp_path / "seed" / TOPIC / "2024-03-01"
    folder.mkdir(parents=True)
    ours = [
        original_rawzone.Record(TOPIC, 1, o, 1_709_280_000_000, "x", {"o": o}) for o in range(3)
    ]
    other = original_rawzone.Record("other_topic", 1, 0, 1_709_280_000_000, "x", {"o": 9})
    lines = [r.line() for r in ours]
    lines.insert(1, other.line())
    (folder / "chunk-0001.ndjson").write_text("".join(x + "\n" for x in lines))
    raw_dir = tmp_path / "raw"
    summary = import_raw(tmp_path / "seed", raw_dir, MIB)
    assert [(p.topic, p.partition, p.written) for p in summary.partitions] == [
        ("other_topic", 1, 1),
        (TOPIC, 1, 3),
    ]
    (name,) = listing.topic_files(raw_dir, "other_topic")
    assert (name.first_offset, name.last_offset) == (0, 0)
    assert name.location(raw_dir).read_text() == other.line() + "\n"


def test_an_import_into_the_originals_own_folder_leaves_its_files_alone(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "raw", per_partition=80)
    before = tree_digest(source.root)
    first = import_raw(source.root, source.root, MIB)
    assert first.written == len(source.records) and first.other_files == 0
    after = tree_digest(source.root)
    assert {k: v for k, v in after.items() if k in before} == before
    again = import_raw(source.root, source.root, MIB)
    assert (again.written, again.other_files) == (0, 0)


def test_a_second_import_into_the_same_raw_zone_waits_its_turn(tmp_path: Path) -> None:
    source = original_rawzone.write(tmp_path / "seed", per_partition=30, crashes=0)
    raw_dir = tmp_path / "raw"
    with import_log.exclusive(raw_dir), pytest.raises(ImportBusyError, match="run this one again"):
        import_raw(source.root, raw_dir, MIB)
    assert import_raw(source.root, raw_dir, MIB).written == len(source.records)
