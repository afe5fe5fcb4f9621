"""Readings as time-series points: measurement = service, tags = device (and phase / index),
fields = the numeric normalized fields. Lists are per phase; mappings (tariff indexes) per key.
Lines for a database add a ``site`` tag (to_line): boxes sharing one central database each
have a device "linky", and their series must not merge there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# Identity and enumeration numbers are not measurements: kept out of the time series.
SKIP = frozenset({"product_id", "day_sequence", "ts", "overload_phases"})  # phase numbers


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point."""

    measurement: str
    tags: tuple[tuple[str, str], ...]  # sorted (key, value)
    fields: tuple[tuple[str, float], ...]
    ts_ns: int

    def tag(self, key: str) -> str | None:
        """A tag's value."""
        return dict(self.tags).get(key)

    def to_line(self, site: str | None = None) -> str:
        """InfluxDB line protocol (nanosecond precision), with a ``site`` tag if given."""
        pairs = self.tags if site is None else tuple(sorted((*self.tags, ("site", site))))
        tags = "".join(f",{_escape(k)}={_escape(v)}" for k, v in pairs)
        fields = ",".join(f"{_escape(k)}={_number(v)}" for k, v in self.fields)
        return f"{_escape(self.measurement)}{tags} {fields} {self.ts_ns}"


def _escape(text: str) -> str:
    # A raw newline would end the line: the database drops it, silently. Line protocol has no
    # escape for it, so it is written as the two characters backslash and n.
    text = text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _number(value: float) -> str:
    # Every field is written as a float, so a field never changes type between points
    # (InfluxDB rejects an int after a float for the same field).
    return repr(float(value))


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def ns_of(ts: datetime | float) -> int:
    """Epoch nanoseconds as an exact integer: from a zoned datetime to the microsecond, from
    float seconds to the millisecond (``ts * 1e9`` in floats lands 1 ms early a third of the
    time once a database truncates it to milliseconds)."""
    if isinstance(ts, datetime):
        return (ts - _EPOCH) // _US * 1000
    return round(ts * 1000) * 1_000_000


def flatten(service: str, device: str, state: dict[str, Any],
            ts: datetime | float) -> list[Point]:
    """Points of one state message: scalars on one point, then one per phase / index."""
    ts_ns = ns_of(ts)
    scalars: list[tuple[str, float]] = []
    extra: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = {}
    for key, value in state.items():
        if key in SKIP:
            continue
        number = _numeric(value)
        if number is not None:
            scalars.append((key, number))
        elif isinstance(value, list):
            for i, item in enumerate(value, start=1):
                n = _numeric(item)
                if n is not None:
                    extra.setdefault((("phase", str(i)),), []).append((key, n))
        elif isinstance(value, dict):
            for sub, item in value.items():
                n = _numeric(item)
                if n is not None:
                    extra.setdefault((("index", str(sub)),), []).append((key, n))
    points = []
    base = (("device", device),)
    if scalars:
        points.append(Point(service, base, tuple(sorted(scalars)), ts_ns))
    for tags, fields in extra.items():
        points.append(Point(service, tuple(sorted(base + tags)), tuple(sorted(fields)), ts_ns))
    return points
