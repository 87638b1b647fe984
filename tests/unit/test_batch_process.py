"""The lab's batch process: what goes wrong in the child reaches the parent as it was, and a
child never told to go ends when stopped. No PostgreSQL here: its address is a closed port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port
from weatherpipe.errors import TransientError
from weatherpipe.flows.batch_process import BatchProcess
from weatherpipe.settings import Settings, load_settings


def unreachable(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nothing",
        raw_dir=tmp_path / "raw",
        log_level="INFO",
    )


def test_an_error_of_the_batch_reaches_the_parent_as_it_was(tmp_path: Path) -> None:
    steps: list[str] = []
    with BatchProcess(unreachable(tmp_path)) as batch, pytest.raises(TransientError) as raised:
        batch.run(steps.append)
    # Not the error of a child that ended without a word (a TransientError too).
    assert type(raised.value) is TransientError
    assert str(raised.value).startswith("Cannot reach PostgreSQL")
    assert "DATABASE_URL" in str(raised.value)
    assert steps == ["preparing the database"]


def test_a_batch_process_never_told_to_go_ends_when_stopped(tmp_path: Path) -> None:
    batch = BatchProcess(unreachable(tmp_path))
    with batch:
        assert batch.alive
    assert not batch.alive
