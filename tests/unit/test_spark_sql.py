"""The Spark SQL rendering of the shared rules, checked without starting Spark: literals survive
Spark's backslash escapes, the timestamp format maps to Java's, every rule is rendered, and the
numeric-text pattern accepts what DuckDB's cast accepts (DuckDB is the reference here)."""

from __future__ import annotations

import re

import duckdb
import pytest

from weatherpipe import rules as r
from weatherpipe.batch.spark_engine import raw_uri
from weatherpipe.batch.spark_sql import (
    NUMERIC_TEXT,
    SPECIAL_TEXT,
    Renderer,
    java_pattern,
    literal,
    variant_path,
)
from weatherpipe.events import TIMESTAMP_FORMAT


def test_literals_escape_what_spark_unescapes() -> None:
    assert literal("it's") == r"'it\'s'"
    assert literal("a\\b") == r"'a\\b'"
    assert literal(" \t\r\n") == r"' \t\r\n'"


def test_paths_and_formats() -> None:
    assert variant_path(("kafka", "topic")) == "$['kafka']['topic']"
    assert java_pattern(TIMESTAMP_FORMAT) == "yyyy-MM-dd HH:mm:ss"
    with pytest.raises(ValueError, match="%j"):
        java_pattern("%Y-%j")


def test_every_rule_is_rendered_in_order() -> None:
    q = Renderer()
    index = q.rule_index()
    assert index.count(" THEN ") == len(r.RULES)
    for rule in r.RULES:
        if isinstance(rule.predicate, r.OutOfRange):
            assert f"{rule.predicate.high!r}D" in index
    assert q.reason("x").count("'") == 2 * len(r.RULES)


@pytest.mark.parametrize(
    "text",
    [" 12.5 ", "1e3", "nan", "-Inf", "infinity", "0x10", "1_000", "_1", "1_", "1__0", "1._5",
     "1.5_0", "1e1_0", "+5", ".5", "5.", "1.e5", ".e5", "1.5d", "", "abc", "1,5", "-", ".",
     "\t5\n", "5 5", "infinite", "1e", "\u00a05"],
)  # fmt: skip
def test_numeric_text_matches_duckdb_cast(text: str) -> None:
    spark_accepts = bool(re.search(NUMERIC_TEXT.replace(r"\z", r"\Z"), text)) or bool(
        re.search(SPECIAL_TEXT.replace(r"\z", r"\Z"), text)
    )
    duck = duckdb.execute("SELECT TRY_CAST(? AS DOUBLE)", [text]).fetchone()
    assert spark_accepts == (duck is not None and duck[0] is not None)


def test_raw_zone_uris() -> None:
    assert raw_uri("s3a://bucket/raw/") == "s3a://bucket/raw"
    assert raw_uri("/data/raw+1") == "file:///data/raw+1"
