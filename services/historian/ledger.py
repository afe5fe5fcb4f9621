"""Daily energy ledger: Wh per local day, meter and tariff index, from the meters' own
counters (never from integrated power), priced with that day's tariff.

Each counter has a baseline (last value and time). A reading adds value − baseline to the
local days it spans, in proportion to time; a counter that went backwards or rose faster
than ``max_power_w`` allows is flagged in ``anomalies`` instead, and the baseline moves on.
Baselines and day totals are written in the same transaction, so after a crash or a
historian outage the first reading counts the whole gap from the last written baseline:
nothing is lost or counted twice, only spread over the gap's days in proportion to time.

Time sanity: a reading is booked only if its time is after 2000 and at most
``FUTURE_SLACK_S`` ahead of the box's clock (a day that has not happened is never booked),
and after its counter's baseline: an older reading (a replay, or a box clock stepped back
before NTP) is ignored and the baseline stays where it was. A stored baseline from the
future (written before this rule) is forgotten at start, so it cannot freeze its counter.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time as clock
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.core.history.ledger_read import LedgerReader
from services.core.history.schema import ENERGY, EXPORT, LEDGER_SCHEMA, METER, PRODUCTION
from services.core.history.tariffs import TariffBook
from services.historian.history import LocalHistory, open_db, transaction

Counter = tuple[str, str, str]  # kind, meter or source name, index
# day, kind, meter, index, old, new, ts, reason
Anomaly = tuple[str, str, str, str, float | None, float | None, float, str]
MIN_TS = 946_684_800.0  # 2000-01-01T00:00:00Z: anything older is a clock that was never set
FUTURE_SLACK_S = 300.0  # devices' clocks drift a little ahead of the box's; a day does not


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Ledger(LedgerReader):
    """Daily energy per meter and index, accumulated in memory, written by ``flush``."""

    def __init__(
        self, db: LocalHistory | sqlite3.Connection | Path | str, tariffs: TariffBook,
        tz: str = "Europe/Paris", max_power_w: float = 36_000.0,
        now: Callable[[], float] = clock.time,
    ) -> None:
        if isinstance(db, LocalHistory):  # share its connection and its transactions' lock
            self.db, self.db_lock = db.db, db.db_lock
        elif isinstance(db, sqlite3.Connection):
            self.db, self.db_lock = db, threading.RLock()
        else:
            self.db, self.db_lock = open_db(Path(db)), threading.RLock()
        self.tariffs = tariffs
        self.tz = ZoneInfo(tz)
        self.max_power_w = max_power_w
        self.now = now
        self.ignored = 0  # readings refused for their time (before 2000, future, or old)
        self._lock = threading.Lock()
        self._days: defaultdict[tuple[str, str, str, str], float] = defaultdict(float)
        self._anomalies: list[Anomaly] = []
        self._dirty: set[Counter] = set()
        self._reset: set[str] = set()  # meters swapped: their stored baselines are dropped
        self._ids_dirty: set[str] = set()
        self._today = (0.0, 0.0, "")  # cached local day: start, end, ISO date
        with self.db_lock:
            self.db.executescript(f"BEGIN IMMEDIATE; {LEDGER_SCHEMA} COMMIT;")
            self._base: dict[Counter, tuple[float, float]] = {
                (k, n, i): (v, t) for k, n, i, v, t in self.db.execute(
                    "SELECT kind, name, idx, value, ts FROM ledger_baselines")
                if MIN_TS <= t <= now() + FUTURE_SLACK_S
            }
            self._meter_ids: dict[str, str] = dict(
                self.db.execute("SELECT name, meter_id FROM ledger_meters").fetchall())

    # -- observing ----------------------------------------------------------------------------

    def observe_meter(
        self, meter: str, ts: float, indexes: dict[str, int], export_wh: int | None,
        meter_id: str | None,
    ) -> None:
        """A reading of a meter's import indexes (Wh, by index name) and export counter."""
        if not self._sane(ts):
            return
        with self._lock:
            if meter_id is not None and self._meter_ids.get(meter) != meter_id:
                self._swap(meter, ts, indexes, export_wh, meter_id)
            for idx, value in indexes.items():
                v = _number(value)
                if v is not None:
                    self._counter((METER, meter, str(idx)), ts, v)
            v = _number(export_wh)
            if v is not None:
                self._counter((METER, meter, EXPORT), ts, v)

    def observe_production(self, source: str, ts: float, energy_wh: float) -> None:
        """A reading of a monotonic production counter (Wh)."""
        v = _number(energy_wh)
        if v is not None and self._sane(ts):
            with self._lock:
                self._counter((PRODUCTION, source, ENERGY), ts, v)

    def _sane(self, ts: float) -> bool:
        """A time the ledger may book: after 2000 and not ahead of the box's clock."""
        if MIN_TS <= ts <= self.now() + FUTURE_SLACK_S:
            return True
        self.ignored += 1
        return False

    def _swap(self, meter: str, ts: float, indexes: dict[str, int], export_wh: int | None,
              meter_id: str) -> None:
        """A new meter number: every baseline of the old meter is flagged and forgotten."""
        known = self._meter_ids.get(meter)
        self._meter_ids[meter] = meter_id
        self._ids_dirty.add(meter)
        if known is None:  # first number seen for this meter: nothing to compare
            return
        new: dict[str, Any] = {**indexes, EXPORT: export_wh}
        for key in [k for k in self._base if k[0] == METER and k[1] == meter]:
            old, _ = self._base.pop(key)
            self._flag(key, old, _number(new.get(key[2])), ts, "meter_swap")
            self._dirty.discard(key)
        self._reset.add(meter)

    def _counter(self, key: Counter, ts: float, value: float) -> None:
        prev = self._base.get(key)
        if prev is None:
            self._base[key] = (value, ts)
            self._dirty.add(key)
            return
        old, old_ts = prev
        if ts <= old_ts:
            # An older reading: a retained state again after a reconnect, or a clock stepped
            # back. Booking it would move the baseline back in time: ignored.
            self.ignored += 1
            return
        end = ts
        self._base[key] = (value, end)
        self._dirty.add(key)
        delta = value - old
        if delta < 0:
            self._flag(key, old, value, ts, "backwards")
        elif delta > self.max_power_w * (end - old_ts) / 3600 * 1.5 + 10:
            self._flag(key, old, value, ts, "jump")
        else:  # zero too: the day shows the counter was read
            for day, wh in self._split(old_ts, end, delta):
                self._days[(day, *key)] += wh

    def _flag(self, key: Counter, old: float | None, new: float | None, ts: float,
              reason: str) -> None:
        self._anomalies.append((self._day_of(ts)[0], *key, old, new, ts, reason))

    def _day_of(self, t: float) -> tuple[str, float]:
        """ISO local date of ``t`` and the epoch of the next local midnight."""
        lo, hi, iso = self._today
        if not lo <= t < hi:
            d = datetime.fromtimestamp(t, self.tz).date()
            lo = datetime.combine(d, time(), self.tz).timestamp()
            hi = datetime.combine(d + timedelta(days=1), time(), self.tz).timestamp()
            iso = d.isoformat()
            self._today = (lo, hi, iso)
        return iso, hi

    def _split(self, t0: float, t1: float, wh: float) -> list[tuple[str, float]]:
        """``wh`` spread over the local days of [t0, t1] in proportion to time."""
        day, midnight = self._day_of(t0)
        if t1 <= midnight:
            return [(day, wh)]
        parts, t, left = [], t0, wh
        while t1 > midnight:
            share = wh * (midnight - t) / (t1 - t0)
            parts.append((day, share))
            left -= share
            t = midnight
            day, midnight = self._day_of(t)
        parts.append((day, left))  # the remainder: parts add up to wh exactly
        return parts

    # -- writing ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write day totals, baselines and anomalies in one transaction; rows written."""
        batch = self.take()
        if batch.empty:
            return 0
        try:
            with self.db_lock, transaction(self.db):
                return self.write(self.db, batch)
        except BaseException:
            self.restore(batch)  # keep everything for the next try
            raise

    def take(self) -> LedgerBatch:
        """What changed since the last take, for ``write`` (the caller's transaction)."""
        with self._lock:
            days, self._days = self._days, defaultdict(float)
            anomalies, self._anomalies = self._anomalies, []
            dirty, self._dirty = self._dirty, set()
            reset, self._reset = self._reset, set()
            ids_dirty, self._ids_dirty = self._ids_dirty, set()
            bases = [(*k, *self._base[k]) for k in dirty if k in self._base]
            ids = [(m, self._meter_ids[m]) for m in ids_dirty]
        return LedgerBatch(days, anomalies, dirty, reset, ids_dirty, bases, ids)

    def write(self, db: sqlite3.Connection, batch: LedgerBatch) -> int:
        """Write a batch inside the caller's transaction (``db_lock`` held); rows written."""
        for meter in batch.reset:
            db.execute("DELETE FROM ledger_baselines WHERE kind = ? AND name = ?",
                       (METER, meter))
        db.executemany("INSERT OR REPLACE INTO ledger_baselines VALUES (?, ?, ?, ?, ?)",
                       batch.bases)
        db.executemany("INSERT OR REPLACE INTO ledger_meters VALUES (?, ?)", batch.ids)
        db.executemany(
            "INSERT INTO ledger_days VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
            "SET wh = wh + excluded.wh", [(*k, wh) for k, wh in sorted(batch.days.items())])
        db.executemany("INSERT INTO anomalies(day, kind, meter, idx, old, new, ts, "
                       "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch.anomalies)
        return len(batch.days) + len(batch.anomalies) + len(batch.bases) + len(batch.ids)

    def restore(self, batch: LedgerBatch) -> None:
        """Put back a batch whose transaction rolled back, merged with what came since."""
        with self._lock:
            for k, wh in batch.days.items():
                self._days[k] += wh
            self._anomalies[:0] = batch.anomalies
            self._dirty |= batch.dirty
            self._reset |= batch.reset
            self._ids_dirty |= batch.ids_dirty


@dataclass(slots=True)
class LedgerBatch:
    """The ledger's changes since the last flush, as ``Ledger.take`` hands them out."""

    days: dict[tuple[str, str, str, str], float]
    anomalies: list[Anomaly]
    dirty: set[Counter]
    reset: set[str]
    ids_dirty: set[str]
    bases: list[tuple[str, str, str, float, float]]
    ids: list[tuple[str, str]]

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return not (self.days or self.anomalies or self.dirty or self.reset or self.ids_dirty)
