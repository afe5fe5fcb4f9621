"""Hourly energy and production from what the historian really writes (LocalHistory + Ledger).

A Linky (import and export counters) and an inverter's ac_energy_wh, or a Victron charger's
yield_total_kwh, fed every 5 min through a morning: the hourly bars and the day's production
and self-consumption are non-zero and add up.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.core.history.hourly import HourlyReader
from services.core.history.ledger_read import LedgerReader
from services.core.history.tariffs import TariffBook
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger
from services.historian.points import Point

TZ = "Europe/Paris"
DAY = date(2026, 6, 15)


class Reader(HourlyReader, LedgerReader):
    def __init__(self, history: LocalHistory) -> None:
        self.db, self.db_lock = history.db, history.db_lock
        self.tariffs = TariffBook(tariffs=[])


def point(service: str, device: str, ts: float, **fields: float) -> Point:
    return Point(service, (("device", device),), tuple(sorted(fields.items())), int(ts * 1e9))


@pytest.mark.parametrize(("service", "field", "scale"), [
    ("inverter", "ac_energy_wh", 1.0), ("vedirect", "yield_total_kwh", 0.001)])
def test_hours_and_self_consumption_from_a_real_writer(
        tmp_path: Path, service: str, field: str, scale: float) -> None:
    history = LocalHistory(tmp_path / "h.sqlite3")
    ledger = Ledger(history, TariffBook(tariffs=[]), tz=TZ)
    t0 = datetime.combine(DAY, time(6), ZoneInfo(TZ)).timestamp()
    imp, exp, prod = 10_000.0, 500.0, 2_000.0
    for i in range(6 * 12 + 1):  # 06:00 to 12:00 every 5 min
        ts = t0 + i * 300
        hour = i // 12
        imp += 50 if hour < 3 else 5      # the house draws in the morning
        prod += 20 * hour                 # the sun rises
        exp += 10 if hour >= 4 else 0     # and feeds in late morning
        history.add(point("teleinfo", "linky", ts, energy_import_wh=imp, energy_export_wh=exp))
        history.add(point(service, "pv", ts, **{field: prod * scale}))
        ledger.observe_meter("linky", ts, {"base": int(imp)}, int(exp), "m1")
        ledger.observe_production(f"{service}/pv/{field}", ts, prod)

    def also(db: sqlite3.Connection) -> None:  # as the historian service writes the ledger
        ledger.write(db, ledger.take())

    history.flush(t0 + 86400, force=True, also=also)
    reader = Reader(history)

    hours = reader.hourly(DAY, TZ)
    assert len(hours) == 24
    assert all(h.import_wh is None for h in hours[:6])  # before the first reading
    at = {round((h.start - t0) / 3600): h for h in hours}
    assert at[0].import_wh == pytest.approx(11 * 50)  # its own first reading is the base
    assert at[1].import_wh == pytest.approx(12 * 50)
    assert at[4].export_wh == pytest.approx(12 * 10)
    assert at[5].production_wh == pytest.approx(12 * 20 * 5)
    assert at[5].self_consumption_wh == pytest.approx(12 * 20 * 5 - 12 * 10)
    total_prod = sum(h.production_wh or 0 for h in hours)
    row = reader.daily(DAY, DAY)[0]
    assert row.production_wh > 0 and row.self_consumption_wh > 0
    # The hours miss only the first reading's step (no base before it).
    assert total_prod == pytest.approx(row.production_wh)


def test_a_day_without_readings_has_empty_hours(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "h.sqlite3")
    Ledger(history, TariffBook(tariffs=[]), tz=TZ)
    hours = Reader(history).hourly(DAY + timedelta(days=1), TZ)
    assert len(hours) == 24 and all(h.import_wh is None for h in hours)
