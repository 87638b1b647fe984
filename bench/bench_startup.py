"""Benchmark of the CLI's start-up: `weatherpipe --help` and `weatherpipe platform status`.

Each command is started as a fresh process RUNS times, side by side with four references in
the same rounds (the commands alternate, so a busy moment of the machine hits all of them alike):
  - `python -c pass`: the interpreter alone;
  - `python -c "import typer"`: the CLI framework alone;
  - a bare typer command with one option, run: the floor of any typer command (typer checks
    option values with pydantic, so this loads pydantic too);
  - the same command reading a one-field pydantic-settings model: the floor of any command that
    reads the settings, as `platform status` must.
Two conditions: bytecode cached (what an installed package normally has; warmed once into a
private PYTHONPYCACHEPREFIX) and no bytecode at all (PYTHONDONTWRITEBYTECODE=1 over an empty
prefix: every module compiled on every start). `platform status` checks the services the
settings point to; the table says whether they answered. With --baseline, the two commands
are also run from another source tree in the same rounds (its `src` first on PYTHONPATH), e.g.
an earlier commit: `git archive <commit> src | tar -x -C /tmp/base`. Writes
bench/results-startup.md.

    uv run python bench/bench_startup.py [--runs 15] [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-startup.md"
ENTRY_POINT = str(Path(sys.executable).parent / "weatherpipe")
BARE_COMMAND = """
import typer

def main(as_json: bool = typer.Option(False, "--json")) -> None:
    pass

typer.run(main)
"""
SETTINGS_COMMAND = """
import typer
from pydantic_settings import BaseSettings

class Settings(BaseSettings):
    kafka_bootstrap_servers: str = "localhost:9092"

def main(as_json: bool = typer.Option(False, "--json")) -> None:
    Settings()

typer.run(main)
"""
REFERENCE = "a bare typer command with one option (reference)"
REFERENCES = {
    "`python -c pass` (reference)": [sys.executable, "-c", "pass"],
    '`python -c "import typer"` (reference)': [sys.executable, "-c", "import typer"],
    REFERENCE: [sys.executable, "-c", BARE_COMMAND],
    "the same reading a pydantic-settings model (reference)": [
        sys.executable,
        "-c",
        SETTINGS_COMMAND,
    ],
}
MEASURED = {
    "`weatherpipe --help`": ["--help"],
    "`weatherpipe platform status`": ["platform", "status"],
}
Command = tuple[list[str], dict[str, str]]
"""The command line, and what it adds to the environment."""
# Libraries a command should import only when it needs them.
HEAVY = ("confluent_kafka", "duckdb", "psycopg", "pyarrow", "streamlit", "numpy", "pydantic")


Timing = tuple[float, float]
"""Wall seconds until the process exited, and the CPU seconds it used (user + system)."""


def timed(command: list[str], env: dict[str, str]) -> Timing:
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime


def commands(baseline: Path | None) -> dict[str, Command]:
    found: dict[str, Command] = {name: (argv, {}) for name, argv in REFERENCES.items()}
    for name, args in MEASURED.items():
        if baseline is not None:
            found[f"{name} (baseline {baseline})"] = ([ENTRY_POINT, *args], baseline_env(baseline))
        found[name] = ([ENTRY_POINT, *args], {})
    return found


def baseline_env(baseline: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(baseline / "src")}


def measure(runs: int, todo: dict[str, Command], env: dict[str, str]) -> dict[str, list[Timing]]:
    """RUNS rounds; each round starts every command once, in turn."""
    times: dict[str, list[Timing]] = {name: [] for name in todo}
    for _ in range(runs):
        for name, (argv, extra) in todo.items():
            times[name].append(timed(argv, {**env, **extra}))
    return times


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """The heavy libraries `weatherpipe ARGS` imports, from `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "weatherpipe", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    imported = {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [name for name in HEAVY if name in imported]


def services(env: dict[str, str]) -> str:
    result = subprocess.run(
        [ENTRY_POINT, "platform", "status", "--json"], env=env, capture_output=True, text=True
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return f"status failed ({result.returncode}): {result.stderr.strip()[:200]}"
    return ", ".join(
        f"{name} {'answering' if info['running'] else 'not running'}"
        for name, info in report.items()
    )


def table(times: dict[str, list[Timing]]) -> list[str]:
    reference = statistics.median(wall for wall, _ in times[REFERENCE])
    lines = [
        "| command | median wall ms | / bare typer command | fastest wall ms | median CPU ms "
        "| wall ms of each run |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values)
        fastest = min(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        runs = ", ".join(f"{w * 1000:.0f}" for w, _ in values)
        lines.append(
            f"| {name} | {wall * 1000:.0f} | {wall / reference:.2f}x | {fastest * 1000:.0f} "
            f"| {cpu * 1000:.0f} | {runs} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Starts of each command.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--baseline", type=Path, help="Another source tree to compare with (its src/ is used)."
    )
    args = parser.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "src" / "weatherpipe" / "cli.py").exists():
        parser.error(f"{baseline}/src/weatherpipe/cli.py does not exist")
    todo = commands(baseline)

    with tempfile.TemporaryDirectory(prefix="weatherpipe-pyc-") as cache:
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached.update(PYTHONPYCACHEPREFIX=f"{cache}/warm", COLUMNS="80")
        for argv, extra in todo.values():  # writes the bytecode every later start reads
            timed(argv, {**cached, **extra})
        uncached = dict(cached, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=f"{cache}/empty")
        state = services(cached)
        warm = measure(args.runs, todo, cached)
        cold = measure(args.runs, todo, uncached)
        heavy = {name: heavy_imports(cmd, cached) for name, cmd in MEASURED.items()}
        if baseline is not None:
            heavy |= {
                f"{name} (baseline)": heavy_imports(cmd, {**cached, **baseline_env(baseline)})
                for name, cmd in MEASURED.items()
            }

    lines = [
        "# Start-up benchmark",
        "",
        f"`uv run python bench/bench_startup.py --runs {args.runs}"
        + (f" --baseline {baseline}" if baseline else "")
        + f"` on {host.node()} "
        f"({os.cpu_count()} CPUs, Python {host.python_version()}), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average at start "
        f"{os.getloadavg()[0]:.1f}. Each command started {args.runs} times as a new process, "
        "alternating with the references; wall time until it exits, and the CPU time it used. "
        "When other work shares the machine, the fastest run and the CPU time are steadier "
        f"than the median wall time. `platform status` found: {state}.",
        "",
        "## Bytecode cached (an installed package)",
        "",
        *table(warm),
        "",
        "## No bytecode (every module compiled at every start)",
        "",
        *table(cold),
        "",
        "Heavy libraries imported: "
        + "; ".join(f"{name}: {', '.join(found) or 'none'}" for name, found in heavy.items())
        + f" (of {', '.join(HEAVY)}). Target: each command under 300 ms with bytecode cached.",
        "",
    ]
    report = "\n".join(lines)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
