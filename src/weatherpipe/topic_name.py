"""What a Kafka topic name may be: 1 to 249 of [A-Za-z0-9._-] (Kafka's own rule).

The settings check KAFKA_TOPIC with it, the raw zone builds and parses its file names with it
(a name can never hold "+", the separator of a file name's parts), and the import and the
envelope check recognise a topic with it. It imports nothing of weatherpipe, so every room may
import it.
"""

from __future__ import annotations

import re
from typing import Final

TOPIC_NAME: Final = r"[A-Za-z0-9._-]{1,249}"
"""A regular expression for one topic name, without anchors (to embed in a longer pattern)."""

_TOPIC_NAME_RE: Final = re.compile(TOPIC_NAME)


def is_topic_name(text: str) -> bool:
    """True when the whole of `text` is a Kafka topic name."""
    return _TOPIC_NAME_RE.fullmatch(text) is not None
