"""The server's garbage collection between page runs, kept cheap.

Streamlit collects garbage after every run of a page (`runner.postScriptGC`): a full collection
walks every object the process tracks, over 100,000 once Streamlit, pandas, pyarrow, psycopg
and confluent-kafka are imported, which cost each page load about 50 ms of the server's time
(more while the machine is busy). Those objects live as long as the server, so they are frozen
once, after the first imports: later collections walk only what page runs made since.
"""

from __future__ import annotations

import functools
import gc


@functools.cache
def freeze_imports() -> None:
    """Move every object the process holds now out of the collector's sight, once per process
    (garbage left from the imports is collected first, so none of it is kept for good)."""
    gc.collect()
    gc.freeze()
