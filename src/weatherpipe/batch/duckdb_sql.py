"""Renders the shared rule list (`weatherpipe.rules`) into DuckDB SQL.

Each JSON path the rules read becomes columns computed once per line: the JSON fragment
(`f<i>`), its JSON type (`t<i>`) and its text (`s<i>`); numbers also get `n<i>` (DOUBLE) and
timestamps the parsed TIMESTAMP. The rules then become one CASE expression giving the number of
the first rule that fails, which indexes the lists of reasons and fields.

This is the SQL of the exact read (`duckdb_exact_read`). Its fragments come from whole files
read as JSON objects with `read_json` (one vectorised parse), or from files split into numbered
lines, each extracted on its own (any line, even corrupt, becomes a row with its line number).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from weatherpipe import rules as r
from weatherpipe.batch.column_plan import ColumnPlan
from weatherpipe.events import character_class

BLANKS = " \t\r\n"
_NUMERIC_TYPES = "('NUMBER', 'VARCHAR')"


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(path: r.Path) -> str:
    return "$" + "".join(f'."{key}"' for key in path)


def struct_columns(plan: ColumnPlan, leaf: Callable[[r.Path], str]) -> dict[str, str]:
    """The `columns` argument of DuckDB's `read_json` for every path of `plan`: objects on
    the way as STRUCTs, each path itself as the type `leaf` gives it."""
    tree: dict[str, Any] = {}
    for path in plan.paths:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] not in node:
            node[path[-1]] = {} if plan.is_parent(path) else leaf(path)

    def render(node: dict[str, Any]) -> str:
        inner = ", ".join(
            f'"{k}" ' + (render(v) if isinstance(v, dict) else str(v)) for k, v in node.items()
        )
        return f"STRUCT({inner})"

    return {k: render(v) if isinstance(v, dict) else str(v) for k, v in tree.items()}


def columns_literal(columns: dict[str, str]) -> str:
    """`struct_columns` as the DuckDB struct literal `read_json(columns = ...)` takes."""
    return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in columns.items()) + "}"


class Renderer(ColumnPlan):
    """DuckDB SQL for a rule list over a line column `j` (JSON, NULL when not parseable)."""

    def __init__(self, rule_list: tuple[r.Rule, ...] = r.RULES) -> None:
        super().__init__(rule_list)
        # Paths whose rules only need the value as text (a JSON null or absent path is NULL):
        # read as VARCHAR, they skip the JSON-type work (most of a line's fields are these).
        self.text_paths = {
            p
            for p in self.paths
            if all(isinstance(x.predicate, _TEXT_ONLY) for x in rule_list if x.predicate.path == p)
        }

    # --- the projections, innermost first ---------------------------------------------------
    def fragments(self) -> str:
        """Numbered lines: from a line column `j` of any shape, the list column `frags` (one
        json_extract call parses each line once)."""
        listed = ", ".join(literal(json_path(p)) for p in self.paths)
        return f"CASE WHEN jt = 'OBJECT' THEN json_extract(j, [{listed}]) END AS frags"

    def unpacked(self) -> str:
        """Numbered lines: `f<i>` from the list column `frags`."""
        return ", ".join(
            f"frags[{i + 1}] ->> '$' AS s{i}"
            if p in self.text_paths
            else f"frags[{i + 1}]::VARCHAR AS f{i}"
            for i, p in enumerate(self.paths)
        )

    def read_json_columns(self) -> dict[str, str]:
        """Whole JSON objects: `read_json` columns giving every path as a JSON leaf (objects on
        the way as STRUCTs; a line of another shape makes read_json fail, and its file is read
        as numbered lines)."""
        return struct_columns(self, lambda p: "VARCHAR" if p in self.text_paths else "JSON")

    def read_json_fragments(self, alias: str) -> str:
        """Whole JSON objects: `f<i>` from the columns of `read_json_columns` (an object on the
        way is rendered as '{}': only its being an object matters)."""
        out = []
        for i, path in enumerate(self.paths):
            ref = alias + "".join(f'."{k}"' for k in path)
            if path in self.text_paths:
                out.append(f"{ref} AS s{i}")
            elif self.is_parent(path):
                out.append(f"CASE WHEN {ref} IS NOT NULL THEN '{{}}' END AS f{i}")
            else:
                out.append(f"{ref}::VARCHAR AS f{i}")
        return ", ".join(out)

    def typed(self) -> str:
        """`t<i>` (the JSON type, read off the fragment's first character: fragments are compact
        JSON) and `s<i>` (a string's value, any other fragment's JSON text)."""
        out = []
        for i, path in enumerate(self.paths):
            if path in self.text_paths:
                continue
            first = f"left(f{i}, 1)"
            out.append(
                f"CASE WHEN f{i} IS NULL THEN NULL WHEN {first} = '\"' THEN 'VARCHAR' "
                f"WHEN {first} = '{{' THEN 'OBJECT' WHEN {first} = '[' THEN 'ARRAY' "
                f"WHEN {first} = 'n' THEN 'NULL' WHEN {first} IN ('t', 'f') THEN 'BOOLEAN' "
                f"ELSE 'NUMBER' END AS t{i}"
            )
            out.append(
                f"CASE WHEN left(f{i}, 1) = '\"' THEN f{i}::JSON ->> '$' ELSE f{i} END AS s{i}"
            )
        return ", ".join(out)

    def numbers(self) -> str:
        """`n<i>`: the DOUBLE of a number or numeric string, NULL for anything else; for a
        timestamp path the parsed TIMESTAMP, NULL unless it has the exact shape and is real."""
        out = []
        for p in self.timestamps():
            c = self.columns(p.path)
            is_string = "true" if p.path in self.text_paths else f"{c.type} = 'VARCHAR'"
            out.append(
                f"CASE WHEN {is_string} AND regexp_full_match({c.text}, "
                f"{literal(p.pattern)}) THEN try_strptime({c.text}, {literal(p.format)}) END "
                f"AS {c.number}"
            )
        for path in self.number_paths:
            c = self.columns(path)
            if path in self.text_paths:
                # Booleans, objects and arrays arrive as text that is not a number.
                out.append(f"TRY_CAST({c.text} AS DOUBLE) AS {c.number}")
                continue
            out.append(
                f"CASE WHEN {c.type} IN {_NUMERIC_TYPES} "
                f"THEN TRY_CAST({c.text} AS DOUBLE) END AS {c.number}"
            )
        return ", ".join(out)

    def rule_number(self) -> str:
        """CASE expression: the 1-based number of the first rule that fails, NULL if none."""
        whens = " ".join(
            f"WHEN {self.predicate(rule.predicate)} THEN {i}"
            for i, rule in enumerate(self.rules, start=1)
        )
        return f"CASE {whens} END"

    def reason(self, number: str) -> str:
        """The reason of rule number `number` (a column from `rule_number`)."""
        reasons = ", ".join(literal(rule.reason) for rule in self.rules)
        return f"[{reasons}][{number}]"

    def field(self, number: str) -> str:
        """The field of rule number `number`, NULL for rules about the whole record."""
        fields = ", ".join(literal(rule.field) if rule.field else "NULL" for rule in self.rules)
        return f"[{fields}][{number}]"

    def predicate(self, p: r.Predicate) -> str:
        """SQL that is true exactly when `p` holds (never NULL)."""
        c = self.columns(p.path)
        t, s, n = c.type, c.text, c.number
        match p:
            case r.Absent() if p.path in self.text_paths:
                return f"({s} IS NULL OR {s} = '')"
            case r.Absent():
                return f"({t} IS NULL OR {t} = 'NULL' OR ({t} = 'VARCHAR' AND {s} = ''))"
            case r.NotInteger():
                return (
                    f"NOT coalesce({t} = 'NUMBER' AND regexp_full_match({s}, '[0-9]{{1,19}}') "
                    f"AND TRY_CAST({s} AS BIGINT) IS NOT NULL, false)"
                )
            case r.NotString():
                return f"coalesce({t} <> 'VARCHAR', true)"
            case r.Equals():
                return f"coalesce({t} = 'VARCHAR' AND {s} = {literal(p.text)}, false)"
            case r.Present():
                return f"coalesce({t} <> 'NULL', false)"
            case r.NotObject():
                return f"coalesce({t} <> 'OBJECT', true)"
            case r.Blank():
                return f"coalesce({t} = 'VARCHAR' AND trim({s}, {literal(BLANKS)}) = '', false)"
            case r.LongerThan():
                return (
                    f"coalesce({t} = 'VARCHAR' AND length(trim({s}, {literal(BLANKS)})) > "
                    f"{p.length}, false)"
                )
            case r.HasCharacter():
                pattern = literal(character_class(p.ranges))
                return f"coalesce({t} = 'VARCHAR' AND regexp_matches({s}, {pattern}), false)"
            case r.YearOutside():
                # The shape first: only then are the four characters digits.
                year = f"TRY_CAST(substr({s}, {p.start + 1}, 4) AS INTEGER)"
                return (
                    f"coalesce(regexp_full_match({s}, {literal(p.pattern)}) "
                    f"AND {year} NOT BETWEEN {p.low} AND {p.high}, false)"
                )
            case r.NotTimestamp():
                return f"({c.number} IS NULL)"
            case r.NotNumber():
                return f"({n} IS NULL)"
            case r.NotFinite():
                return f"coalesce(NOT isfinite({n}), false)"
            case r.OutOfRange():
                return f"coalesce({n} < {p.low!r} OR {n} > {p.high!r}, false)"
            case _:
                assert_never(p)

    def location(self) -> str:
        """The valid record's location, trimmed (so 'Chicago ' and 'Chicago' are one place)."""
        return f"trim({self.columns(r.LOCATION).text}, {literal(BLANKS)})"

    def day(self) -> str:
        """The valid record's day: the date of the event's own timestamp."""
        return f"CAST({self.columns(r.TIMESTAMP).number} AS DATE)"

    def timestamps(self) -> list[r.NotTimestamp]:
        return [x.predicate for x in self.rules if isinstance(x.predicate, r.NotTimestamp)]

    def number(self, path: r.Path) -> str:
        return self.columns(path).number


_TEXT_ONLY = r.Absent | r.YearOutside | r.NotTimestamp | r.NotNumber | r.NotFinite | r.OutOfRange
