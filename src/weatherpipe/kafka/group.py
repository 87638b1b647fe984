"""Which member of a consumer group holds which partition: for messages that explain a wait."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from weatherpipe.kafka.consumer import CLIENT_LOG
from weatherpipe.kafka.security import KafkaConnection


def partition_holders(
    connection: KafkaConnection, group_id: str, topic: str, timeout: float
) -> dict[int, str]:
    """`{partition: member}` of `topic` in `group_id` (the member's static id, else its
    member id, with its host); empty when Kafka does not answer in time."""
    config: dict[str, str | int | float | bool] = {**connection.config()}
    client = AdminClient(config, logger=CLIENT_LOG)
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
