"""The reconciliation line: every CSV row followed from the topic to the raw zone to PostgreSQL,
with each step's counts checked against the next.

    CSV rows = topic records + dead letters
    topic records = raw-zone lines (+ what the raw-zone consumer has not stored yet)
    raw-zone lines = lines the batch processed (+ lines of files it has not processed yet)
    lines processed (of every topic) = quarantined + observations + duplicates

Counts are offsets and file names, hardly a read of the data: a topic's records are the sum of
its partitions' end offsets (records ever written, so retention does not count as a loss),
and a raw file holds one line per offset of the range in its name. The producer writes in
transactions, whose markers take offsets as well: inside a raw file's range they count on both
sides, and the offsets no raw file covers (`uncovered`) are read back to take out those that
hold no record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum


class Check(Enum):
    """How two neighbouring counts compare."""

    AGREE = "agree"
    PENDING = "pending"
    """The later stage is behind but catching up (records in flight, files not processed)."""
    DISAGREE = "disagree"
    UNKNOWN = "unknown"
    """A source did not answer, so the step cannot be checked."""


@dataclass(frozen=True)
class Counts:
    """What each stage holds; None where its source did not answer."""

    csv_rows: int | None
    csv_rows_recorded: bool
    """Whether `csv_rows` is the producer's own count (else: topic records + dead letters)."""
    topic_records: int | None
    dead_letters: int | None
    consumer_lag: int | None
    raw_lines: int
    raw_lines_unprocessed: int
    processed_lines: int | None
    """Lines of this topic's raw files the batch processed."""
    processed_files_gone: int | None
    lines_all_topics: int | None
    """Lines the batch processed of every topic: what the quarantine, the observations and the
    duplicates add up to (the daily table keeps no topic)."""
    quarantined: int | None
    observations: int | None
    duplicates: int | None


@dataclass(frozen=True)
class Step:
    """One link of the line: its name, its check and what explains a gap."""

    name: str
    check: Check
    note: str


def csv_rows(topic_records: int | None, dead_letters: int | None) -> tuple[int | None, bool]:
    """The CSV rows sent to the topic so far, and whether the producer counted them itself.

    The producer keeps no count of the rows it has sent across its runs, so every row is taken
    to be a topic record or a dead letter (it sends each to exactly one of them, and a run that
    does not finish is resumed, never left half sent). A count the producer records for each
    finished run belongs here: its sum makes the first step a real check."""
    if topic_records is None or dead_letters is None:
        return None, False
    return topic_records + dead_letters, False


def uncovered(
    offsets: Mapping[int, tuple[int, int]], files: Iterable[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """The offsets of the topic no raw file covers, as (partition, first, end) spans.

    `offsets`: partition -> (first offset the topic holds, end offset); `files`: the raw files'
    (partition, first offset, last offset)."""
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for partition, first, last in files:
        by_partition.setdefault(partition, []).append((first, last))
    spans = []
    for partition, (start, end) in sorted(offsets.items()):
        at = start
        for first, last in sorted(by_partition.get(partition, [])):
            if first > at:
                spans.append((partition, at, min(first, end)))
            at = max(at, last + 1)
        if at < end:
            spans.append((partition, at, end))
    return [s for s in spans if s[1] < s[2]]


def _files(count: int) -> str:
    return f"{count:,} file{'' if count == 1 else 's'}"


def _known(*values: int | None) -> bool:
    return all(v is not None for v in values)


def steps(c: Counts) -> list[Step]:
    """The checks from CSV to PostgreSQL, in order."""
    found: list[Step] = []
    name = "CSV rows → topic records + dead letters"
    if not _known(c.csv_rows, c.topic_records, c.dead_letters):
        found.append(Step(name, Check.UNKNOWN, "Kafka did not answer."))
    elif not c.csv_rows_recorded:
        found.append(Step(name, Check.AGREE, "The producer's rows are counted on the topics."))
    else:
        gap = c.csv_rows - c.topic_records - c.dead_letters  # type: ignore[operator]
        found.append(
            Step(name, Check.AGREE, "")
            if gap == 0
            else Step(name, Check.DISAGREE, f"{gap:+,} rows differ from what the topics hold.")
        )

    name = "topic records → raw-zone lines"
    if c.topic_records is None:
        found.append(Step(name, Check.UNKNOWN, "Kafka did not answer."))
    else:
        missing = c.topic_records - c.raw_lines
        if missing == 0:
            found.append(Step(name, Check.AGREE, ""))
        elif missing > 0 and c.consumer_lag:
            found.append(
                Step(
                    name,
                    Check.PENDING,
                    f"{missing:,} records are not in the raw zone yet; the consumer is "
                    f"{c.consumer_lag:,} behind.",
                )
            )
        elif missing > 0:
            found.append(
                Step(
                    name,
                    Check.DISAGREE,
                    f"{missing:,} records the consumer has committed are missing from the raw "
                    "zone.",
                )
            )
        else:
            found.append(
                Step(name, Check.DISAGREE, f"The raw zone holds {-missing:,} lines too many.")
            )

    name = "raw-zone lines → lines processed by the batch"
    if c.processed_lines is None or c.processed_files_gone is None:
        found.append(Step(name, Check.UNKNOWN, "PostgreSQL did not answer."))
    elif c.processed_files_gone:
        found.append(
            Step(
                name,
                Check.DISAGREE,
                f"{_files(c.processed_files_gone)} the batch processed "
                f"{'is' if c.processed_files_gone == 1 else 'are'} gone from the raw zone.",
            )
        )
    elif c.raw_lines_unprocessed:
        found.append(
            Step(
                name,
                Check.PENDING,
                f"{c.raw_lines_unprocessed:,} lines wait for the next batch run.",
            )
        )
    else:
        found.append(Step(name, Check.AGREE, ""))

    name = "lines processed (every topic) → quarantined + observations + duplicates"
    if not _known(c.lines_all_topics, c.quarantined, c.observations, c.duplicates):
        found.append(Step(name, Check.UNKNOWN, "PostgreSQL did not answer."))
    else:
        gap = c.lines_all_topics - c.quarantined - c.observations - c.duplicates  # type: ignore[operator]
        found.append(
            Step(name, Check.AGREE, "")
            if gap == 0
            else Step(
                name,
                Check.DISAGREE,
                f"{gap:+,} lines are neither quarantined, nor observations, nor duplicates.",
            )
        )
    return found


def verdict(found: list[Step]) -> Check:
    """The whole line's state: any disagreement wins, then unknown, then pending."""
    for state in (Check.DISAGREE, Check.UNKNOWN, Check.PENDING):
        if any(s.check is state for s in found):
            return state
    return Check.AGREE
