"""The one durable-file helper: a replace is all or nothing, a create-once file has one
content even when two processes race for it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from weatherpipe.durable import create_once, remove, replacing, write_atomically


def test_a_replace_that_fails_leaves_the_old_content_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomically(path, "old\n")
    with pytest.raises(RuntimeError), replacing(path) as out:
        out.write(b"half of the new")
        raise RuntimeError("crash in the middle")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_replace_that_succeeds_has_the_new_content(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "state.json"
    write_atomically(path, "one\n")
    write_atomically(path, "two\n")
    assert path.read_text() == "two\n"
    remove(path)
    remove(path)  # gone already: nothing to do
    assert not path.exists()


def test_create_once_keeps_the_first_content_private(tmp_path: Path) -> None:
    path = tmp_path / "secret.password"
    assert create_once(path, "first") == "first"
    assert create_once(path, "second") == "first"
    assert path.stat().st_mode & 0o777 == 0o600


def _create(path: str, text: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    Path(f"{path}.{text}").write_text(create_once(Path(path), text))


def test_processes_racing_for_one_file_all_get_the_winners_content(tmp_path: Path) -> None:
    path = tmp_path / "secret.password"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    racers = [context.Process(target=_create, args=(str(path), f"p{i}", start)) for i in range(4)]
    for racer in racers:
        racer.start()
    start.set()
    for racer in racers:
        racer.join(60)
    stored = path.read_text().strip()
    seen = {(tmp_path / f"secret.password.p{i}").read_text().strip() for i in range(4)}
    assert seen == {stored}
