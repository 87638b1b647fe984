"""The raw-zone writer's group identity: stable per host, raw zone, topic and slot, and a slot
held by one living process at a time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weatherpipe.errors import TerminalError
from weatherpipe.rawzone import membership
from weatherpipe.rawzone.membership import claim_slot, instance_id, lock_path

TOPIC = "weather_data_raw"


def test_the_identity_is_stable_and_differs_by_raw_zone_topic_slot_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw"
    same = instance_id(raw, TOPIC, 0)
    assert same == instance_id(Path("raw"), TOPIC, 0)  # a relative RAW_DIR is the same folder
    assert same.startswith(socket.gethostname() + "-")
    assert same.endswith("-0")
    others = {
        instance_id(tmp_path / "other", TOPIC, 0),
        instance_id(raw, "other_topic", 0),
        instance_id(raw, TOPIC, 1),
        instance_id(raw, TOPIC, 0, "edge-7"),
    }
    assert same not in others and len(others) == 4
    assert instance_id(raw, TOPIC, 0, "edge-7").startswith("edge-7-")


def test_writers_of_one_raw_zone_take_different_slots_and_free_them(tmp_path: Path) -> None:
    with claim_slot(tmp_path, TOPIC) as first, claim_slot(tmp_path, TOPIC) as second:
        assert (first.slot, second.slot) == (0, 1)
        assert first.instance_id != second.instance_id
        assert first.lock_path.read_text() == f"{os.getpid()}\n"
        # Another topic in the same folder has slots of its own.
        with claim_slot(tmp_path, "other") as other:
            assert other.slot == 0
    with claim_slot(tmp_path, TOPIC) as again:
        assert again == first


def test_a_killed_holder_leaves_its_slot_to_the_next_start(tmp_path: Path) -> None:
    hold = (
        "import sys, time; from pathlib import Path\n"
        "from weatherpipe.rawzone.membership import claim_slot\n"
        "with claim_slot(Path(sys.argv[1]), sys.argv[2]):\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path), TOPIC])
    try:
        path = lock_path(tmp_path, TOPIC, 0)
        deadline = time.monotonic() + 30
        while not (path.exists() and path.read_text() == f"{holder.pid}\n"):
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with claim_slot(tmp_path, TOPIC) as taken:
            assert taken.slot == 1  # slot 0 is the living holder's
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with claim_slot(tmp_path, TOPIC) as taken:
        assert taken.slot == 0  # the kernel dropped the dead holder's lock


def test_every_slot_taken_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership, "MAX_SLOTS", 2)
    with (
        claim_slot(tmp_path, TOPIC),
        claim_slot(tmp_path, TOPIC),
        pytest.raises(TerminalError, match="2 consumers of 'weather_data_raw'"),
        claim_slot(tmp_path, TOPIC),
    ):
        pass


def test_a_raw_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with (
        pytest.raises(TerminalError, match="RAW_DIR must be a writable folder"),
        claim_slot(blocker / "raw", TOPIC),
    ):
        pass
