"""The consume summary's figures: the rate over the time records arrived, the wall time apart."""

from __future__ import annotations

from weatherpipe.rawzone.consume_loop import ConsumeStats
from weatherpipe.rawzone.sink import SinkStats


def test_the_rate_counts_from_the_first_record_to_the_last() -> None:
    # Joined after 2 s, records from 3 s to 5.5 s, idle until 14 s.
    stats = ConsumeStats(
        SinkStats(messages=1_000_000),
        started=100.0,
        assigned_at=102.0,
        first_record_at=103.0,
        last_record_at=105.5,
        finished=114.0,
    )
    assert stats.consuming_seconds == 2.5
    assert stats.rate == 400_000
    assert stats.seconds == 14.0
    figures = stats.as_dict()
    assert (figures["seconds"], figures["consuming_seconds"]) == (14.0, 2.5)
    assert figures["messages_per_second"] == 400_000


def test_no_record_or_one_batch_has_no_rate() -> None:
    assert ConsumeStats(SinkStats(), started=0.0, finished=3.0).rate == 0.0
    one_batch = ConsumeStats(
        SinkStats(messages=10), started=0.0, first_record_at=1.0, last_record_at=1.0
    )
    assert (one_batch.consuming_seconds, one_batch.rate) == (0.0, 0.0)
