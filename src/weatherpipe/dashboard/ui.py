"""Small pieces every page shares: number formats, the sidebar's refresh button, and the one way
messages reach the browser.

Streamlit reads every title, caption, alert and label as Markdown (with LaTeX, colours, icons and
links). Values from the data (cities, topics, keys, file names, server messages) therefore never
go into those: they are shown with `st.text`, in tables or in charts, which show text as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import streamlit as st

from weatherpipe.dashboard.loaders import NoDataError, ReadError, first_line
from weatherpipe.errors import WeatherpipeError

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from weatherpipe.kafka.describe import GroupLag
    from weatherpipe.kafka.topic_views import PartitionLag

NO_VALUE = "—"
ICONS = {"info": ":material/info:", "warning": ":material/warning:", "error": ":material/error:"}

# Every column a lag table may show, in the words of both pages that show one.
LAG_COLUMNS: Final = {
    "topic": st.column_config.TextColumn("Topic"),
    "partition": st.column_config.NumberColumn("Partition"),
    "start": st.column_config.NumberColumn("Start offset", format="localized"),
    "end": st.column_config.NumberColumn("End offset", format="localized"),
    "committed": st.column_config.NumberColumn("Committed offset", format="localized"),
    "lag": st.column_config.NumberColumn("Lag (records)", format="localized"),
}
# The columns of a count of rejected rows by reason and field (quarantine, dead letters).
REASON_COLUMNS: Final = {
    "reason": st.column_config.TextColumn("Reason"),
    "field": st.column_config.TextColumn("Field"),
    "records": st.column_config.NumberColumn("Records", format="localized"),
}

log = logging.getLogger(__name__)


def number(value: float | None, unit: str, digits: int = 1) -> str:
    """`value` with `digits` decimals and its unit, or a dash when there is none."""
    return NO_VALUE if value is None else f"{value:,.{digits}f} {unit}"


def size(num_bytes: int) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def table(rows: Any, key: str | None, columns: Mapping[str, Any], **options: Any) -> Any:
    """A full-width table of `rows` without the index, its columns labelled by `columns`
    (Streamlit column configs by field); `options` go to `st.dataframe` (row selection)."""
    return st.dataframe(
        rows, hide_index=True, width="stretch", key=key, column_config=columns, **options
    )


def tiles(*shown: tuple[str, str]) -> None:
    """A row of metric tiles, one per (label, value)."""
    for tile, (label, value) in zip(st.columns(len(shown)), shown, strict=True):
        tile.metric(label, value)


def lag_table(lags: Sequence[GroupLag | PartitionLag], key: str, columns: tuple[str, ...]) -> None:
    """The total lag of a consumer group, then one row per partition with `columns` (names of
    `LAG_COLUMNS`, in that order)."""
    st.metric("Total lag (records)", f"{sum(p.lag for p in lags):,}")
    table(
        [{name: getattr(p, name) for name in columns} for p in lags],
        key,
        {name: LAG_COLUMNS[name] for name in columns},
    )


def view_switch(
    views: Sequence[str], key: str, place: DeltaGenerator | None = None, label: str = "Show"
) -> str:
    """A switch between a page's views, one drawn at a time (the browser spends its first load
    drawing whatever it is sent), kept in the URL as `?view=` so a view can be bookmarked and
    shared; the first of `views` is the default and leaves the URL bare."""
    state, url = st.session_state, st.query_params
    if state.get(key) not in views:
        # Opened from a URL (or the key held another page's choice): the URL's view, else the
        # default.
        wanted = url.get("view")
        state[key] = wanted if wanted in views else views[0]
    switch = st.segmented_control if place is None else place.segmented_control
    view: str = switch(label, views, key=key, required=True) or views[0]
    if view == views[0]:
        if "view" in url:
            del url["view"]
    elif url.get("view") != view:
        url["view"] = view
    return view


def refresh_button(cache_seconds: float) -> None:
    """A sidebar button that drops every cached result, so the next run asks again."""
    with st.sidebar:
        st.caption(f"Results are reused for {cache_seconds:g} s.")
        if st.button("Refresh now", key="refresh", icon=":material/refresh:"):
            st.cache_data.clear()


def message(
    kind: Literal["info", "warning", "error"], advice: str, detail: str | None = None
) -> None:
    """An alert with our own `advice` (Markdown written in this package, never data) and,
    below it, `detail` as literal text: whatever it holds is shown character for character."""
    alert = {"info": st.info, "warning": st.warning, "error": st.error}[kind]
    alert(advice, icon=ICONS[kind])
    if detail:
        st.text(detail)


def problem(exc: ReadError) -> None:
    """Why a section is missing: no data yet is news, anything else an error."""
    message("info" if isinstance(exc, NoDataError) else "error", exc.advice, exc.detail)


def page(render: Callable[[], None]) -> None:
    """Draw a page with `render`; what it did not handle becomes a short message in the page.
    The traceback goes to the server's log only: it names server paths and helps no reader."""
    try:
        render()
    except ReadError as exc:
        problem(exc)
    except WeatherpipeError as exc:
        message("error", "This page cannot be drawn:", str(exc))
    except Exception as exc:
        log.exception("a dashboard page failed")
        message(
            "error",
            "This page cannot be drawn. The whole error is in the log of "
            "`weatherpipe dashboard` (the terminal it runs in).",
            f"{type(exc).__name__}: {first_line(exc)}",
        )
