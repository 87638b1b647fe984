"""The SQL columns a batch renderer gives each JSON path the shared rules (`weatherpipe.rules`)
read: one plan, so the DuckDB and Spark renderers name and select the same columns."""

from __future__ import annotations

from dataclasses import dataclass

from weatherpipe.rules import LINE, RULES, NotFinite, NotNumber, OutOfRange, Path, Rule, paths


@dataclass(frozen=True)
class Columns:
    """Names of the SQL columns that hold one JSON path's fragment, type, text and number."""

    fragment: str
    type: str
    text: str
    number: str


class ColumnPlan:
    """The JSON paths a rule list reads and the column names each engine's SQL gives them.

    Shared by the DuckDB and Spark renderers, so both name and select the same columns.
    """

    def __init__(self, rule_list: tuple[Rule, ...] = RULES) -> None:
        self.rules = rule_list
        self.paths = [p for p in paths(rule_list) if p != LINE]
        self.number_paths = [
            p
            for p in self.paths
            if any(
                x.predicate.path == p
                and isinstance(x.predicate, NotNumber | NotFinite | OutOfRange)
                for x in rule_list
            )
        ]

    def is_parent(self, path: Path) -> bool:
        """Whether another path read lies inside `path` (so `path` is an object on the way)."""
        return any(p[: len(path)] == path and p != path for p in self.paths)

    def columns(self, path: Path) -> Columns:
        if path == LINE:
            return Columns("j", "jt", "line", "")
        i = self.paths.index(path)
        return Columns(f"f{i}", f"t{i}", f"s{i}", f"n{i}")
