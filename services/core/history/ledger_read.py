"""Read-back of the daily energy ledger the historian writes (for the API and exports).

Shared through core because the api service reads it without importing the historian:
the tables (``schema.LEDGER_SCHEMA``) are the contract.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from services.core.history.schema import EXPORT, METER, PRODUCTION
from services.core.history.tariffs import TariffBook

__all__ = ["EXPORT", "METER", "PRODUCTION", "Anomaly", "DayRow", "LedgerReader"]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A counter reading that was not summed: ``backwards``, ``jump`` or ``meter_swap``."""

    day: date
    kind: str
    meter: str
    index: str
    old: float | None
    new: float | None
    ts: float
    reason: str


@dataclass(frozen=True, slots=True)
class DayRow:
    """One meter's local day: energy per index, costs (None without a tariff), production."""

    day: date
    meter: str
    import_wh_by_index: dict[str, float]
    import_cost_eur_by_index: dict[str, float | None]
    import_wh: float
    import_cost_eur: float | None  # energy only; None if any used index has no price
    subscription_eur: float | None
    total_cost_eur: float | None  # energy + subscription
    export_wh: float
    export_revenue_eur: float | None
    production_wh: float  # every production source of the site
    self_consumption_wh: float
    self_sufficiency: float | None
    flags: int  # anomalies of this meter and of production sources that day


class LedgerReader:
    """Daily rows and anomalies from the ledger tables, priced with a tariff book."""

    db: sqlite3.Connection
    db_lock: threading.RLock
    tariffs: TariffBook

    def daily(self, start: date, end: date, meter: str | None = None) -> list[DayRow]:
        """One row per local day (start..end inclusive) and meter with readings that day."""
        span = (start.isoformat(), end.isoformat())
        meters: defaultdict[str, defaultdict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict))
        production: defaultdict[str, float] = defaultdict(float)
        flags: defaultdict[tuple[str, str | None], int] = defaultdict(int)
        with self.db_lock:
            for day, kind, name, idx, wh in self.db.execute(
                "SELECT day, kind, name, idx, wh FROM ledger_days WHERE day BETWEEN ? AND ?", span
            ):
                if kind == METER:
                    meters[day][name][idx] = wh
                else:
                    production[day] += wh
            for day, kind, name, n in self.db.execute(
                "SELECT day, kind, meter, count(*) FROM anomalies WHERE day BETWEEN ? AND ? "
                "GROUP BY day, kind, meter", span,
            ):
                flags[(day, name if kind == METER else None)] += n
        rows = []
        for day in sorted(meters):
            for name in sorted(meters[day]):
                if meter is None or name == meter:
                    n = flags[(day, name)] + flags[(day, None)]
                    rows.append(self._row(date.fromisoformat(day), name, meters[day][name],
                                          production[day], n))
        return rows

    def _row(self, day: date, meter: str, counters: dict[str, float], production: float,
             flags: int) -> DayRow:
        tariff = self.tariffs.for_day(day)
        by_index = {i: wh for i, wh in sorted(counters.items()) if i != EXPORT}
        prices = tariff.prices_eur_per_kwh if tariff else {}
        costs = {i: None if (p := prices.get(i)) is None else wh / 1000 * p
                 for i, wh in by_index.items()}
        import_wh = sum(by_index.values())
        # Energy with no price is an unknown cost, never a free one.
        unpriced = tariff is None or any(c is None and by_index[i] for i, c in costs.items())
        import_cost = None if unpriced else sum(c for c in costs.values() if c is not None)
        subscription = tariff.subscription_eur_per_day if tariff else None
        export_wh = counters.get(EXPORT, 0.0)
        own = max(0.0, production - export_wh)
        return DayRow(
            day=day, meter=meter, import_wh_by_index=by_index, import_cost_eur_by_index=costs,
            import_wh=import_wh, import_cost_eur=import_cost, subscription_eur=subscription,
            total_cost_eur=None if import_cost is None or subscription is None
            else import_cost + subscription,
            export_wh=export_wh,
            export_revenue_eur=None if tariff is None
            else export_wh / 1000 * tariff.export_eur_per_kwh,
            production_wh=production, self_consumption_wh=own,
            self_sufficiency=own / (own + import_wh) if own + import_wh > 0 else None,
            flags=flags,
        )

    def anomalies(self, start: date, end: date) -> list[Anomaly]:
        """Flagged readings of the local days start..end (inclusive), oldest first."""
        with self.db_lock:
            rows = self.db.execute(
                "SELECT day, kind, meter, idx, old, new, ts, reason FROM anomalies "
                "WHERE day BETWEEN ? AND ? ORDER BY ts, id", (start.isoformat(), end.isoformat()),
            ).fetchall()
        return [Anomaly(date.fromisoformat(r[0]), *r[1:]) for r in rows]
