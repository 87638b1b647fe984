"""The typed read of the DuckDB engine: clean raw files validated and aggregated at close to the
speed of a bare `read_json ... GROUP BY`.

The exact read (`duckdb_sql.Renderer`) reads each field as JSON text and evaluates every rule,
so it can say which rule a line breaks. Most files break none, and for them that work is
wasted. This path reads the measures straight into DOUBLE and computes, per line, a condition
that implies "no rule fails" (`surely_valid`, rendered from the same rule list). A file is
taken from here only when every line of it passed and its offsets are unique and inside its
name's range; any other file goes to the exact read, which finds out why. A condition that is
sufficient rather than exact only ever sends a clean file to the exact read, never a bad record into
the sums.

Where DuckDB's typed reading is more lenient than the rules, the condition or the caller closes
the gap: a number read as VARCHAR looks like text, so a string field must not look like a
number, object, array or boolean; a JSON boolean read as DOUBLE becomes 1 or 0, so files that
contain the words true/false anywhere go to the exact read (`BOOLEAN_WORDS`); Kafka coordinates
are read as JSON so a string "5" is not taken for the integer 5.

Two kinds of rule are checked more cheaply than line by line (the per-line condition is most
of this path's cost): the Kafka coordinates are compared with the file's name (`NAMED`: its
topic and partition, its offset range, uniqueness), which is stronger than "a string" and "an
integer >= 0"; and the rules of an aggregation key (`KEYED`: the location) are checked once per
distinct value (`key_check_sql`), as a key has only a handful of values.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import assert_never

from weatherpipe import rules as r
from weatherpipe.batch.column_plan import ColumnPlan
from weatherpipe.batch.duckdb_sql import BLANKS, columns_literal, literal, struct_columns
from weatherpipe.events import character_class

BOOLEAN_WORDS = ("true", "false")
# Checked against the file's name by the caller (`lines_sql` and the per-file verdict).
NAMED = (r.TOPIC, r.PARTITION, r.OFFSET)
# Checked once per distinct value (`key_check_sql`) rather than on every line.
KEYED = (r.LOCATION,)
# A string field read as VARCHAR whose text starts like this could have been a number, an
# object or an array in the JSON: only a string that cannot is surely a string.
_NOT_STRING_STARTS = "-0123456789{["


class TypedRenderer(ColumnPlan):
    """SQL for the typed read of a rule list."""

    def __init__(self, rule_list: tuple[r.Rule, ...] = r.RULES) -> None:
        super().__init__(rule_list)
        self.kinds = {
            p: {type(x.predicate) for x in rule_list if x.predicate.path == p} for p in self.paths
        }

    def sql_type(self, path: r.Path) -> str:
        """How `read_json` reads `path`: the cheapest type that keeps what its rules check."""
        kinds = self.kinds[path]
        if r.NotInteger in kinds:
            return "JSON"  # whether an integer was written as one matters ("5", 5.0, 5)
        if kinds & {r.Equals, r.Present}:
            return "VARCHAR"  # only checked for being absent or null, which reads as NULL
        if path in self.number_paths:
            return "DOUBLE"
        return "VARCHAR"

    def read_json_columns(self) -> dict[str, str]:
        """The `columns` argument of `read_json`: objects as STRUCTs, leaves as `sql_type`."""
        return struct_columns(self, self.sql_type)

    def ref(self, path: r.Path) -> str:
        """The column of `path` in the projection `projection` makes."""
        return f"c{self.paths.index(path)}"

    def projection(self, alias: str) -> str:
        """One column per path, from the `read_json` row `alias` (JSON leaves as text)."""
        out = []
        for path in self.paths:
            ref = alias + "".join(f'."{k}"' for k in path)
            if self.is_parent(path):
                out.append(f"{ref} IS NOT NULL AS {self.ref(path)}")
            elif self.sql_type(path) == "JSON":
                out.append(f"{ref}::VARCHAR AS {self.ref(path)}")
            else:
                out.append(f"{ref} AS {self.ref(path)}")
        return ", ".join(out)

    def parsed(self) -> str:
        """The parsed timestamps (`ts_<column>`), from the columns of `projection`."""
        return ", ".join(
            f"try_strptime({self.ref(p.path)}, {literal(p.format)}) AS ts_{self.ref(p.path)}"
            for p in self._timestamps()
        )

    def _timestamps(self) -> list[r.NotTimestamp]:
        return [x.predicate for x in self.rules if isinstance(x.predicate, r.NotTimestamp)]

    def _parsed(self, path: r.Path) -> bool:
        """Whether `parsed` gives `path` a parsed timestamp column."""
        return any(p.path == path for p in self._timestamps())

    def surely_valid(self, *extra: str, lines_only: bool = False) -> str:
        """True only for a line no rule rejects and all `extra` conditions hold (never NULL).
        Sufficient, not exact: a clean line it cannot vouch for (a location with surrounding
        blanks, say) is false, and its file goes to the exact read. `lines_only`: without the
        rules of `NAMED` and `KEYED` paths, which the caller checks its cheaper way."""
        skip = (*NAMED, *KEYED) if lines_only else ()
        conditions = dict.fromkeys(
            c for x in self.rules if x.predicate.path not in skip for c in self._passes(x.predicate)
        )
        return "coalesce(" + " AND ".join([*conditions, *extra]) + ", false)"

    def key_check_sql(self, table: str) -> str:
        """The distinct values of each `KEYED` path in `table` (a column named for the path's
        last key) that no rule rejects; a line whose key is not among them is not vouched for.
        """
        (path,) = KEYED
        name = path[-1]
        conditions = dict.fromkeys(
            c
            for x in self.rules
            if x.predicate.path == path
            for c in self._passes(x.predicate, name)
        )
        return (
            f"SELECT {name} FROM (SELECT DISTINCT {name} FROM {table}) "
            f"WHERE coalesce({' AND '.join(conditions)}, false)"
        )

    @staticmethod
    def plain_text(text: str) -> bool:
        """Whether a VARCHAR column holding `text` must have been a JSON string: a number,
        object, array or boolean read as VARCHAR never looks like this."""
        return bool(text) and text[0] not in _NOT_STRING_STARTS and text not in BOOLEAN_WORDS

    def _bounded(self, path: r.Path) -> bool:
        """Whether a rule bounds `path` on both sides by finite numbers: `BETWEEN` those is
        false for NULL, NaN and the infinities, so no separate finiteness test is needed."""
        return any(
            isinstance(x.predicate, r.OutOfRange)
            and x.predicate.path == path
            and math.isfinite(x.predicate.low)
            and math.isfinite(x.predicate.high)
            for x in self.rules
        )

    def _passes(self, p: r.Predicate, column: str | None = None) -> list[str]:
        """SQL conditions that together imply that predicate `p` does not hold (of `column`,
        by default the path's column in `projection`)."""
        if p.path == r.LINE:
            if isinstance(p, r.NotObject):
                return []  # read_json with records = true reads nothing but objects
            raise TypeError(f"no typed rendering for {p!r}")
        c = column or self.ref(p.path)
        typ = self.sql_type(p.path)
        double, text = typ == "DOUBLE", typ == "VARCHAR"
        match p:
            case r.NotObject():
                return [c]  # the STRUCT column is not NULL (another JSON type fails the read)
            case r.Present() | r.Equals():
                return [f"{c} IS NULL"]  # JSON null reads as NULL too
            case r.NotInteger():
                # The JSON text of an integer >= 0 is exactly its decimal digits: 5.0, 1e3, -0
                # and "5" (a string) do not survive the round trip.
                return [
                    f"left({c}, 1) <> '-'",
                    f"CAST(TRY_CAST({c} AS BIGINT) AS VARCHAR) = {c}",
                ]
            case r.Absent() | r.NotNumber() | r.NotFinite():
                if double:  # NULL when absent: coalesced to false
                    return [] if self._bounded(p.path) else [f"isfinite({c})"]
                if text and isinstance(p, r.Absent):
                    return [f"{c} <> ''"]
            case r.OutOfRange():
                if double:
                    return [f"{c} BETWEEN {p.low!r} AND {p.high!r}"]
            case r.NotString():
                if text:
                    starts = "(" + ", ".join(literal(ch) for ch in _NOT_STRING_STARTS) + ")"
                    words = "(" + ", ".join(literal(w) for w in BOOLEAN_WORDS) + ")"
                    return [f"NOT (left({c}, 1) IN {starts} OR {c} IN {words})"]
            case r.Blank() | r.LongerThan():
                if text:
                    # No blank at either end: trimming changes nothing, so the text is not
                    # blank and its length is the trimmed length.
                    blanks = "(" + ", ".join(literal(ch) for ch in BLANKS) + ")"
                    ends = [f"left({c}, 1) NOT IN {blanks}", f"right({c}, 1) NOT IN {blanks}"]
                    if isinstance(p, r.LongerThan):
                        return [*ends, f"length({c}) <= {p.length}"]
                    return ends
            case r.HasCharacter():
                if text:
                    return [f"NOT regexp_matches({c}, {literal(character_class(p.ranges))})"]
            case r.YearOutside():
                if text and self._parsed(p.path):
                    # With the timestamp rule's conditions (the text is its parsed time printed
                    # back), the parsed time's year is the text's.
                    low, high = f"{p.low:04d}-01-01 00:00:00", f"{p.high:04d}-12-31 23:59:59"
                    return [f"ts_{c} BETWEEN TIMESTAMP '{low}' AND TIMESTAMP '{high}'"]
            case r.NotTimestamp():
                if text:
                    # Formatting the parsed time gives back the very text only if the text has
                    # the format's exact shape (a regular expression costs more); the length
                    # rules out a year of other than four digits, which the pattern rejects.
                    shape = len(datetime(2000, 1, 1).strftime(p.format))
                    printed = f"strftime(ts_{c}, {literal(p.format)}) = {c}"
                    return [f"length({c}) = {shape}", printed]
            case _:
                assert_never(p)
        raise TypeError(f"no typed rendering for {p!r} read as {typ}")

    def lines_sql(self) -> str:
        """The lines of the files in `wanted` (`?`: their paths) with what the per-file check
        and the aggregation need: the file's `id` in `wanted`, offset, `ok` (surely valid but
        for the checks left to the caller: offset range and uniqueness, `key_check_sql`),
        location, day and the measures."""
        topic, part, off = self.ref(r.TOPIC), self.ref(r.PARTITION), self.ref(r.OFFSET)
        measures = ", ".join(f"{self.ref(path)} AS m_{n}" for n, path in r.MEASURE_PATHS.items())
        stamp = self.ref(r.TIMESTAMP)
        columns = columns_literal(self.read_json_columns())
        # The file's topic is plain text (the caller makes sure), its partition the decimal
        # digits of a JSON integer, so equal text means equal JSON; an offset whose text is
        # its integer's decimal digits was written as a JSON integer.
        named = (
            f"{topic} = file_topic",
            f"{part} = file_part",
            f"CAST(TRY_CAST({off} AS BIGINT) AS VARCHAR) = {off}",
        )
        return f"""
        WITH lines AS (
            SELECT w.id, w.topic AS file_topic, w.part_text AS file_part, {self.projection("x")}
            FROM read_json(?, format = 'newline_delimited', records = true,
                           columns = {columns}, filename = true) x
            JOIN wanted w USING (filename)
        ), stamped AS (
            SELECT *, {self.parsed()} FROM lines
        )
        SELECT id, TRY_CAST({off} AS BIGINT) AS off,
               {self.surely_valid(*named, lines_only=True)} AS ok,
               {self.ref(r.LOCATION)} AS {r.LOCATION[-1]}, CAST(ts_{stamp} AS DATE) AS day,
               {measures}
        FROM stamped
        """
