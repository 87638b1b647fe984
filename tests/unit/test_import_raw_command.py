"""`weatherpipe import-raw` as a user runs it: a summary on success, and for what can go wrong a
message that says what to do, exit status 1 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests import original_rawzone


def run(source: Path, raw_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAW_DIR", "RAW_ROOT")}
    done = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "import-raw", str(source), *args],
        env={**env, "RAW_ROOT": str(raw_dir)},
        cwd=raw_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    done.stderr = " ".join(done.stderr.split())  # however the terminal wraps it
    return done


def test_the_summary_and_the_json(tmp_path: Path) -> None:
    zone = original_rawzone.write(tmp_path / "seed", per_partition=150)
    done = run(zone.root, tmp_path / "raw", "--json")
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["written"] == len(zone.records)
    assert summary["repeats"] == zone.repeated_lines
    assert summary["set_aside"] == {"invalid_json": 1, "truncated_line": len(zone.truncated)}
    assert f"imported {len(zone.records):,} records" in done.stderr
    (path, line) = zone.truncated[0]
    assert f"{path}:{line}:truncated_line" in "".join(done.stderr.split())
    assert "`weatherpipe consume` resumes at 150" in done.stderr
    assert "next: `weatherpipe batch`" in done.stderr


def test_a_folder_without_chunks_says_which_layout_it_expects(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    done = run(tmp_path, tmp_path / "raw")
    assert done.returncode == 1
    assert "<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson" in done.stderr
    assert "RAW_ROOT pointed at" in done.stderr
    assert "Traceback" not in done.stderr
    missing = run(tmp_path / "nowhere", tmp_path / "raw")
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_an_unreadable_chunk_stops_before_anything_is_written(tmp_path: Path) -> None:
    zone = original_rawzone.write(tmp_path / "seed", per_partition=30, crashes=0)
    dangling = zone.root / original_rawzone.TOPIC / "2024-03-01" / "chunk-0099.ndjson"
    dangling.symlink_to(tmp_path / "gone.ndjson")
    done = run(zone.root, tmp_path / "raw")
    assert done.returncode == 1
    # Long paths may be broken anywhere by the terminal's width.
    assert f"Cannotread{dangling}:" in "".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "raw").rglob("*.ndjson"))


def test_a_raw_zone_that_cannot_be_written_says_what_to_do(tmp_path: Path) -> None:
    zone = original_rawzone.write(tmp_path / "seed", per_partition=30, crashes=0)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / ".tmp").write_text("a file where the temp folder belongs")
    done = run(zone.root, raw)
    assert done.returncode == 1
    assert f"Cannotwriteintotherawzone{raw}:" in "".join(done.stderr.split())
    assert "run the same command again" in done.stderr
    assert "Traceback" not in done.stderr
