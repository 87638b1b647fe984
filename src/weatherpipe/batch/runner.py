"""One batch run: find the raw files not merged yet, aggregate them, merge and record.

Order of a run (a crash at any step leaves the processed zone as it was before the run):
1. take the batch advisory lock (no two runs of one database overlap);
2. mark runs left 'running' by a killed process as failed (the lock proves they are dead);
3. record this run as 'running' (committed, so others can see it);
4. read the processed files, let the engine aggregate the new ones (nothing written yet);
5. in ONE transaction: merge the sums, quarantine, mark files processed, finish the run record;
   the commit waits until PostgreSQL has it on disk, so a run that says "done" survives a
   server crash right after. A connection lost during the commit leaves the outcome unknown:
   the error says so, and the next run finds the files processed or not and acts on that.

Exactly once: a file is merged with the transaction that records it as processed, and a record
whose (topic, partition, offset) lies in the offset range of an already processed file of its
partition is skipped, so a record re-delivered in a new file is not counted again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from weatherpipe.batch.duckdb_engine import DuckDBEngine
from weatherpipe.batch.engine import Engine
from weatherpipe.batch.merge import MergeCounts, merge, processed_files
from weatherpipe.batch.raw_changes import changed_files, unrecognised_files
from weatherpipe.batch.results import EngineResult
from weatherpipe.db.connection import connect, masked
from weatherpipe.db.roles import writer_url
from weatherpipe.db.setup import prepare_database
from weatherpipe.errors import TerminalError, TransientError, WeatherpipeError
from weatherpipe.rawzone.listing import RawFile, survey
from weatherpipe.rules import build_rules
from weatherpipe.settings import Settings

log = logging.getLogger(__name__)

# Key of the advisory lock held for a whole run ("wpbatch" in ASCII).
BATCH_LOCK = 0x77_7062_6174_6368
APPLICATION_NAME = "weatherpipe-batch"


class BatchBusyError(TransientError):
    """Another batch run holds the lock."""


class NothingRecognisedError(TerminalError):
    """RAW_DIR holds .ndjson files, but none in the raw zone's layout."""


class CommitUnknownError(TransientError):
    """The connection broke during the commit: the run may or may not have been kept."""


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    mode: str
    engine: str
    files: int
    lines: int
    duplicates: int
    rejected: int
    rows: MergeCounts
    seconds: float
    typed_files: int = 0
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        """The one-line summary printed after a run."""
        r = self.rows
        typed = f" ({self.typed_files:,} by the typed read)" if self.typed_files else ""
        return (
            f"batch run {self.run_id} ({self.mode}, {self.engine}) done in {self.seconds:.1f} s: "
            f"{self.files:,} files{typed}, {self.lines:,} lines ({self.duplicates:,} duplicates, "
            f"{self.rejected:,} rejected) -> daily rows: {r.inserted:,} inserted, "
            f"{r.updated:,} updated, {r.unchanged:,} unchanged, {r.deleted:,} deleted"
            + (f"; {len(self.warnings)} warning(s), see above" if self.warnings else "")
        )


def make_engine(settings: Settings) -> Engine:
    """The engine BATCH_ENGINE names."""
    if settings.batch_engine == "spark":
        from weatherpipe.batch.spark_engine import from_settings

        return from_settings(settings)
    return DuckDBEngine(threads=settings.batch_threads, rules=build_rules(settings.event_years))


def _acquire(conn: psycopg.Connection, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (BATCH_LOCK,)).fetchone()
        if got and got[0]:
            return
        if time.monotonic() >= deadline:
            raise BatchBusyError(
                "Another batch run is still working on this database. Wait for it to finish "
                "(see table batch_run) or raise BATCH_LOCK_WAIT."
            )
        time.sleep(0.5)


def run_once(
    settings: Settings,
    *,
    full: bool = False,
    engine: Engine | None = None,
    lock_wait: float | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    prepare: bool = True,
) -> RunSummary:
    """One batch run over RAW_DIR (see the module docstring); raises on failure after
    recording it in batch_run. `prepare=False` skips migrating the schema and updating the
    logins (a scheduled run after a successful one: nothing has changed since)."""
    started = time.monotonic()
    engine = engine or make_engine(settings)
    on_step("preparing the database")
    try:
        if prepare:
            prepare_database(settings)
        url = writer_url(settings)
        conn = connect(
            url + ("&" if "?" in url else "?") + f"application_name={APPLICATION_NAME}",
            autocommit=True,
        )
    except psycopg.OperationalError as exc:
        raise TransientError(
            f"Cannot reach PostgreSQL ({exc}). Is it running? Locally: `weatherpipe platform up`; "
            f"otherwise check DATABASE_URL."
        ) from exc
    except psycopg.Error as exc:
        raise TerminalError(
            f"Could not prepare the database ({exc}). DATABASE_URL must name a role that may "
            "create tables and roles (the batch creates its own login and the dashboard's)."
        ) from exc
    try:
        with conn:
            on_step("waiting for the previous run")
            _acquire(conn, settings.batch_lock_wait if lock_wait is None else lock_wait)
            conn.execute(
                "UPDATE batch_run SET status = 'failed', finished_at = now(),"
                " error = 'interrupted: the process ended before the run finished'"
                " WHERE status = 'running'"
            )
            row = conn.execute(
                "INSERT INTO batch_run (engine, mode) VALUES (%s, %s) RETURNING id",
                (engine.name, "full" if full else "incremental"),
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
            try:
                summary = _work(conn, settings.raw_dir, run_id, engine, full, on_step, started)
            except BaseException as exc:
                _record_failure(conn, run_id, exc)
                raise
            finally:
                # The lock ends with the session anyway: a run that committed stays done
                # should the server go away right after.
                with contextlib.suppress(psycopg.OperationalError):
                    if not conn.broken:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (BATCH_LOCK,))
    except psycopg.OperationalError as exc:
        # The server restarted or the network dropped: the open transaction was rolled back
        # by the server, so nothing of this run is kept and a rerun is safe.
        raise TransientError(
            f"Lost the connection to PostgreSQL during the batch run ({exc}). Nothing of this "
            "run was kept. Once PostgreSQL answers again (`weatherpipe platform status`), run "
            "`weatherpipe batch` again; it redoes the same work."
        ) from exc
    return summary


