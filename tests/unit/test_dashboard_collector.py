"""The dashboard server freezes the objects of its imports once, so Streamlit's collection after
every page run walks only what the runs made."""

from __future__ import annotations

import gc

from weatherpipe.dashboard import collector


def test_the_imports_are_frozen_once_per_process() -> None:
    collector.freeze_imports.cache_clear()
    try:
        collector.freeze_imports()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000, "every object the process held is out of the collector's sight"
        made_since = [[n] for n in range(1_000)]
        collector.freeze_imports()
        assert gc.get_freeze_count() == frozen, "a later page run freezes nothing more"
        assert len(made_since) == 1_000
    finally:
        gc.unfreeze()
        collector.freeze_imports.cache_clear()
