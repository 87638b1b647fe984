"""What the raw zone lacks: from where a consumer would resume up to each end offset."""

from __future__ import annotations

from weatherpipe.rawzone.lag import Gap, gaps


def test_a_partition_with_files_lacks_what_lies_after_its_highest_stored_offset() -> None:
    assert gaps({0: (0, 1000), 1: (0, 500)}, stored={0: 899, 1: 499}, committed={}) == [
        Gap(0, 900, 1000)
    ]


def test_without_files_the_group_offset_applies_and_without_it_the_first_offset() -> None:
    found = gaps({0: (0, 300), 1: (20, 300), 2: (0, 300)}, stored={}, committed={0: 300, 2: 250})
    assert found == [Gap(1, 20, 300), Gap(2, 250, 300)]
    assert [gap.records for gap in found] == [280, 50]


def test_files_win_over_the_group_offset() -> None:
    # A rewound group offset does not make stored records count as missing, nor does one
    # ahead of the files hide missing ones.
    assert gaps({0: (0, 100)}, stored={0: 99}, committed={0: 0}) == []
    assert gaps({0: (0, 100)}, stored={0: 49}, committed={0: 100}) == [Gap(0, 50, 100)]


def test_records_the_topic_no_longer_holds_do_not_count() -> None:
    assert gaps({0: (500, 800)}, stored={0: 99}, committed={}) == [Gap(0, 500, 800)]
    assert gaps({0: (800, 800)}, stored={0: 99}, committed={}) == []


def test_an_empty_or_fully_stored_topic_lacks_nothing() -> None:
    assert gaps({0: (0, 0), 1: (0, 0)}, stored={}, committed={}) == []
    assert gaps({}, stored={0: 5}, committed={}) == []


def test_a_gap_names_its_offsets_count_and_holder() -> None:
    gap = Gap(2, 1000, 1500)
    assert gap.describe("host-ab12-0 at 10.0.0.7") == (
        "partition 2: up to 500 records (offsets 1000-1499), held by host-ab12-0 at 10.0.0.7"
    )
    assert gap.describe(None).endswith("held by no member")
