"""`weatherpipe consume` after a crash, beside a dead member, and without Kafka — with the
default settings: a restarted consumer takes its partitions over at once, `--until-idle` never
exits 0 while the raw zone lacks records the topic holds, and a broker that does not answer
is one clear message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tests.conftest import as_env, free_port
from tests.integration.test_consume import (
    assert_exactly_once,
    committed,
    consume_env,
    create_topic,
    events,
    in_background,
    produce,
    start_consume,
    summary_of,
    wait_until_writing,
)
from weatherpipe.kafka.consumer import KafkaConsumer, KafkaConsumerError
from weatherpipe.kafka.group import partition_holders
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.rawzone import naming, recovery
from weatherpipe.rawzone.membership import instance_id
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

# A dead member keeps its partitions until its session expires (45 s): a takeover slower than
# this would be that wait, not a takeover.
TAKEOVER_CEILING_SECONDS = 30


def join_seconds(log: str) -> float:
    """Seconds from "joining group" to the first assignment, by the log lines' clocks."""

    def stamp(marker: str) -> datetime:
        line = next(line for line in log.splitlines() if marker in line)
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")

    return (stamp("assigned") - stamp("joining group")).total_seconds()


def produce_until(
    settings: Settings, topic: str, stop: threading.Event, delivered: list[tuple[int, int]]
) -> threading.Thread:
    """Keep records arriving (2,000 every 0.2 s) until `stop` is set."""

    def work() -> None:
        start = 0
        while not stop.is_set():
            delivered.extend(produce(settings, topic, events(start, 2_000)))
            start += 2_000
            time.sleep(0.2)

    return in_background(work)


@pytest.mark.reliability
def test_consume_killed_five_times_takes_over_at_once_and_stores_every_offset_once(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group, partitions = unique_name("takeover"), unique_name("g"), 3
    create_topic(platform_settings, topic, partitions)
    delivered: list[tuple[int, int]] = []
    stop = threading.Event()
    producer = produce_until(platform_settings, topic, stop, delivered)
    env = consume_env(platform_settings, tmp_path, topic, group)
    # The join and assignment times are read from the consumer's INFO lines; the level changes
    # what is logged, nothing the consumer does.
    env["LOG_LEVEL"] = "INFO"
    member = instance_id(tmp_path, topic, 0)
    takeovers: list[float] = []
    joins: list[float] = []
    try:
        for _ in range(6):  # the first start joins a new group; the five after it take over
            started = time.monotonic()
            proc = start_consume(env, "--rotate-mb", "0.25")
            wait_until_writing(proc, tmp_path)
            takeovers.append(time.monotonic() - started)
            # The killed members were replaced, not waited for: one member holds everything.
            holders = holders_of(platform_settings, group, topic)
            assert {p: h.split(" at ")[0] for p, h in holders.items()} == {
                p: member for p in range(partitions)
            }
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            joins.append(join_seconds(err))
    finally:
        stop.set()
        producer.join()
    left_over = len(list(naming.temp_dir(tmp_path).iterdir()))  # half-written by the last kill
    started = time.monotonic()
    final = start_consume(env, "--until-idle", "3", "--rotate-mb", "0.25")
    summary = summary_of(final)
    print(
        f"takeover after SIGKILL: {', '.join(f'{s:.1f}' for s in takeovers[1:])} s from the "
        f"start to the first record written, {', '.join(f'{s:.2f}' for s in joins[1:])} s "
        f"from joining the group to the assignment; final run {time.monotonic() - started:.1f}"
        f" s; {len(delivered):,} records checked"
    )
    assert max(takeovers[1:]) < TAKEOVER_CEILING_SECONDS, takeovers
    assert summary["stale_temp_files_removed"] == left_over
    assert_exactly_once(tmp_path, topic, delivered)
    highest = recovery.highest_offsets(tmp_path, topic)
    assert committed(platform_settings, group, topic, partitions) == {
        p: last + 1 for p, last in highest.items()
    }


def wait_until_workers_write(
    proc: subprocess.Popen[str], raw_dir: Path, count: int
) -> list[psutil.Process]:
    """Until `count` worker processes of `proc` each have a temp file open; returns them."""
    deadline = time.monotonic() + 90
    while True:
        workers = psutil.Process(proc.pid).children()
        folder = naming.temp_dir(raw_dir)
        names = [path.name for path in folder.iterdir()] if folder.is_dir() else []
        writing = [w for w in workers if any(f"+{w.pid}-" in name for name in names)]
        if len(writing) == count:
            return writing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.02)


