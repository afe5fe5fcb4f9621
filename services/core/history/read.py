"""Reading the local history back: one series at any step, the list of series, CSV export.

The layout is in ``schema`` (written by the historian's ``LocalHistory``).
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import threading
from datetime import UTC, datetime
from typing import IO, Any

from services.core.history.schema import (
    PARTITION_GLOB,
    SERIES_BITS,
    partition_number,
    partition_table,
)

MAX_POINTS = 100_000  # buckets one series() call may return
Row = tuple[float, float | None, float | None, float | None]


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC ('2024-01-31T23:59:00Z')."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(minute: int | None) -> float | None:
    return None if minute is None else minute * 60.0


class HistoryReader:
    """Read-back of a history file, for the API and exports; LocalHistory adds the writing."""

    db: sqlite3.Connection
    db_lock: threading.RLock

    def _meta(self, name: str, default: int) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else default

    def _partitions(self) -> list[int]:
        """Partition numbers, oldest first (read each time: the writer may be another process)."""
        names = self.db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB ?",
            (PARTITION_GLOB,))
        return sorted(partition_number(name) for (name,) in names)

    def _tables(self, m0: int, m1: int) -> list[tuple[str, int, int]]:
        """(table, first key, end key) of the minute partitions overlapping minutes [m0, m1)."""
        size = self._meta("partition_minutes", 1)
        spans = [(p, max(m0, p * size), min(m1, (p + 1) * size)) for p in self._partitions()]
        return [(partition_table(p), a << SERIES_BITS, b << SERIES_BITS)
                for p, a, b in spans if a < b]

    def _matching(self, measurement: str, field: str, tags: dict[str, str] | None) -> list[int]:
        rows = self.db.execute(
            "SELECT id, tags FROM series WHERE measurement = ? AND field = ?", (measurement, field)
        ).fetchall()
        want = (tags or {}).items()
        return [sid for sid, t in rows if want <= json.loads(t).items()]

    def series(
        self, measurement: str, field: str, start: float, end: float, step_s: int, *,
        tags: dict[str, str] | None = None,
    ) -> list[Row]:
        """(bucket start, min, mean, max) per step over [start, end); None where no data.

        Buckets are whole multiples of ``step_s`` since the epoch (UTC); every series whose
        tags include ``tags`` counts (several devices or phases are combined).
        """
        if step_s < 60 or step_s % 60:
            raise ValueError(f"step_s must be a multiple of 60 s, got {step_s}")
        first = math.floor(start / step_s) * step_s
        stop = math.ceil(end / step_s) * step_s
        if (stop - first) // step_s > MAX_POINTS:
            raise ValueError(f"{(stop - first) // step_s} buckets asked, at most {MAX_POINTS}")
        acc: dict[int, list[float]] = {}
        with self.db_lock:
            ids = self._matching(measurement, field, tags)
            m0, m1 = first // 60, stop // 60
            if ids and m1 > m0 and step_s % 3600 == 0:
                # Closed hours come from the rollup: a year at a daily step reads 8760 rows
                # per series instead of 525600.
                split = max(m0, min(self._meta("rolled_until", 0) * 60, m1))
                if split > m0:
                    keys = ((m0 // 60) << SERIES_BITS, (split // 60) << SERIES_BITS)
                    self._accumulate(acc, "samples_hourly", keys, unit=3600, step=step_s,
                                     ids=ids)
                m0 = split
            for table, lo, hi in self._tables(m0, m1) if ids else []:
                self._accumulate(acc, table, (lo, hi), unit=60, step=step_s, ids=ids)
        out: list[Row] = []
        for t in range(first, stop, step_s):
            b = acc.get(t)
            out.append((float(t), None, None, None) if b is None else
                       (float(t), b[0], b[2] / b[3], b[1]))
        return out

    def _accumulate(self, acc: dict[int, list[float]], table: str, keys: tuple[int, int], *,
                    unit: int, step: int, ids: list[int]) -> None:
        # Only table names from the schema, integers and "?" are formatted into this SQL.
        sql = (f"SELECT ((key >> 16) * {unit} / {step}) * {step} AS t, min(min), max(max), "  # noqa: S608
               f"sum(sum), sum(count) FROM {table} WHERE key >= ? AND key < ? "
               f"AND (key & 65535) IN ({','.join('?' * len(ids))}) GROUP BY t")
        for t, lo, hi, total, count in self.db.execute(sql, (*keys, *ids)):
            b = acc.setdefault(t, [lo, hi, 0.0, 0])
            b[:] = min(b[0], lo), max(b[1], hi), b[2] + total, b[3] + count

    def _last_minutes(self) -> dict[int, int]:
        """Each series' newest minute: from the rollups, or from rows not rolled up yet."""
        last = dict(self.db.execute(
            "SELECT id, last_minute FROM series WHERE last_minute IS NOT NULL").fetchall())
        for table, lo, hi in self._tables(self._meta("rolled_until", 0) * 60, 1 << 40):
            for sid, minute in self.db.execute(
                f"SELECT key & 65535, max(key >> 16) FROM {table} "  # noqa: S608
                "WHERE key >= ? AND key < ? GROUP BY 1", (lo, hi)):
                last[sid] = max(last.get(sid, minute), minute)
        return last

    def list_series(self) -> list[dict[str, Any]]:
        """Every series: measurement, tags, field, first and last minute (epoch s)."""
        with self.db_lock:
            last = self._last_minutes()
            rows = self.db.execute("SELECT id, measurement, tags, field, first_minute "
                                   "FROM series ORDER BY measurement, tags, field")
            return [{"measurement": m, "tags": json.loads(tags), "field": field,
                     "first": _epoch(first), "last": _epoch(last.get(sid))}
                    for sid, m, tags, field, first in rows]

    def export_csv(self, out: IO[str], start: float, end: float) -> int:
        """Minutes starting in [start, end) as CSV (time in ISO 8601 UTC, tags as k=v;k=v);
        returns the rows written, header excluded."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["time", "measurement", "tags", "field", "min", "mean", "max", "count"])
        n = 0
        with self.db_lock:
            for table, lo, hi in self._tables(math.ceil(start / 60), math.ceil(end / 60)):
                rows = self.db.execute(
                    "SELECT key >> 16, s.measurement, s.tags, s.field, min, sum, max, count "  # noqa: S608
                    f"FROM {table} JOIN series AS s ON s.id = (key & 65535) "
                    "WHERE key >= ? AND key < ? ORDER BY key", (lo, hi))
                for minute, m, tags, field, low, total, high, count in rows:
                    tag_text = ";".join(f"{k}={v}" for k, v in json.loads(tags).items())
                    writer.writerow([iso_utc(minute * 60), m, tag_text, field, low,
                                     total / count, high, count])
                    n += 1
        return n
