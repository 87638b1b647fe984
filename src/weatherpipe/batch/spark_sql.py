"""Renders the shared rule list (`weatherpipe.rules`) into Spark SQL.

The Spark twin of `duckdb_sql`: each line is parsed once into a VARIANT (`j`, NULL when not
parseable), and each JSON path the rules read becomes columns computed once per line: the
fragment (`f<i>`), its kind (`t<i>`), its text (`s<i>`) and, for numeric fields, its DOUBLE
(`n<i>`). Kinds use DuckDB's `json_type` names ('OBJECT', 'VARCHAR', 'BIGINT', 'DOUBLE', ...)
so the predicates read the same in both renderers; both engines must give every line the same
verdict, which the parity test checks.
"""

from __future__ import annotations

from typing import assert_never

from weatherpipe import rules as r
from weatherpipe.batch.column_plan import ColumnPlan
from weatherpipe.events import character_class

BLANKS = " \t\r\n"
# What DuckDB's TRY_CAST(VARCHAR AS DOUBLE) accepts, so a numeric string counts as a number in
# both engines alike: digits with single underscores between them, an optional fraction and
# exponent, or inf / infinity / nan; blanks around it. (Spark's own cast would also take Java's
# "1.5d" and refuse "1_000".)
END = r"\z"  # the very end of the text (Java's `$` also matches before a final newline)
_SPACE = r"[ \t\n\r\x0B\f]*"
_DIGITS = r"[0-9]+(_[0-9]+)*"
NUMERIC_TEXT = (
    rf"^{_SPACE}[+-]?({_DIGITS}(\.({_DIGITS})?)?|\.{_DIGITS})([eE][+-]?{_DIGITS})?{_SPACE}{END}"
)
SPECIAL_TEXT = rf"(?i)^{_SPACE}[+-]?(inf|infinity|nan){_SPACE}{END}"
_NOT_DIGITS = r"[_ \t\n\r\x0B\f]"

# strftime directives of `weatherpipe.events.TIMESTAMP_FORMAT` -> Java DateTimeFormatter.
_JAVA_PATTERN = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss"}