@pytest.mark.reliability
def test_workers_killed_take_over_at_once_and_orphaned_workers_stop(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("wtakeover"), unique_name("g")
    create_topic(platform_settings, topic, 4)
    delivered: list[tuple[int, int]] = []
    stop = threading.Event()
    producer = produce_until(platform_settings, topic, stop, delivered)
    env = consume_env(platform_settings, tmp_path, topic, group)
    members = {instance_id(tmp_path, topic, slot) for slot in (0, 1)}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", "consume", "--workers", "2", "--rotate-mb", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # one process group: the whole tree can be killed at once
        )

    try:
        takeovers = []
        for _ in range(3):  # the first start joins a new group; the others take over
            started = time.monotonic()
            proc = start()
            wait_until_workers_write(proc, tmp_path, 2)
            takeovers.append(time.monotonic() - started)
            holders = holders_of(platform_settings, group, topic)
            assert {h.split(" at ")[0] for h in holders.values()} == members
            assert sorted(holders) == [0, 1, 2, 3]
            os.killpg(proc.pid, signal.SIGKILL)  # every process of the tree, as a crash would
            proc.communicate(timeout=30)
        print(f"workers' takeover after SIGKILL: {', '.join(f'{s:.1f}' for s in takeovers[1:])} s")
        assert max(takeovers[1:]) < TAKEOVER_CEILING_SECONDS, takeovers
        # Only the parent killed: its workers must not run on unsupervised, holding slots.
        proc = start()
        workers = wait_until_workers_write(proc, tmp_path, 2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        gone, alive = psutil.wait_procs(workers, timeout=60)
        assert not alive, alive
        # They finished their files (no temp file of theirs is left) before they ended.
        folder = naming.temp_dir(tmp_path)
        assert not [p for p in folder.iterdir() if any(f"+{w.pid}-" in p.name for w in gone)]
    finally:
        stop.set()
        producer.join()
    summary_of(start_consume(env, "--until-idle", "3", "--rotate-mb", "1"))
    assert_exactly_once(tmp_path, topic, delivered)


def holders_of(settings: Settings, group: str, topic: str) -> dict[int, str]:
    return partition_holders(KafkaConnection(settings.kafka_bootstrap_servers), group, topic, 10)


def start_two_writers(
    settings: Settings, env: dict[str, str], raw_dir: Path, topic: str, *args: str
) -> tuple[subprocess.Popen[str], subprocess.Popen[str], list[tuple[int, int]]]:
    """Two consumers of one raw zone in one group, both storing records (they hold slots 0
    and 1, so two members); returns them and what was delivered meanwhile."""
    delivered: list[tuple[int, int]] = []
    stop = threading.Event()
    producer = produce_until(settings, topic, stop, delivered)
    try:
        first = start_consume(env, *args)
        wait_until_writing(first, raw_dir)
        second = start_consume(env, *args)
        wait_until_writing(second, raw_dir)
    finally:
        stop.set()
        producer.join()
    return first, second, delivered


@pytest.mark.reliability
def test_until_idle_waits_for_a_partition_held_by_a_dead_member(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("deadholder"), unique_name("g")
    create_topic(platform_settings, topic, 3)
    env = consume_env(platform_settings, tmp_path, topic, group)
    first, second, delivered = start_two_writers(
        platform_settings, env, tmp_path, topic, "--rotate-mb", "0.25"
    )
    holders = holders_of(platform_settings, group, topic)
    dead = instance_id(tmp_path, topic, 1)
    held_by_second = sorted(p for p, h in holders.items() if h.startswith(f"{dead} at "))
    assert held_by_second, holders
    for proc in (first, second):
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    delivered += produce(platform_settings, topic, events(10**6, 3_000))
    # Slot 0 comes back at once; the partitions of slot 1 stay with the dead member until its
    # session expires. An idle run must wait for them rather than exit with them missing.
    proc = start_consume(env, "--until-idle", "2")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert_exactly_once(tmp_path, topic, delivered)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["messages"] > 0
    # It went idle with those partitions missing, said what it waits for, and waited.
    assert "waiting for them" in err
    for partition in held_by_second:
        assert f"partition {partition}: " in err
    assert f"held by {dead} at" in err


@pytest.mark.reliability
def test_until_idle_exits_non_zero_naming_the_lag_of_partitions_it_cannot_get(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("lag"), unique_name("g")
    create_topic(platform_settings, topic, 3)
    env = consume_env(platform_settings, tmp_path, topic, group)
    # A running member that publishes nothing until it stops: what it writes is not stored yet.
    holder = start_consume(env, "--rotate-mb", "100", "--rotate-seconds", "3600")
    delivered = produce(platform_settings, topic, events(0, 3_000))
    wait_until_writing(holder, tmp_path)
    proc = start_consume(env, "--until-idle", "5")
    members = {instance_id(tmp_path, topic, slot) for slot in (0, 1)}
    deadline = time.monotonic() + 60
    while {
        h.split(" at ")[0] for h in holders_of(platform_settings, group, topic).values()
    } != members:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    held = sorted(
        p
        for p, h in holders_of(platform_settings, group, topic).items()
        if h.startswith(instance_id(tmp_path, topic, 0) + " at ")
    )
    # Both hold partitions; the new records of the holder's stay in its open files.
    delivered += produce(platform_settings, topic, events(3_000, 3_000))
    out, err = proc.communicate(timeout=240)
    holder.send_signal(signal.SIGTERM)
    summary_of(holder)
    assert proc.returncode == 1, err
    assert out == ""  # no summary: the run did not complete
    message = " ".join(err.split())
    assert "error: The raw zone still lacks" in message
    for partition in held:
        assert f"partition {partition}: " in message
    assert f"held by {instance_id(tmp_path, topic, 0)} at" in message
    # Once the holder stopped (and published), the next run completes.
    summary_of(start_consume(env, "--until-idle", "1"))
    assert_exactly_once(tmp_path, topic, delivered)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_kafka_down_is_one_message_and_a_non_zero_exit(tmp_path: Path, workers: str) -> None:
    servers = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = as_env(Settings(kafka_bootstrap_servers=servers, raw_dir=tmp_path))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "consume", "--until-idle", "3", "--workers", workers],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started
    print(f"consume with Kafka down: exit {result.returncode} after {seconds:.1f} s")
    assert result.returncode == 1
    assert result.stdout == ""
    message = " ".join(result.stderr.split())  # rich wraps it at the terminal's width
    assert message.startswith("error: No Kafka broker answered at " + servers)
    assert message.count("error:") == 1
    assert "`weatherpipe platform up`" in message
    assert "refused" not in message.lower()
    assert seconds < 15  # the promise: one answer well before the client's own give-up


def test_a_member_fenced_by_its_own_identity_says_who_and_what_to_do(
    platform_settings: Settings, unique_name: Callable[[str], str]
) -> None:
    # On one host the slot locks keep identities apart; two hosts with one name and one
    # RAW_DIR path do not see each other's locks, and Kafka fences the earlier member out.
    topic, group = unique_name("fenced"), unique_name("g")
    create_topic(platform_settings, topic, 1)
    produce(platform_settings, topic, events(0, 10))
    servers = KafkaConnection(platform_settings.kafka_bootstrap_servers)
    same = {"group.instance.id": "twin-host-0123456789-0"}

    def joined(consumer: KafkaConsumer) -> None:
        assigned = threading.Event()
        consumer.subscribe(topic, lambda _: assigned.set(), lambda _: None, lambda _: None)
        deadline = time.monotonic() + 60
        while not assigned.is_set():
            assert time.monotonic() < deadline, "never assigned"
            consumer.consume(100, 0.1)

    with KafkaConsumer(servers, group, extra_config=same) as first:
        joined(first)
        with KafkaConsumer(servers, group, extra_config=same) as second:
            joined(second)
            deadline = time.monotonic() + 60
            with pytest.raises(KafkaConsumerError) as raised:
                while time.monotonic() < deadline:
                    first.consume(100, 0.2)
    message = str(raised.value)
    assert "fenced this consumer out of group" in message
    assert "'twin-host-0123456789-0'" in message
    assert "KAFKA_GROUP_INSTANCE_ID" in message
    assert "Kafka is running" not in message


def test_until_idle_on_a_topic_that_does_not_exist_says_so(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = unique_name("missing")
    env = consume_env(platform_settings, tmp_path, topic, unique_name("g"))
    proc = start_consume(env, "--until-idle", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert out == ""
    message = " ".join(err.split())
    assert (
        f"error: Topic {topic!r} does not exist at {platform_settings.kafka_bootstrap_servers}"
        in (message)
    )
    assert "did not answer" not in message
