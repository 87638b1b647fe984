"""A raw line's envelope, judged with the shared rules: the import's verdict agrees with the
DuckDB engine's on every kind of envelope, and the typed block read never accepts a line the
exact reading refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.samples import EVENT
from weatherpipe import rules as r
from weatherpipe.batch.duckdb_engine import DuckDBEngine
from weatherpipe.events import Reason
from weatherpipe.rawzone.envelope import (
    BAD_TOPIC_NAME,
    ENVELOPE_RULES,
    Envelope,
    Refusal,
    judge,
    judge_block,
)
from weatherpipe.rawzone.listing import list_files

VALUE = EVENT
STAMP = 1_709_301_909_000  # 2024-03-01 14:05:09 UTC
DAY = STAMP // 86_400_000


def kafka_line(offset_text: str, *, partition: str = "0", topic: str = '"t"', **extra: Any) -> str:
    """A line whose envelope's JSON is written out as given."""
    rest = "".join(f', "{k}": {json.dumps(v)}' for k, v in extra.items())
    return (
        f'{{"kafka": {{"topic": {topic}, "partition": {partition}, "offset": {offset_text}, '
        f'"timestamp_ms": {STAMP}, "key": "Chicago"}}, "value": {json.dumps(VALUE)}{rest}}}'
    )


# Each case with a good envelope gets its own offset (the line's number), so the engine counts
# every one once.
CASES: list[str] = [
    kafka_line("{n}"),
    kafka_line("{n}", partition="2"),
    kafka_line("{n}").replace(": ", " :  ").replace(", ", " ,\t"),  # spaced otherwise
    kafka_line("{n}", value_error="invalid_json"),  # envelope fine; the value is the batch's
    kafka_line("-1"),
    kafka_line('"5"'),
    kafka_line("5.0"),
    kafka_line("1e3"),
    kafka_line("-0"),
    kafka_line("9223372036854775808"),
    kafka_line("{n}", partition="-0"),
    kafka_line("{n}", partition="true"),
    kafka_line("{n}", partition="null"),
    kafka_line("{n}", partition='"0"'),
    kafka_line("{n}", topic="5"),
    kafka_line("{n}", topic="null"),
    kafka_line("{n}", topic='["t"]'),
    json.dumps({"kafka": {"topic": "t", "offset": 1}, "value": VALUE}),
    json.dumps({"kafka": 5, "value": VALUE}),
    json.dumps({"kafka": [], "value": VALUE}),
    json.dumps({"value": VALUE}),
    "not json",
    "[1, 2]",
    "null",
    '"a string"',
    '{"kafka": {"topic": "t", "partition": 0, "off',
]


def numbered(cases: list[str]) -> list[str]:
    return [text.replace("{n}", str(n)) for n, text in enumerate(cases)]


def is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def engine_verdicts(lines: list[str], tmp: Path) -> list[tuple[str | None, str | None]]:
    """The DuckDB engine's (reason, field) for each line of one raw file."""
    folder = tmp / "t" / "date=2024-03-01"
    folder.mkdir(parents=True)
    name = f"t+00000+{0:020d}+{10**18:020d}.ndjson"
    (folder / name).write_text("".join(x + "\n" for x in lines))
    verdicts: list[tuple[str | None, str | None]] = [(None, None)] * len(lines)
    for q in DuckDBEngine(threads=1).aggregate(tmp, list_files(tmp), []).rejected:
        verdicts[q.line - 1] = (q.reason, q.field)
    return verdicts


def test_the_envelope_rules_are_the_first_of_the_shared_list() -> None:
    # The first rule that fails gives the reason: a line refused for its envelope is refused
    # for the same reason by the batch only if no value rule comes before the envelope's.
    assert r.RULES[: len(ENVELOPE_RULES)] == ENVELOPE_RULES
    assert {rule.predicate.path for rule in ENVELOPE_RULES} == {
        r.LINE,
        r.TOPIC,
        r.PARTITION,
        r.OFFSET,
    }


def test_the_import_refuses_exactly_the_lines_the_batch_refuses_for_their_envelope(
    tmp_path: Path,
) -> None:
    lines = numbered(CASES)
    envelope_reasons = {(rule.reason, rule.field) for rule in ENVELOPE_RULES}
    ours = [judge(text.encode()) for text in lines]
    theirs = engine_verdicts(lines, tmp_path)
    for text, mine, engine in zip(lines, ours, theirs, strict=True):
        # A value the consumer marked is refused as invalid_json too, but by a value rule.
        if engine in envelope_reasons and not (is_object(text) and engine[1] is None):
            assert mine == Refusal(*engine), text
        else:
            assert isinstance(mine, Envelope), (text, mine, engine)
    # Every envelope rule is exercised.
    assert {v for v in theirs if v in envelope_reasons} == envelope_reasons


def test_a_good_envelope_gives_its_coordinates_and_day() -> None:
    assert judge(kafka_line("17", partition="4").encode()) == Envelope("t", 4, 17, DAY)
    no_stamp = json.dumps({"kafka": {"topic": "t", "partition": 1, "offset": 2}, "value": 1})
    assert judge(no_stamp.encode()) == Envelope("t", 1, 2, None)
    text_stamp = json.dumps(
        {"kafka": {"topic": "t", "partition": 1, "offset": 2, "timestamp_ms": "x"}}
    )
    assert judge(text_stamp.encode()) == Envelope("t", 1, 2, None)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (kafka_line("1", topic='"a/b"'), Refusal(BAD_TOPIC_NAME, "kafka.topic")),
        (kafka_line("1", topic='"../x"'), Refusal(BAD_TOPIC_NAME, "kafka.topic")),
        (kafka_line("1", topic='""'), Refusal(BAD_TOPIC_NAME, "kafka.topic")),
        (kafka_line("1", partition="100000"), Refusal(Reason.OUT_OF_RANGE, "kafka.partition")),
    ],
)
def test_what_a_file_name_cannot_hold_is_refused(text: str, refusal: Refusal) -> None:
    assert judge(text.encode()) == refusal


def test_a_line_that_is_not_utf8_is_refused() -> None:
    assert judge(b'{"kafka": {"topic": "\xff"}}') == Refusal(Reason.NOT_UTF8, None)


def test_the_block_read_accepts_only_blocks_the_exact_reading_accepts_whole() -> None:
    good = [kafka_line(str(n), partition=str(n % 3)).encode() for n in range(50)]
    block = judge_block(good)
    assert block is not None
    exact = [judge(line) for line in good]
    columns = zip(block.topics, block.partitions, block.offsets, block.days, strict=True)
    assert [Envelope(t, p, o, None if d < 0 else d) for t, p, o, d in columns] == exact
    for bad in numbered(CASES):
        if not isinstance(judge(bad.encode()), Envelope):
            assert judge_block([*good, bad.encode()]) is None, bad
    # Two records run together on one line are not two lines.
    assert judge_block([good[0] + b"," + good[1]]) is None
    # -0 is the integer 0 to both readings (as to DuckDB's).
    minus_zero = kafka_line("-0", partition="-0").encode()
    assert judge(minus_zero) == Envelope("t", 0, 0, DAY)
    block = judge_block([minus_zero])
    assert block is not None and (block.partitions, block.offsets) == ([0], [0])