def literal(text: str) -> str:
    """A Spark SQL string literal (Spark reads backslash escapes inside quotes)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def variant_path(path: r.Path) -> str:
    """The VARIANT path of a JSON path: $['kafka']['topic']."""
    return "$" + "".join(f"['{key}']" for key in path)


def java_pattern(fmt: str) -> str:
    """A Java DateTimeFormatter pattern for a strftime format made of the directives above."""
    out = fmt
    for directive, java in _JAVA_PATTERN.items():
        out = out.replace(directive, java)
    if "%" in out:
        raise ValueError(f"no Spark pattern for the timestamp format {fmt!r}")
    return out


def kind(schema: str) -> str:
    """SQL: the DuckDB `json_type` name of a value from its `schema_of_variant` (NULL when the
    path is missing); every JSON number that is not a 64-bit integer is a 'DOUBLE'."""
    return (
        f"CASE WHEN {schema} IS NULL THEN NULL "
        f"WHEN {schema} = 'VOID' THEN 'NULL' "
        f"WHEN {schema} = 'STRING' THEN 'VARCHAR' "
        f"WHEN {schema} = 'BIGINT' THEN 'BIGINT' "
        f"WHEN {schema} = 'BOOLEAN' THEN 'BOOLEAN' "
        f"WHEN {schema} LIKE 'OBJECT%' THEN 'OBJECT' "
        f"WHEN {schema} LIKE 'ARRAY%' THEN 'ARRAY' "
        f"ELSE 'DOUBLE' END"
    )


class Renderer(ColumnPlan):
    """Spark SQL for a rule list over a line column `j` (VARIANT, NULL when not parseable)."""

    # --- the projections, innermost first ---------------------------------------------------
    def parse(self, line: str = "line") -> str:
        """`j`: the line as a VARIANT. Spark's parser stops after the first JSON value where
        DuckDB refuses anything after it, so a line must also end (blanks aside) with '}';
        every other line is not an object either way."""
        trimmed = f"TRIM(TRAILING {literal(BLANKS)} FROM {line})"
        return f"CASE WHEN {trimmed} LIKE '%}}' THEN from_json({line}, 'variant') END AS j"

    def fragments(self) -> str:
        """`k` (the line's schema) and the `f<i>` columns from `j`."""
        out = ["schema_of_variant(j) AS k"]
        for i, path in enumerate(self.paths):
            out.append(f"try_variant_get(j, {literal(variant_path(path))}, 'variant') AS f{i}")
        return ", ".join(out)

    def unpacked(self) -> str:
        """`k<i>` (schema) and `s<i>` (text) from the `f<i>` columns; each computed once."""
        out = []
        for i, _ in enumerate(self.paths):
            out.append(f"schema_of_variant(f{i}) AS k{i}")
            out.append(f"try_variant_get(f{i}, '$', 'string') AS s{i}")
        return ", ".join(out)

    def typed(self) -> str:
        """`jt` and `t<i>`: the kinds of the line and of each path."""
        out = [f"{kind('k')} AS jt"]
        out += [f"{kind(f'k{i}')} AS t{i}" for i, _ in enumerate(self.paths)]
        return ", ".join(out)

    def numbers(self) -> str:
        """`n<i>`: the DOUBLE of a number or numeric string, NULL for anything else."""
        out = []
        for path in self.number_paths:
            c = self.columns(path)
            plain = f"regexp_replace({c.text}, {literal(_NOT_DIGITS)}, '')"
            out.append(
                f"CASE WHEN {c.type} IN ('BIGINT', 'DOUBLE') THEN try_cast({c.text} AS DOUBLE) "
                f"WHEN {c.type} = 'VARCHAR' AND ({c.text} RLIKE {literal(NUMERIC_TEXT)} "
                f"OR {c.text} RLIKE {literal(SPECIAL_TEXT)}) "
                f"THEN try_cast({plain} AS DOUBLE) END AS {c.number}"
            )
        return ", ".join(out)

    def rule_index(self) -> str:
        """CASE expression: the 1-based index of the first rule that fails, NULL for a valid
        record (one CASE instead of one each for reason and field keeps the generated code
        small, which Spark compiles much faster)."""
        whens = " ".join(
            f"WHEN {self.predicate(rule.predicate)} THEN {i}"
            for i, rule in enumerate(self.rules, start=1)
        )
        return f"CASE {whens} END"

    def reason(self, index: str) -> str:
        """The reason of rule number `index` (NULL for NULL)."""
        reasons = ", ".join(literal(rule.reason) for rule in self.rules)
        return f"CASE WHEN {index} IS NOT NULL THEN element_at(array({reasons}), {index}) END"

    def field(self, index: str) -> str:
        """The field of rule number `index` (NULL for NULL or a rule about no field)."""
        fields = ", ".join(
            literal(rule.field) if rule.field else "CAST(NULL AS STRING)" for rule in self.rules
        )
        return f"CASE WHEN {index} IS NOT NULL THEN element_at(array({fields}), {index}) END"

    def predicate(self, p: r.Predicate) -> str:
        """SQL that is true exactly when `p` holds (never NULL)."""
        c = self.columns(p.path)
        t, s, n = c.type, c.text, c.number
        blanks = literal(BLANKS)
        match p:
            case r.Absent():
                return f"({t} IS NULL OR {t} = 'NULL' OR ({t} = 'VARCHAR' AND {s} = ''))"
            case r.NotInteger():
                return f"NOT coalesce({t} = 'BIGINT' AND try_cast({s} AS BIGINT) >= 0, false)"
            case r.NotString():
                return f"coalesce({t} <> 'VARCHAR', true)"
            case r.Equals():
                return f"coalesce({t} = 'VARCHAR' AND {s} = {literal(p.text)}, false)"
            case r.Present():
                return f"coalesce({t} <> 'NULL', false)"
            case r.NotObject():
                return f"coalesce({t} <> 'OBJECT', true)"
            case r.Blank():
                return f"coalesce({t} = 'VARCHAR' AND TRIM(BOTH {blanks} FROM {s}) = '', false)"
            case r.LongerThan():
                return (
                    f"coalesce({t} = 'VARCHAR' AND char_length(TRIM(BOTH {blanks} FROM {s})) > "
                    f"{p.length}, false)"
                )
            case r.HasCharacter():
                pattern = literal(character_class(p.ranges))
                return f"coalesce({t} = 'VARCHAR' AND {s} RLIKE {pattern}, false)"
            case r.YearOutside():
                shape = literal("^" + p.pattern + END)
                year = f"try_cast(substring({s}, {p.start + 1}, 4) AS INT)"
                return (
                    f"coalesce({t} = 'VARCHAR' AND {s} RLIKE {shape} "
                    f"AND {year} NOT BETWEEN {p.low} AND {p.high}, false)"
                )
            case r.NotTimestamp():
                shape = literal("^" + p.pattern + END)
                return (
                    f"NOT coalesce({t} = 'VARCHAR' AND {s} RLIKE {shape} "
                    f"AND try_to_timestamp({s}, {literal(java_pattern(p.format))}) IS NOT NULL, "
                    "false)"
                )
            case r.NotNumber():
                return f"({n} IS NULL)"
            case r.NotFinite():
                return f"coalesce(isnan({n}) OR abs({n}) = double('Infinity'), false)"
            case r.OutOfRange():
                return f"coalesce({n} < {p.low!r}D OR {n} > {p.high!r}D, false)"
            case _:
                assert_never(p)

    def location(self) -> str:
        """The valid record's location, trimmed (so 'Chicago ' and 'Chicago' are one place)."""
        return f"TRIM(BOTH {literal(BLANKS)} FROM {self.columns(r.LOCATION).text})"

    def day(self) -> str:
        """The valid record's day: the date of the event's own timestamp."""
        fmt = next(
            rule.predicate.format
            for rule in self.rules
            if isinstance(rule.predicate, r.NotTimestamp) and rule.predicate.path == r.TIMESTAMP
        )
        text = self.columns(r.TIMESTAMP).text
        return f"to_date(try_to_timestamp({text}, {literal(java_pattern(fmt))}))"

    def number(self, path: r.Path) -> str:
        return self.columns(path).number