def _work(
    conn: psycopg.Connection,
    raw_dir: Path,
    run_id: int,
    engine: Engine,
    full: bool,
    on_step: Callable[[str], None],
    started: float,
) -> RunSummary:
    on_step("listing raw files")
    done = processed_files(conn)
    listing = survey(raw_dir)
    every = listing.files
    warnings = []
    if listing.unrecognised:
        if not every:
            raise NothingRecognisedError(
                f"Nothing to process: {unrecognised_files(listing.unrecognised)}"
            )
        warnings.append(unrecognised_files(listing.unrecognised))
    if not full:  # a full run recounts what is there now: changes are what it is for
        warnings += changed_files(done, every)
    for warning in warnings:
        log.warning("%s", warning)
    files = every if full else [f for f in every if f.path not in done]
    on_step(f"aggregating {len(files):,} raw files with {engine.name}")
    counted = [] if full else [p.range for p in done.values()]
    result = engine.aggregate(raw_dir, files, counted)
    on_step(f"merging {len(result.daily):,} daily rows into PostgreSQL")
    committing = False
    try:
        with conn.transaction():
            # A run says "done" only once PostgreSQL has it on disk: the commit waits for the
            # WAL flush even where the server's default is not to (a few ms).
            conn.execute(
                "SELECT set_config('synchronous_commit', 'local', true)"
                " WHERE current_setting('synchronous_commit') = 'off'"
            )
            rows = merge(conn, run_id, files, result, full=full)
            _finish_record(conn, run_id, files, result, rows, warnings)
            committing = True
    except psycopg.OperationalError as exc:
        if not committing:
            raise
        raise CommitUnknownError(
            f"Lost the connection to PostgreSQL while committing batch run {run_id} ({exc}), "
            "so whether it was kept is unknown. Once PostgreSQL answers again (`weatherpipe "
            f"platform status`), run `weatherpipe batch` again: if run {run_id} was kept "
            "(table batch_run says 'succeeded'), the rerun finds its files processed and adds "
            "nothing; if not, it redoes the same work."
        ) from exc
    return RunSummary(
        run_id=run_id,
        mode="full" if full else "incremental",
        engine=engine.name,
        files=len(files),
        lines=result.lines,
        duplicates=result.duplicates,
        rejected=len(result.rejected),
        rows=rows,
        seconds=time.monotonic() - started,
        typed_files=result.typed_files,
        warnings=tuple(warnings),
    )


def _finish_record(
    conn: psycopg.Connection,
    run_id: int,
    files: list[RawFile],
    result: EngineResult,
    rows: MergeCounts,
    warnings: list[str],
) -> None:
    """Mark the run succeeded with its figures (in the merge's transaction)."""
    conn.execute(
        """UPDATE batch_run SET finished_at = clock_timestamp(), status = 'succeeded',
                   files = %s, lines = %s, duplicates = %s, rejected = %s, rows_inserted = %s,
                   rows_updated = %s, rows_unchanged = %s, rows_deleted = %s, warnings = %s
               WHERE id = %s""",
        (
            len(files),
            result.lines,
            result.duplicates,
            len(result.rejected),
            rows.inserted,
            rows.updated,
            rows.unchanged,
            rows.deleted,
            warnings,
            run_id,
        ),
    )


def _record_failure(conn: psycopg.Connection, run_id: int, exc: BaseException) -> None:
    message = str(exc) or type(exc).__name__
    if conn.broken:  # the next run marks this one failed when it finds it still 'running'
        return
    try:
        conn.execute(
            "UPDATE batch_run SET status = 'failed', finished_at = now(), error = %s WHERE id = %s",
            (message[:10_000], run_id),
        )
    except psycopg.Error:
        log.exception("could not record the failure of batch run %s", run_id)
    if not isinstance(exc, WeatherpipeError | KeyboardInterrupt):
        log.error("batch run %s failed on %s: %s", run_id, masked(str(conn.info.dsn)), message)
