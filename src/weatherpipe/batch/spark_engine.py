"""The Spark engine: the DuckDB engine's job on Apache Spark, for raw zones that outgrow one
machine. Same rules (rendered by `spark_sql`), same dedupe, same sums; only the per-day
aggregate, the rejected records and a few counts are collected to the driver.

Each file is read whole (`wholetext`) and split into lines on the executor that reads it, so a
line keeps its true line number (Spark's line reader splits big files into chunks whose order
is lost). Raw files are rotated at ROTATE_MB, so a whole file fits an executor easily.

PySpark is an optional extra (`weatherpipe[spark]`): it is imported only when a run needs it.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from weatherpipe import rules as r
from weatherpipe.batch.offset_ranges import OffsetRange, merged_ranges
from weatherpipe.batch.results import SUMMED, DailyPart, EngineError, EngineResult, Rejected
from weatherpipe.batch.spark_sql import Renderer
from weatherpipe.errors import TerminalError
from weatherpipe.rawzone.listing import RawFile
from weatherpipe.settings import Settings

APP_NAME = "weatherpipe-batch"
# The DuckDB engine sums DECIMAL(38, 12) casts of the DOUBLE values, which DuckDB computes as
# round-half-away(value * 10^12). Spark's own DOUBLE -> DECIMAL cast rounds the shortest decimal
# text instead (they differ for values with more than 12 decimals), so the Spark engine sums
# the same scaled integers and scales the exact sums back on the driver: identical to the digit.
SCALE = 12


class SparkMissingError(TerminalError):
    """PySpark is not installed."""


def require_pyspark() -> None:
    """Raise a clear error when the optional PySpark dependency is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkMissingError(
            "The Spark engine needs PySpark, which is not installed. Install it with "
            "`pip install 'weatherpipe[spark]'` (in a checkout: `make install`), or run the "
            "batch with the default engine (--engine duckdb)."
        )


def raw_uri(raw_dir: Path | str) -> str:
    """The raw zone as a Hadoop URI: a URI (file://, s3a://, hdfs://) stays as it is, a plain
    path becomes an absolute file:// URI."""
    text = str(raw_dir)
    if "://" in text:
        return text.rstrip("/")
    # Not Path.as_uri(): Hadoop takes the path as it is and would not undo its %-escapes.
    return "file://" + Path(text).resolve().as_posix()


