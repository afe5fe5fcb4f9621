"""An off-grid day against the pure engine: PvMonit's idiom, no export to see.

Loads run while the charger is in absorption/float and the battery is not discharging beyond
`discharge_a`; past it the lowest-priority load that is on gives way. run_day checks the
invariants on every tick.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta

from tests.automation.days import Script, Values, at, run_day
from tests.automation.scenario_days import config

DAY = "2026-06-15"
H, P = "water-heater", "pump"
VOLTS = 48.0
POWER = {H: 2000.0, P: 500.0}
OFFGRID = {"offgrid": {"charger": "charger", "battery_current": "battery_a", "discharge_a": 2},
           "step_s": 60}


def loads(**pump: object) -> list[dict[str, object]]:
    """The heater first, the pump second (``pump``: its extra keys)."""
    return [{"relay": H, "power_w": POWER[H], "priority": 1,
             "surplus": {"on_after_s": 60, "off_after_s": 180}},
            {"relay": P, "power_w": POWER[P], "priority": 2,
             "surplus": {"on_after_s": 60, "off_after_s": 300}, **pump}]


FLOAT_FROM, WEAKER, BULK_FROM = at(DAY, "12:00"), at(DAY, "14:00"), at(DAY, "16:00")


def signals(now: datetime, out: Mapping[str, str]) -> Values:
    """Float from noon to 16:00; the panels give the battery 60 A, then 45 A from 14:00."""
    pv_a = 60.0 if now < WEAKER else 45.0
    drawn_a = sum(w for r, w in POWER.items() if out[r] == "on") / VOLTS
    charger = "float" if FLOAT_FROM <= now < BULK_FROM else "bulk"
    return {"charger": charger, "battery_a": pv_a - drawn_a}


def test_offgrid_float_then_the_battery_discharges_the_last_load_gives_way() -> None:
    cfg = config(loads(min_off_s=900, max_starts_per_hour=3), surplus=OFFGRID)
    day = run_day(cfg, Script(signals=signals), at(DAY, "11:00"), at(DAY, "17:00"), step_s=5)
    # Charging hard but in bulk: nothing runs.
    assert all(d[H].wish == "off" and d[P].wish == "off"
               for t, d in day.ticks if t < FLOAT_FROM)
    # Float and charging: both on, one switch-on per step, the heater first.
    (heater,) = day.on_spans(H)
    pump = day.on_spans(P)
    assert FLOAT_FROM + timedelta(seconds=60) <= heater[0] <= FLOAT_FROM + timedelta(seconds=65)
    assert pump[0][0] - heater[0] == timedelta(seconds=60)
    assert day.at(at(DAY, "13:00"))[P].status == "surplus"
    # 45 A against 52 A drawn: the battery discharges 7 A > 2 A. The pump, lowest priority,
    # loses its allotment and goes off after its off_after_s; the heater stays.
    assert WEAKER + timedelta(seconds=300) <= pump[0][1] <= WEAKER + timedelta(seconds=310)
    assert day.at(pump[0][1])[H].wish == "on"
    assert all(d[H].wish == "on" for t, d in day.ticks if heater[0] <= t < BULK_FROM)
    # Out of float: the pump gives way first, then the heater after its own off_after_s.
    assert pump[-1][1] <= heater[1]
    assert BULK_FROM + timedelta(seconds=180) <= heater[1] <= BULK_FROM + timedelta(minutes=10)
    assert all(d[H].wish == "off" and d[P].wish == "off" for t, d in day.ticks
               if t >= heater[1])


def test_offgrid_the_load_that_gave_way_backs_off() -> None:
    """From 14:00 the pump does not fit: each try costs the battery, so each give-way doubles
    the wait before the next try (on_after_s x 2^n, n give-ways in the last hour)."""
    day = run_day(config(loads(), surplus=OFFGRID), Script(signals=signals), at(DAY, "11:00"),
                  at(DAY, "16:00"), step_s=5)
    tries = [span for span in day.on_spans(P) if span[0] >= WEAKER]
    assert 3 <= len(tries) <= 6  # without the back-off: 20 runs of 5 min in these 2 h
    waits = [(b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(tries)]
    assert waits == sorted(waits) and waits[0] >= 2 * 60
    assert len(day.on_spans(H)) == 1  # the heater never gave way


def test_offgrid_reasons_say_what_the_charger_and_battery_do() -> None:
    cfg = config(loads(min_off_s=900, max_starts_per_hour=3), surplus=OFFGRID)
    day = run_day(cfg, Script(signals=signals), at(DAY, "11:30"), at(DAY, "14:30"), step_s=5)
    unknown = {d[r].reason_en for _, d in day.ticks for r in (H, P) if "?" in d[r].reason_en}
    assert not unknown, unknown
