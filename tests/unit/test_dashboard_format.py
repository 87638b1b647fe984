"""The dashboard's number formats: units always shown, missing values as a dash."""

from __future__ import annotations

import pytest

from weatherpipe.dashboard import ui


@pytest.mark.parametrize(
    ("value", "unit", "digits", "text"),
    [
        (12.345, "°C", 1, "12.3 °C"),
        (-0.04, "°C", 1, "-0.0 °C"),
        (16610.04, "mm", 1, "16,610.0 mm"),
        (55.0, "%", 0, "55 %"),
        (None, "km/h", 1, "—"),
    ],
)
def test_number_keeps_its_unit(value: float | None, unit: str, digits: int, text: str) -> None:
    assert ui.number(value, unit, digits) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KiB"),
        (5 * 1024 * 1024 + 512 * 1024, "5.5 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2048 * 1024**3, "2,048.0 GiB"),
    ],
)
def test_size_picks_the_largest_unit_that_keeps_at_least_one(num_bytes: int, text: str) -> None:
    assert ui.size(num_bytes) == text
