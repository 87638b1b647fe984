"""The rotation policy's limits and the counter of reasons; the rules applied to real records
(date, size, age, shutdown, revoke) are tested on the sink in test_rawzone_sink.py."""

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


def test_age_limit() -> None:
    policy = RotationPolicy(1000, 60)
    assert not policy.expired(opened_at=100, now=159.9)
    assert policy.expired(opened_at=100, now=160)
    assert policy.expired(opened_at=100, now=1000)


def test_counter_counts_each_reason() -> None:
    counter = RotationCounter()
    for reason in (RotationReason.SIZE, RotationReason.SIZE, RotationReason.DATE):
        counter.add(reason)
    counter.add(RotationReason.SHUTDOWN)
    assert counter.total == 4
    assert counter.as_dict() == {"date": 1, "size": 2, "age": 0, "shutdown": 1, "revoke": 0}