class SparkEngine:
    """Aggregates raw files with Apache Spark (`master`: local[*], spark://host:7077, ...)."""

    name = "spark"

    def __init__(
        self,
        master: str = "local[*]",
        *,
        raw_uri: str | None = None,
        driver_memory: str = "2g",
        executor_memory: str = "1g",
        conf: dict[str, str] | None = None,
        rules: tuple[r.Rule, ...] = r.RULES,
    ) -> None:
        self.master = master
        self.raw_uri = raw_uri
        self.driver_memory = driver_memory
        self.executor_memory = executor_memory
        self.conf = dict(conf or {})
        self.sql = Renderer(rules)
        self._session: Any = None
        self._lock = threading.Lock()

    # --- the session ------------------------------------------------------------------------
    def session(self) -> Any:
        """The SparkSession, created on first use (starting Spark takes several seconds)."""
        with self._lock:
            if self._session is None:
                self._session = self._start()
            return self._session

    def _start(self) -> Any:
        require_pyspark()
        from pyspark.sql import SparkSession

        builder = (
            SparkSession.builder.master(self.master)
            .appName(APP_NAME)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", self.driver_memory)
            .config("spark.executor.memory", self.executor_memory)
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.ui.enabled", "false")
            # A handful of small result sets: few shuffle partitions, not Spark's default 200.
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.ansi.enabled", "true")
        )
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:
            raise EngineError(
                f"Spark could not start with master {self.master!r}: {exc}. Check the master "
                "URL (SPARK_MASTER / --master) and that Java 17 or newer is installed."
            ) from exc
        spark.sparkContext.setLogLevel("ERROR")
        # Leave a cluster cleanly (the application ends as finished, its executors are freed)
        # also when the caller never calls stop(), as the CLI does not.
        atexit.register(self.stop)
        return spark

    def stop(self) -> None:
        """Stop the SparkSession (if one was started)."""
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None

    # --- the job ----------------------------------------------------------------------------
    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """See `Engine.aggregate`; the files are read at RAW_URI (or `raw_dir`) + their path."""
        if not files:
            return EngineResult(daily=[], rejected=[], lines=0, duplicates=0)
        spark = self.session()
        base = raw_uri(self.raw_uri or raw_dir)
        wanted = {f"{base}/{f.path}": f.path for f in files}
        try:
            return self._run(spark, wanted, merged_ranges(list(counted)))
        except EngineError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("pyspark", "py4j")):
                raise EngineError(
                    f"Spark could not read the raw files under {base}: {exc}. Check that the "
                    "cluster can read them (a shared filesystem, or s3a:// with the hadoop-aws "
                    "connector); nothing was written."
                ) from exc
            raise

    def _run(self, spark: Any, wanted: dict[str, str], ranges: list[OffsetRange]) -> EngineResult:
        from pyspark import StorageLevel

        # One row per file; its path relative to the raw zone is its last three segments
        # (<topic>/date=<day>/<name>), however the filesystem spells the URI before them.
        spark.read.text(list(wanted), wholetext=True).selectExpr(
            "value AS content",
            "regexp_extract(_metadata.file_path, '([^/]+/[^/]+/[^/]+)$', 1) AS rel",
        ).createOrReplaceTempView("wp_texts")
        spark.createDataFrame(
            [(rel,) for rel in wanted.values()], "rel STRING"
        ).createOrReplaceTempView("wp_wanted")
        spark.createDataFrame(
            [(x.topic, x.partition, x.first, x.last) for x in ranges],
            "topic STRING, part INT, lo BIGINT, hi BIGINT",
        ).createOrReplaceTempView("wp_counted")
        checked = spark.sql(self._checked_sql())
        checked.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            checked.createOrReplaceTempView("wp_checked")
            firsts = spark.sql(self._first_sql())
            firsts.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                firsts.createOrReplaceTempView("wp_firsts")
                return self._result(spark, set(wanted.values()))
            finally:
                firsts.unpersist()
        finally:
            checked.unpersist()
            for view in ("wp_texts", "wp_wanted", "wp_counted", "wp_checked", "wp_firsts"):
                spark.catalog.dropTempView(view)

    def _checked_sql(self) -> str:
        q = self.sql
        topic, part, off = q.columns(r.TOPIC), q.columns(r.PARTITION), q.columns(r.OFFSET)
        measures = ", ".join(f"{q.number(p)} AS m_{name}" for name, p in r.MEASURE_PATHS.items())
        return f"""
        WITH files AS (
            SELECT w.rel, t.rel AS read_as, t.content
            FROM wp_texts t LEFT JOIN wp_wanted w ON t.rel = w.rel
        ), lines AS (
            SELECT coalesce(rel, concat('?', read_as)) AS rel, pos + 1 AS lineno, line
            FROM files LATERAL VIEW posexplode(split(content, '\\n', -1)) l AS pos, line
        ), parsed AS (
            SELECT rel, lineno, line, {q.parse()} FROM lines WHERE line <> ''
        ), fragments AS (
            SELECT rel, lineno, line, j, {q.fragments()} FROM parsed
        ), unpacked AS (
            SELECT rel, lineno, line, k, {q.unpacked()} FROM fragments
        ), typed AS (
            SELECT *, {q.typed()} FROM unpacked
        ), numbered AS (
            SELECT *, {q.numbers()} FROM typed
        ), ruled AS (
            SELECT *, {q.rule_index()} AS rule_no FROM numbered
        ), verdicts AS (
            SELECT *, {q.reason("rule_no")} AS reason, {q.field("rule_no")} AS field FROM ruled
        )
        SELECT rel, lineno,
               CASE WHEN reason IS NOT NULL THEN line END AS line,
               reason, field,
               CASE WHEN {topic.type} = 'VARCHAR' THEN {topic.text} END AS topic,
               {_coordinate(part.type, part.text, "INT")} AS part,
               {_coordinate(off.type, off.text, "BIGINT")} AS off,
               CASE WHEN reason IS NULL THEN {q.location()} END AS location,
               CASE WHEN reason IS NULL THEN {q.day()} END AS day,
               {measures}
        FROM verdicts
        """

    @staticmethod
    def _first_sql() -> str:
        # As in the DuckDB engine: a record counts once, the first copy by (file, line) among
        # those not counted before; lines without Kafka coordinates are kept as they are.
        return """
        SELECT rel, lineno, line, reason, field, topic, part, off, location, day,
               m_temperature_c, m_humidity_pct, m_precipitation_mm, m_wind_speed_kmh
        FROM (
            SELECT c.*, row_number() OVER (
                PARTITION BY c.topic, c.part, c.off ORDER BY c.rel, c.lineno) AS rn
            FROM wp_checked c
            WHERE c.topic IS NOT NULL AND c.part IS NOT NULL AND c.off IS NOT NULL
              AND NOT EXISTS (
                SELECT 1 FROM wp_counted k
                WHERE k.topic = c.topic AND k.part = c.part AND c.off BETWEEN k.lo AND k.hi)
        ) WHERE rn = 1
        UNION ALL
        SELECT rel, lineno, line, reason, field, topic, part, off, location, day,
               m_temperature_c, m_humidity_pct, m_precipitation_mm, m_wind_speed_kmh
        FROM wp_checked WHERE topic IS NULL OR part IS NULL OR off IS NULL
        """

    @staticmethod
    def _result(spark: Any, wanted: set[str]) -> EngineResult:
        factor = f"1{'0' * SCALE}D"
        sums = ", ".join(
            f"sum(CAST(round(m_{name} * {factor}) AS DECIMAL(38, 0))) AS {name}" for name in SUMMED
        )
        rows = spark.sql(
            f"""SELECT location, day, count(*) AS n, {sums},
                       min(m_temperature_c) AS tmin, max(m_temperature_c) AS tmax
                FROM wp_firsts WHERE reason IS NULL GROUP BY location, day
                ORDER BY location, day"""
        ).collect()
        daily = [
            DailyPart(
                location=row["location"],
                day=row["day"],
                observations=int(row["n"]),
                temperature_sum=_unscaled(row["temperature_c"]),
                humidity_sum=_unscaled(row["humidity_pct"]),
                wind_speed_sum=_unscaled(row["wind_speed_kmh"]),
                precipitation_sum=_unscaled(row["precipitation_mm"]),
                temperature_min=float(row["tmin"]),
                temperature_max=float(row["tmax"]),
            )
            for row in rows
        ]
        rejected = [
            Rejected(
                row["rel"],
                int(row["lineno"]),
                row["topic"],
                row["part"],
                row["off"],
                row["reason"],
                row["field"],
                row["line"],
            )
            for row in spark.sql(
                """SELECT rel, lineno, topic, part, off, reason, field, line
                   FROM wp_firsts WHERE reason IS NOT NULL ORDER BY rel, lineno"""
            ).collect()
        ]
        counts = spark.sql(
            """SELECT 'file' AS what, rel, count(*) AS n FROM wp_checked GROUP BY rel
               UNION ALL SELECT 'kept', NULL, count(*) FROM wp_firsts"""
        ).collect()
        per_file = {row["rel"]: int(row["n"]) for row in counts if row["what"] == "file"}
        kept = sum(int(row["n"]) for row in counts if row["what"] == "kept")
        read = set(per_file)
        unknown = read - wanted
        if unknown:
            raise EngineError(
                f"Spark read files it could not match to the raw files asked for "
                f"({sorted(unknown)[:3]}); nothing was written. Check SPARK_RAW_URI."
            )
        lines = sum(per_file.values())
        return EngineResult(
            daily=daily,
            rejected=rejected,
            lines=lines,
            duplicates=lines - kept,
            lines_per_file=per_file,
        )


def _coordinate(kind: str, text: str, sql_type: str) -> str:
    """A partition or offset as the DuckDB engine reads it for dedupe: any JSON number that
    fits, a fraction rounded half away from zero (such a line is rejected, but its coordinates
    still decide whether it is a repeat)."""
    return (
        f"CASE WHEN {kind} = 'BIGINT' THEN try_cast({text} AS {sql_type}) "
        f"WHEN {kind} = 'DOUBLE' THEN try_cast(round(try_cast({text} AS DOUBLE)) AS {sql_type}) "
        "END"
    )


def _unscaled(value: Decimal) -> Decimal:
    return Decimal(int(value)).scaleb(-SCALE)


def from_settings(settings: Settings) -> SparkEngine:
    """The Spark engine SPARK_MASTER, SPARK_RAW_URI and the memory settings describe."""
    require_pyspark()
    return SparkEngine(
        settings.spark_master,
        raw_uri=settings.spark_raw_uri,
        driver_memory=settings.spark_driver_memory,
        executor_memory=settings.spark_executor_memory,
        rules=r.build_rules(settings.event_years),
    )
