"""Small pieces every page shares: number formats and the sidebar's refresh button."""

from __future__ import annotations

import streamlit as st

NO_VALUE = "—"


def number(value: float | None, unit: str, digits: int = 1) -> str:
    """`value` with `digits` decimals and its unit, or a dash when there is none."""
    return NO_VALUE if value is None else f"{value:,.{digits}f} {unit}"


def total(value: float | None, unit: str) -> str:
    """A total for a KPI tile: one decimal below 10,000, none above, so it fits the tile."""
    if value is None:
        return NO_VALUE
    return number(value, unit, 1 if abs(value) < 10_000 else 0)


def size(num_bytes: int) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def refresh_button(cache_seconds: float) -> None:
    """A sidebar button that drops every cached result, so the next run asks again."""
    with st.sidebar:
        st.caption(f"Results are reused for {cache_seconds:g} s.")
        if st.button("Refresh now", key="refresh", icon=":material/refresh:"):
            st.cache_data.clear()
