"""Renders the shared rule list (`weatherpipe.batch.rules`) into DuckDB SQL.

Each JSON path the rules read becomes three columns computed once per line: the JSON fragment
(`f<i>`), its JSON type (`t<i>`) and its text (`s<i>`); numbers also get `n<i>` (DOUBLE). The
rules then become one CASE expression for the reason and one for the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from weatherpipe.batch import rules as r

BLANKS = " \t\r\n"
_NUMERIC_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR')"


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(path: r.Path) -> str:
    return "$" + "".join(f'."{key}"' for key in path)


@dataclass(frozen=True)
class Columns:
    """Names of the columns that hold one JSON path's fragment, type, text and number."""

    fragment: str
    type: str
    text: str
    number: str


class Renderer:
    """DuckDB SQL for a rule list over a line column `j` (JSON, NULL when not parseable)."""

    def __init__(self, rule_list: tuple[r.Rule, ...] = r.RULES) -> None:
        self.rules = rule_list
        self.paths = [p for p in r.paths(rule_list) if p != ()]
        self.number_paths = [p for p in self.paths if any(_is_number_rule(x, p) for x in rule_list)]

    def columns(self, path: r.Path) -> Columns:
        if path == ():
            return Columns("j", "jt", "line", "")
        i = self.paths.index(path)
        return Columns(f"f{i}", f"t{i}", f"s{i}", f"n{i}")

    # --- the projections, innermost first ---------------------------------------------------
    def fragments(self) -> str:
        """`f<i>` columns from `j`: one json_extract call parses each line once."""
        listed = ", ".join(literal(json_path(p)) for p in self.paths)
        parts = [f"CASE WHEN jt = 'OBJECT' THEN json_extract(j, [{listed}]) END AS frags"]
        return ", ".join(parts)

    def unpacked(self) -> str:
        """`f<i>`, `t<i>`, `s<i>` from the list column `frags`."""
        out = []
        for i, _ in enumerate(self.paths):
            out.append(f"frags[{i + 1}] AS f{i}")
            out.append(f"json_type(frags[{i + 1}]) AS t{i}")
            out.append(f"frags[{i + 1}] ->> '$' AS s{i}")
        return ", ".join(out)

    def numbers(self) -> str:
        """`n<i>`: the DOUBLE of a number or numeric string, NULL for anything else."""
        out = []
        for path in self.number_paths:
            c = self.columns(path)
            out.append(
                f"CASE WHEN {c.type} IN {_NUMERIC_TYPES} "
                f"THEN TRY_CAST({c.text} AS DOUBLE) END AS {c.number}"
            )
        return ", ".join(out)

    def reason(self) -> str:
        """CASE expression: the reason of the first rule that fails, NULL for a valid record."""
        whens = " ".join(
            f"WHEN {self.predicate(rule.predicate)} THEN {literal(rule.reason)}"
            for rule in self.rules
        )
        return f"CASE {whens} END"

    def field(self) -> str:
        """CASE expression: the field of the first rule that fails (NULL if none or no field)."""
        whens = " ".join(
            f"WHEN {self.predicate(rule.predicate)} THEN "
            f"{literal(rule.field) if rule.field else 'NULL'}"
            for rule in self.rules
        )
        return f"CASE {whens} END"

    def predicate(self, p: r.Predicate) -> str:
        """SQL that is true exactly when `p` holds (never NULL)."""
        c = self.columns(p.path)
        t, s, n = c.type, c.text, c.number
        if isinstance(p, r.Absent):
            return f"({t} IS NULL OR {t} = 'NULL' OR ({t} = 'VARCHAR' AND {s} = ''))"
        if isinstance(p, r.NotInteger):
            return (
                f"NOT coalesce({t} IN ('BIGINT', 'UBIGINT') "
                f"AND TRY_CAST({s} AS BIGINT) >= 0, false)"
            )
        if isinstance(p, r.NotString):
            return f"coalesce({t} <> 'VARCHAR', true)"
        if isinstance(p, r.Equals):
            return f"coalesce({t} = 'VARCHAR' AND {s} = {literal(p.text)}, false)"
        if isinstance(p, r.Present):
            return f"coalesce({t} <> 'NULL', false)"
        if isinstance(p, r.NotObject):
            return f"coalesce({t} <> 'OBJECT', true)"
        if isinstance(p, r.Blank):
            return f"coalesce({t} = 'VARCHAR' AND trim({s}, {literal(BLANKS)}) = '', false)"
        if isinstance(p, r.LongerThan):
            return (
                f"coalesce({t} = 'VARCHAR' AND length(trim({s}, {literal(BLANKS)})) > "
                f"{p.length}, false)"
            )
        if isinstance(p, r.NotTimestamp):
            return (
                f"NOT coalesce({t} = 'VARCHAR' AND regexp_full_match({s}, {literal(p.pattern)}) "
                f"AND try_strptime({s}, {literal(p.format)}) IS NOT NULL, false)"
            )
        if isinstance(p, r.NotNumber):
            return f"({n} IS NULL)"
        if isinstance(p, r.NotFinite):
            return f"coalesce(NOT isfinite({n}), false)"
        if isinstance(p, r.OutOfRange):
            return f"coalesce({n} < {p.low!r} OR {n} > {p.high!r}, false)"
        raise TypeError(f"no DuckDB rendering for {p!r}")

    def location(self) -> str:
        """The valid record's location, trimmed (so 'Chicago ' and 'Chicago' are one place)."""
        return f"trim({self.columns(r.LOCATION).text}, {literal(BLANKS)})"

    def day(self) -> str:
        """The valid record's day: the date of the event's own timestamp."""
        fmt = next(
            rule.predicate.format
            for rule in self.rules
            if isinstance(rule.predicate, r.NotTimestamp) and rule.predicate.path == r.TIMESTAMP
        )
        return f"CAST(try_strptime({self.columns(r.TIMESTAMP).text}, {literal(fmt)}) AS DATE)"

    def number(self, path: r.Path) -> str:
        return self.columns(path).number


def _is_number_rule(rule: r.Rule, path: r.Path) -> bool:
    return rule.predicate.path == path and isinstance(
        rule.predicate, r.NotNumber | r.NotFinite | r.OutOfRange
    )
