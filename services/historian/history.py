"""Local history: one-minute aggregates (min/max/sum/count) of every series in one SQLite file.

Written for SD cards. Rows are keyed ``minute << 16 | series_id`` in rowid tables, so a flush
appends all its rows at the end of one B-tree (a few pages) instead of touching one page per
series, and SQLite's append fast path packs the pages full. Minutes live in one table per
``partition_days``, so retention drops whole tables: deleting rows would rewrite every page
it frees, as much again as the data was. Closed hours are rolled up into ``samples_hourly``
for long ranges. The schema and the read-back are in ``services.core.history``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path

from services.core.history.read import HistoryReader
from services.core.history.schema import (
    HISTORY_SCHEMA,
    PARTITION_DDL,
    SERIES_BITS,
    partition_table,
)
from services.historian.points import Point

# Small pages: each flush rewrites the last, partly filled pages of the tables it touches
# (and page 1), so the page size is the unit of write amplification. Measured for one day of
# the target setup: 4096 B pages ~31 MB written, 1024 B ~15 MB, 512 B ~12 MB.
PAGE_SIZE = 512
MAX_SERIES = (1 << SERIES_BITS) - 1  # a runaway publisher cannot grow the key space
MAX_PENDING = 200_000  # buckets held in memory while the disk refuses writes

Tags = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Tags, str]
Bucket = tuple[str, Tags, str, int]  # measurement, tags, field, minute

# Merging a bucket already on disk (a restart mid-minute, a late point) keeps the aggregate
# exact: the min of the mins, the max of the maxes, sums and counts added.
_UPSERT = """
INSERT INTO {table}(key, min, max, sum, count) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET min = min(min, excluded.min), max = max(max, excluded.max),
    sum = sum + excluded.sum, count = count + excluded.count
"""
_ROLLUP = """
INSERT OR REPLACE INTO samples_hourly(key, min, max, sum, count)
SELECT (((key >> 16) / 60) << 16) | (key & 65535) AS k, min(min), max(max), sum(sum), sum(count)
FROM {table} WHERE key >= ? AND key < ? GROUP BY k ORDER BY k
"""
_SPAN = """
UPDATE series SET first_minute = min(coalesce(first_minute, r.first), r.first),
    last_minute = max(coalesce(last_minute, r.last), r.last)
FROM (SELECT key & 65535 AS sid, min(key >> 16) AS first, max(key >> 16) AS last
      FROM {table} WHERE key >= ? AND key < ? GROUP BY sid) AS r
