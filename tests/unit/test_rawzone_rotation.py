"""Rotation rules: date, size (ROTATE_MB), age (ROTATE_SECONDS), and their counter."""

from __future__ import annotations

import pytest

from weatherpipe.rawzone.rotation import RotationCounter, RotationPolicy, RotationReason


def test_rotate_mb_is_mebibytes() -> None:
    assert RotationPolicy.from_limits(32, 300).max_bytes == 32 * 1024 * 1024
    assert RotationPolicy.from_limits(0.5, 1).max_bytes == 512 * 1024


@pytest.mark.parametrize(("mb", "seconds"), [(0, 1), (-1, 1), (1, 0)])
def test_limits_must_be_positive(mb: float, seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RotationPolicy.from_limits(mb, seconds)


def test_date_change_rotates() -> None:
    policy = RotationPolicy(1000, 60)
    assert policy.date_changed(19_783, 19_784)
    assert policy.date_changed(19_784, 19_783)  # a late record of the day before, too
    assert not policy.date_changed(19_783, 19_783)


def test_size_rotates_once_the_file_passes_the_limit() -> None:
    policy = RotationPolicy(1000, 60)
    assert policy.due(999, opened_at=0, now=1) is None
    assert policy.due(1000, opened_at=0, now=1) is RotationReason.SIZE
    assert policy.due(5000, opened_at=0, now=1) is RotationReason.SIZE


def test_age_rotates_an_old_file() -> None:
    policy = RotationPolicy(1000, 60)
    assert policy.due(10, opened_at=100, now=159.9) is None
    assert policy.due(10, opened_at=100, now=160) is RotationReason.AGE
    assert policy.expired(100, 1000) and not policy.expired(100, 100)


def test_size_wins_over_age() -> None:
    assert RotationPolicy(1000, 60).due(2000, opened_at=0, now=100) is RotationReason.SIZE


def test_counter_counts_each_reason() -> None:
    counter = RotationCounter()
    for reason in (RotationReason.SIZE, RotationReason.SIZE, RotationReason.DATE):
        counter.add(reason)
    counter.add(RotationReason.SHUTDOWN)
    assert counter.total == 4
    assert counter.as_dict() == {"date": 1, "size": 2, "age": 0, "shutdown": 1, "revoke": 0}
