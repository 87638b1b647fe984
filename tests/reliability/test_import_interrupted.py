"""`weatherpipe import-raw` killed (SIGKILL) or stopped (Ctrl-C) while it writes, then run
again: the raw zone holds every record of the source exactly once. Needs no service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests import original_rawzone
from weatherpipe.rawzone import listing, naming

pytestmark = pytest.mark.reliability

TOPIC = original_rawzone.TOPIC


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> original_rawzone.OriginalZone:
    # 3 x 15,000 records 7 minutes apart: some 70 days, so about 210 files to write.
    root = tmp_path_factory.mktemp("seed")
    return original_rawzone.write(root, per_partition=15_000, lines_per_chunk=5_000, crashes=3)


def start(source: Path, raw_dir: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAW_DIR", "RAW_ROOT")}
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "import-raw", str(source)],
        env={**env, "RAW_DIR": str(raw_dir)},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def published(raw_dir: Path) -> list[Path]:
    return [raw.location(raw_dir) for raw in listing.topic_files(raw_dir, TOPIC)]


def wait_for_files(process: subprocess.Popen[str], raw_dir: Path, count: int) -> None:
    deadline = time.monotonic() + 240
    while len(published(raw_dir)) < count:
        assert process.poll() is None, "the import finished before it could be interrupted"
        assert time.monotonic() < deadline, "no file was published in time"
        time.sleep(0.005)


def records(raw_dir: Path) -> Counter[tuple[str, int, int]]:
    found: Counter[tuple[str, int, int]] = Counter()
    for path in published(raw_dir):
        for line in path.read_bytes().splitlines():
            kafka = orjson.loads(line)["kafka"]
            found[(kafka["topic"], kafka["partition"], kafka["offset"])] += 1
    return found


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_import_run_again_holds_each_record_once(
    source: original_rawzone.OriginalZone, tmp_path: Path, how: signal.Signals
) -> None:
    raw_dir = tmp_path / "raw"
    process = start(source.root, raw_dir, tmp_path)
    wait_for_files(process, raw_dir, 5)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr
        assert "run the same command again" in stderr
    interrupted = records(raw_dir)
    assert 0 < len(interrupted) < len(source.records)
    assert max(interrupted.values()) == 1

    rerun = start(source.root, raw_dir, tmp_path)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    final = records(raw_dir)
    assert final.keys() == source.records.keys()
    assert set(final.values()) == {1}
    # Nothing of the interrupted run is left over, and nothing was written twice.
    assert not list(naming.temp_dir(raw_dir).iterdir())
    summary = " ".join(stderr.split())
    written = len(source.records) - sum(interrupted.values())
    assert f"imported {written:,} records" in summary
