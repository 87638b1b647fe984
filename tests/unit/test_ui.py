"""The output layer (weatherpipe.ui): messages, progress lines and log records print user data
as written, on a terminal and off it, and the libraries' logs stay quiet unless asked.

Each case runs in a fresh interpreter: the log set-up is process-wide, and whether stderr is a
terminal is decided when the console is created.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CITIES = ("[bold]Zürich[/bold] :x:", "[/x]Köln :smile:", "São Paulo [link=x]:x:[/link]")
PASSWORD = "Distinct-Pw-4711"


def run_python(code: str, *, terminal: bool) -> str:
    """Run `code`; its stderr without colour codes. `terminal`: Rich treats stderr as one."""
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "NO_COLOR", "TERM"}}
    env["COLUMNS"] = "200"
    if terminal:
        env["FORCE_COLOR"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return ANSI.sub("", done.stderr)


MESSAGES = f"""
    import logging
    from weatherpipe.ui.console import say
    from weatherpipe.ui.logs import configure_logging
    from weatherpipe.ui.progress import activity

    first, second, third = {CITIES!r}
    configure_logging("WARNING")
    with activity("loading " + first) as shown:
        shown.describe("now " + second)
        logging.getLogger("weatherpipe.places").warning("no data for %s", second)
    say(("done:", "green"), " " + third)
"""


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_city_names_print_as_written(terminal: bool) -> None:
    output = run_python(MESSAGES, terminal=terminal)

    assert f"no data for {CITIES[1]}" in output
    assert f"done: {CITIES[2]}" in output
    assert "❌" not in output and "😄" not in output
    if terminal:  # the live line is drawn (and then cleared) only on a terminal
        assert f"now {CITIES[1]}" in output
    else:
        assert "now " not in output
        assert re.search(
            rf"WARNING weatherpipe\.places: no data for {re.escape(CITIES[1])}", output
        )


LOGS = f"""
    import logging
    from weatherpipe.ui.logs import configure_logging

    configure_logging(LEVEL)
    # Imported after the set-up, as the commands do: its default must not undo LOG_LEVEL.
    from weatherpipe.kafka.admin import CLIENT_LOG

    log = logging.getLogger("weatherpipe.batch")
    log.info("info from weatherpipe")
    log.warning("cannot reach postgresql://batch:{PASSWORD}@db:5432/weather")
    CLIENT_LOG.warning("librdkafka retries a connection")
    CLIENT_LOG.error("librdkafka gave up")
    logging.getLogger("py4j.clientserver").info("py4j chatter")
"""


def test_default_level_shows_warnings_and_library_errors_only() -> None:
    output = run_python(LOGS.replace("LEVEL", '"WARNING"'), terminal=False)

    assert "info from weatherpipe" not in output
    assert "cannot reach postgresql://batch:***@db:5432/weather" in output
    assert PASSWORD not in output
    assert "librdkafka retries" not in output
    assert "librdkafka gave up" in output
    assert "py4j chatter" not in output


def test_debug_shows_the_libraries_too() -> None:
    output = run_python(LOGS.replace("LEVEL", '"DEBUG"'), terminal=True)

    assert "info from weatherpipe" in output
    assert "librdkafka retries a connection" in output
    assert "py4j chatter" in output
    assert PASSWORD not in output