WHERE series.id = r.sid
"""


def open_db(path: Path) -> sqlite3.Connection:
    """Open (or create) the history file: WAL, synchronous=NORMAL, small pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only a new file takes it
    # WAL + synchronous=NORMAL: a commit appends checksummed frames to the -wal file without
    # an fsync; the WAL is fsynced before each checkpoint copies it into the main file. After
    # a power cut, recovery replays the WAL up to the last complete commit and ignores a torn
    # tail, so the file is never corrupt: what can be lost is the commits the kernel had not
    # yet written back (about 30 s on Linux), never an older batch. A killed process loses
    # nothing committed (the OS still has it). FULL would fsync every minute, for nothing more.
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    # Debian builds SQLite with secure_delete on: dropping a partition would then zero, i.e.
    # write, every page it frees. Energy readings are not secrets worth that wear.
    db.execute("PRAGMA secure_delete = OFF")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (a reader never blocks us)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class LocalHistory(HistoryReader):
    """One-minute aggregates per series, batched in memory and written once per flush.

    ``retention_days`` is kept at least, and at most ``partition_days`` more (a partition
    goes when all of it is older). ``partition_days`` only applies to a new file.
    """

    def __init__(self, path: Path, retention_days: int = 730, partition_days: int = 7) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.db = open_db(self.path)
        self.db_lock = threading.RLock()  # the connection: one transaction at a time
        self.dropped = 0  # buckets refused (too many series, or memory full)
        self._lock = threading.Lock()  # the in-memory buckets
        self._buckets: dict[Bucket, list[float]] = {}
        with self.db_lock:
            self.db.executescript(f"BEGIN IMMEDIATE; {HISTORY_SCHEMA} COMMIT;")
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('partition_minutes', ?)",
                            (partition_days * 1440,))
            self.partition_minutes = self._meta("partition_minutes", 0)
            self._rolled = self._meta("rolled_until", 0)  # hours before it are rolled up
            self._ids = self._load_ids()

    def _load_ids(self) -> dict[SeriesKey, int]:
        return {(m, tuple(sorted(json.loads(tags).items())), field): sid for sid, m, tags, field
                in self.db.execute("SELECT id, measurement, tags, field FROM series")}

    def close(self) -> None:
        """Close the connection (pending buckets are not written: flush first)."""
        with self.db_lock:
            self.db.close()

    def add(self, point: Point) -> None:
        """Aggregate one point into its minute buckets (one per field); no I/O."""
        minute = point.ts_ns // 60_000_000_000
        m, tags = point.measurement, point.tags
        with self._lock:
            buckets = self._buckets
            for name, value in point.fields:
                if not math.isfinite(value):  # flatten drops these; a NaN would poison min/max
                    continue
                key = (m, tags, name, minute)
                b = buckets.get(key)
                if b is not None:
                    b[0] = min(b[0], value)
                    b[1] = max(b[1], value)
                    b[2] += value
                    b[3] += 1
                elif len(buckets) < MAX_PENDING:
                    buckets[key] = [value, value, value, 1]
                else:
                    self.dropped += 1

    def flush(self, now: float, force: bool = False,
              also: Callable[[sqlite3.Connection], None] | None = None) -> int:
        """Write every closed minute (every minute with ``force``) in one transaction; ``also``
        writes more in that same transaction (the ledger, the delivery marks)."""
        current = int(now // 60)
        with self._lock:
            if force:
                batch, self._buckets = self._buckets, {}
            else:
                batch = {k: v for k, v in self._buckets.items() if k[3] < current}
                for k in batch:
                    del self._buckets[k]
        rolled = self._rolled
        try:
            with self.db_lock:
                ids = dict(self._ids)
                with transaction(self.db):
                    written, late = self._write(batch, ids)
                    self._rollup(current // 60, late)
                    if also is not None:
                        also(self.db)
                self._ids = ids  # only now: a rollback forgets the new series
        except BaseException:
            self._rolled = rolled  # the rollup rolled back too
            with self._lock:  # keep the batch for the next try, merged with what came since
                for key, b in batch.items():
                    cur = self._buckets.setdefault(key, [b[0], b[1], 0.0, 0])
                    cur[:] = min(cur[0], b[0]), max(cur[1], b[1]), cur[2] + b[2], cur[3] + b[3]
            raise
        return written

    def _write(self, batch: dict[Bucket, list[float]], ids: dict[SeriesKey, int]
               ) -> tuple[int, set[int]]:
        rows: list[tuple[int, float, float, float, int]] = []
        # Oldest first, so a new series' first_minute is its oldest minute.
        for (m, tags, field, minute), (lo, hi, total, count) in sorted(
                batch.items(), key=lambda item: item[0][3]):
            sid = ids.get((m, tags, field))
            if sid is None:
                if len(ids) >= MAX_SERIES:
                    self.dropped += 1
                    continue
                sid = ids[(m, tags, field)] = self._new_series(m, tags, field, minute)
            rows.append(((minute << SERIES_BITS) | sid, lo, hi, total, int(count)))
        rows.sort()  # key order: appends stay on the last pages
        size = self.partition_minutes
        for part, group in groupby(rows, key=lambda r: (r[0] >> SERIES_BITS) // size):
            table = partition_table(part)
            self.db.execute(PARTITION_DDL.format(table=table))  # a no-op once it exists
            self.db.executemany(_UPSERT.format(table=table), list(group))
        hours = {(r[0] >> SERIES_BITS) // 60 for r in rows}
        return len(rows), {h for h in hours if h < self._rolled}

    def _new_series(self, m: str, tags: Tags, field: str, minute: int) -> int:
        tags_json = json.dumps(dict(tags), sort_keys=True, separators=(",", ":"))
        self.db.execute("INSERT OR IGNORE INTO series(measurement, tags, field, first_minute) "
                        "VALUES (?, ?, ?, ?)", (m, tags_json, field, minute))
        return int(self.db.execute(
            "SELECT id FROM series WHERE measurement = ? AND tags = ? AND field = ?",
            (m, tags_json, field)).fetchone()[0])

    def _rollup(self, upto_hour: int, late: set[int]) -> None:
        """Recompute hourly rows from minutes: closed hours not yet rolled, and late data."""
        ranges = [(h, h + 1) for h in sorted(late)]
        if upto_hour > self._rolled:
            ranges.append((self._rolled, upto_hour))
        for a, b in ranges:
            for table, lo, hi in self._tables(a * 60, b * 60):  # an hour is in one partition
                self.db.execute(_ROLLUP.format(table=table), (lo, hi))
                self.db.execute(_SPAN.format(table=table), (lo, hi))
        if upto_hour > self._rolled:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('rolled_until', ?)", (upto_hour,))
            self._rolled = upto_hour

    def prune(self, now: float) -> int:
        """Drop the partitions wholly older than the retention, one per transaction; returns
        the minute and hourly rows deleted."""
        size = self.partition_minutes
        keep = int((now - self.retention_days * 86400) // 60) // size * size  # first kept minute
        deleted = 0
        with self.db_lock:
            parts = [p for p in self._partitions() if (p + 1) * size <= keep]
        for part in parts:
            with self.db_lock, transaction(self.db):
                table = partition_table(part)
                deleted += self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                self.db.execute(f"DROP TABLE {table}")
        with self.db_lock, transaction(self.db):
            deleted += self.db.execute("DELETE FROM samples_hourly WHERE key < ?",
                                       ((keep // 60) << SERIES_BITS,)).rowcount
            last = self._last_minutes()  # a series is forgotten once its last row is gone
            gone = [(sid,) for sid in self._ids.values() if last.get(sid, -1) < keep]
            self.db.executemany("DELETE FROM series WHERE id = ?", gone)
            self.db.execute("UPDATE series SET first_minute = ?1 WHERE first_minute < ?1",
                            (keep,))
            self._ids = self._load_ids()
        return deleted
