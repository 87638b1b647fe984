"""Which member of a consumer group holds which partition: for messages that explain a wait."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from weatherpipe.kafka.consumer import CLIENT_LOG


def partition_holders(
    bootstrap_servers: str, group_id: str, topic: str, timeout: float
) -> dict[int, str]:
    """`{partition: member}` of `topic` in `group_id` (the member's static id, else its
    member id, with its host); empty when Kafka does not answer in time."""
    client = AdminClient({"bootstrap.servers": bootstrap_servers}, logger=CLIENT_LOG)
    try:
        future = client.describe_consumer_groups([group_id], request_timeout=timeout)[group_id]
        group = future.result(timeout)
    except (KafkaException, TimeoutError) as exc:
        logging.getLogger(__name__).debug("describing group %s failed: %s", group_id, exc)
        return {}
    holders: dict[int, str] = {}
    for member in group.members:
        name = f"{member.group_instance_id or member.member_id} at {member.host.lstrip('/')}"
        for tp in member.assignment.topic_partitions:
            if tp.topic == topic:
                holders[tp.partition] = name
    return holders
