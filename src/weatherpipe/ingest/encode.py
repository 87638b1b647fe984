"""Valid rows to Kafka records: a JSON object per row and `<location>|<day>` as key, built
column-wise.

The JSON text is assembled by Arrow from the validated columns: field names come from
EVENT_FIELDS, numbers are already JSON number text, the timestamp is canonical (digits, '-',
':' and a blank) and each distinct location is escaped once by orjson. No Python work per row
except turning the finished column into the list the Kafka client takes.

The key is the location and the event's day (`San Diego|2024-01-15`): Kafka keeps the records
of one key in one partition in order, so one city's day is read back in the order of the file,
while the thousands of (city, day) keys spread evenly over the partitions. Keyed by the ten
cities alone, their hashes land in two of three partitions (0 / 30 / 70 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from weatherpipe.events import EVENT_FIELDS, MEASURES
from weatherpipe.ingest.validate import ValidRows

KEY_SEPARATOR: Final = "|"
"""Between the location and the day in a record's key."""


@dataclass(frozen=True)
class Records:
    """Kafka records of a block, in line order."""

    values: list[bytes]
    keys: list[str]


def encode(rows: ValidRows) -> Records:
    """The JSON values and `<location>|<day>` keys of `rows`."""
    if len(rows) == 0:
        return Records([], [])
    encoded = pc.dictionary_encode(rows.location)
    names: list[str] = encoded.dictionary.to_pylist()
    indices = pa.array(encoded.indices)
    location_json = pa.array([orjson.dumps(n).decode() for n in names], pa.string())
    measure_fields = [m.field for m in MEASURES]
    assert EVENT_FIELDS[2:] == tuple(measure_fields), "event fields and MEASURES disagree"
    parts: list[pa.Array | str] = [
        f'{{"{EVENT_FIELDS[0]}":',
        location_json.take(indices),
        f',"{EVENT_FIELDS[1]}":"',
        rows.timestamp,
    ]
    closing = '"'
    for field, text in zip(measure_fields, rows.measures, strict=True):
        parts += [f'{closing},"{field}":', text]
        closing = ""
    parts.append("}")
    values = pc.binary_join_element_wise(*parts, "").cast(pa.binary())
    return Records(values.to_pylist(), _keys(rows))


def _keys(rows: ValidRows) -> list[str]:
    """`<location>|<day>` of each row; each distinct key is one str object, shared."""
    day = pc.utf8_slice_codeunits(rows.timestamp, 0, len("YYYY-MM-DD"))
    encoded = pc.dictionary_encode(pc.binary_join_element_wise(rows.location, day, KEY_SEPARATOR))
    names = np.array(encoded.dictionary.to_pylist(), dtype=object)
    keys: list[str] = names[pa.array(encoded.indices).to_numpy(zero_copy_only=False)].tolist()
    return keys
