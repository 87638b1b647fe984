"""`make bench`: every stage's benchmark and the end-to-end lab run, in one command.

Starts a benchmark platform (Kafka + PostgreSQL) in bench/.state on free ports, runs each stage
benchmark (each compares side by side with its reference: Kafka's ProducerPerformance and
ConsumerPerformance, a bare DuckDB query, a bare `import typer` for the CLI's start-up, the lab
run against all three back to back), then
`weatherpipe run --no-dashboard` on a fresh 1M-row data set and the dashboard's pages over it
in chromium (bench_dashboard.py), and writes bench/results.md with the machine and the date.

    uv run python bench/run_all.py [--rows 1000000]
        [--skip produce,consume,batch,spark,cluster,import,startup,lab]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# stage: (script, its results file, its arguments: every stage uses the platform started here)
STAGES = {
    "produce": ("bench_produce.py", "results-produce.md", ["--use-env"]),
    "consume": ("bench_consume.py", "results-consume.md", []),
    "batch": ("bench_batch.py", "results-batch.md", []),
    "spark": ("bench_spark.py", "results-spark.md", []),
    # Starts the cluster profile of its own (6 JVMs) and stops it afterwards.
    "cluster": ("bench_cluster.py", "results-cluster.md", ["--stop"]),
    "import": ("bench_import.py", "results-import.md", []),
    "startup": ("bench_startup.py", "results-startup.md", []),
    # The lab run against the reference tools back to back, and each process's peak memory.
    "lab": ("bench_lab.py", "results-lab.md", []),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1048576:.0f} GiB RAM, "
        f"{host.system()} {host.release()}, Python {host.python_version()}, "
        f"{java.splitlines()[0] if java else 'java ?'}; load average at start "
        f"{os.getloadavg()[0]:.1f}"
    )


def demote(markdown: str) -> str:
    """A stage's report with its headings one level down, to nest under results.md's title."""
    return re.sub(r"(?m)^(#+) ", r"#\1 ", markdown).strip()


def weatherpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def end_to_end(env: dict[str, str], rows: int) -> str:
    with tempfile.TemporaryDirectory(prefix="weatherpipe-e2e-") as tmp:
        run_env = dict(
            env,
            CSV_PATH=f"{tmp}/weather_data.csv",
            RAW_DIR=f"{tmp}/raw",
            KAFKA_TOPIC=f"e2e_{uuid.uuid4().hex[:8]}",
            KAFKA_GROUP_ID=f"e2e_{uuid.uuid4().hex[:8]}",
        )
        start = time.monotonic()
        result = weatherpipe(run_env, "run", "--no-dashboard", "--json", "--rows", str(rows))
        wall = time.monotonic() - start
        # The dashboard is measured over the data the run has just loaded.
        print("bench: dashboard…", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(HERE / "bench_dashboard.py")], env=run_env, check=True)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    lines = [
        f"## End to end: `weatherpipe run --no-dashboard` on {rows:,} rows",
        "",
        "| stage | records | seconds |",
        "|---|---|---:|",
    ]
    for stage in summary["stages"]:
        lines.append(f"| {stage['name']} | {stage['records']} | {stage['seconds']:.1f} |")
    pipeline = sum(s["seconds"] for s in summary["stages"] if s["name"] not in ("platform",))
    lines += [
        f"| **total** (without platform start-up) | | **{pipeline:.1f}** |",
        "",
        f"Wall time of the command, Python start-up included: {wall:.1f} s.",
        "",
        demote((HERE / "results-dashboard.md").read_text()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="Comma-separated stages to skip.")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}

    state = HERE / ".state"
    # Every `make bench` starts from empty topics and an empty database: the end-to-end run's
    # batch and the dashboard then see this run's data set alone, not the sum of earlier runs.
    shutil.rmtree(state, ignore_errors=True)
    env = dict(
        os.environ,
        STATE_DIR=str(state),
        KAFKA_LIB_DIR=str(REPO / ".weatherpipe" / "kafka" / "lib"),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        KAFKA_CONTROLLER_PORT=str(free_port()),
        POSTGRES_PORT=str(free_port()),
    )
    env.pop("DATABASE_URL", None)
    started = datetime.now(UTC)
    sections = [
        "# weatherpipe benchmarks",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC by `make bench`; machine: {machine()}.",
        "Each stage is measured side by side with its reference in the same run; ratios are "
        "ours / reference for throughput (higher is better) or time (lower is better), as "
        "each table says.",
        "",
    ]
    weatherpipe(env, "platform", "up")
    try:
        for name, (script, result_file, script_args) in STAGES.items():
            results = HERE / result_file
            if name in skip:
                if results.exists():
                    # Keep the stage's last figures, marked as such, rather than drop them.
                    sections += [
                        f"_{name}: not rerun by this `make bench` (--skip); its last results "
                        f"follow, from {results.name}._",
                        "",
                        demote(results.read_text()),
                        "",
                    ]
                continue
            print(f"bench: {name}…", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, str(HERE / script), *script_args], env=env, check=True)
            sections += [demote(results.read_text()), ""]
        print("bench: end to end…", file=sys.stderr, flush=True)
        sections.append(end_to_end(env, args.rows))
        sections += ["", demote((HERE / "results-design.md").read_text()), ""]
    finally:
        weatherpipe(env, "platform", "down")
    out = HERE / "results.md"
    out.write_text("\n".join(sections))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
