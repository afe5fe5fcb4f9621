"""Hourly energy of one local day from the minute history of the energy counters.

The ledger keeps whole days; the hourly bars of the page come from the counters' minute
rows instead: the energy of an hour is its last reading minus the hour before's last reading
(or its own first reading when the hour before has none: a fresh start loses nothing more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from services.core.history.read import HistoryReader
from services.core.history.schema import METER, PRODUCTION

IMPORT_FIELD, EXPORT_FIELD = "energy_import_wh", "energy_export_wh"


@dataclass(frozen=True)
class HourEnergy:
    """One local hour: Wh drawn, fed in, produced, and produced then used at home."""

    start: float  # epoch s
    import_wh: float | None
    export_wh: float | None
    production_wh: float | None
    self_consumption_wh: float | None


def scale_to_wh(field: str) -> float:
    """A counter field's unit by its name (DESIGN.md: units in the name)."""
    return 1000.0 if field.endswith("_kwh") else 1.0


def _sum(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


class HourlyReader(HistoryReader):
    """Adds hourly energy to the history read-back (the ledger names the counters)."""

    def _sources(self, kind: str) -> list[str]:
        with self.db_lock:
            rows = self.db.execute(
                "SELECT DISTINCT name FROM ledger_baselines WHERE kind = ?", (kind,)).fetchall()
        return sorted(name for (name,) in rows)

    def _deltas(self, measurement: str, field: str, device: str, t0: float, t1: float
                ) -> list[float | None]:
        """Wh per hour over [t0, t1) (t0 one hour before the first hour wanted)."""
        rows = self.series(measurement, field, t0, t1, 3600, tags={"device": device})
        scale = scale_to_wh(field)
        out: list[float | None] = []
        for before, now in pairwise(rows):
            last, first = now[3], now[1]
            if last is None or first is None:
                out.append(None)
                continue
            base = before[3] if before[3] is not None else first
            # A counter never goes back: a reset or a new meter shows as nothing, not < 0.
            out.append(max(0.0, (last - base) * scale))
        return out

    def hourly(self, day: date, tz: str) -> list[HourEnergy]:
        """The 24 (23 or 25 on a clock change) local hours of ``day``."""
        zone = ZoneInfo(tz)
        t0 = datetime.combine(day, time(), zone).timestamp()
        t1 = datetime.combine(day + timedelta(days=1), time(), zone).timestamp()
        hours = round((t1 - t0) / 3600)
        imp: list[float | None] = [None] * hours
        exp: list[float | None] = [None] * hours
        prod: list[float | None] = [None] * hours
        for meter in self._sources(METER):
            for i, v in enumerate(self._deltas("teleinfo", IMPORT_FIELD, meter, t0 - 3600, t1)):
                imp[i] = _sum(imp[i], v)
            for i, v in enumerate(self._deltas("teleinfo", EXPORT_FIELD, meter, t0 - 3600, t1)):
                exp[i] = _sum(exp[i], v)
        for name in self._sources(PRODUCTION):
            service, device, field = name.split("/", 2)
            for i, v in enumerate(self._deltas(service, field, device, t0 - 3600, t1)):
                prod[i] = _sum(prod[i], v)
        out = []
        for i in range(hours):
            # Self-consumption: what was produced and not fed in (the ledger's rule, per hour).
            p = prod[i]
            own = None if p is None else max(0.0, p - (exp[i] or 0.0))
            out.append(HourEnergy(t0 + i * 3600, imp[i], exp[i], prod[i], own))
        return out
