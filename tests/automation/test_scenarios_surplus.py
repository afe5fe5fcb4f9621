"""Surplus days against the pure engine: clouds, a kettle, import, half sun, priorities.

Each day runs through days.run_day, which checks DESIGN.md's invariants on every tick (never
on inside a block, min on/off, starts per hour, nothing decided on stale input, a reason for
every change); the tests add each day's own expectations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from itertools import cycle, pairwise
from typing import Any

from services.automation.daily import output_is_on
from tests.automation.days import Script, Values, at, run_day
from tests.automation.scenario_days import config, most_starts_in_an_hour, on_seconds, starts

SUMMER = "2026-07-01"
NEXT = "2026-07-02"
H = "water-heater"


def heater(power_w: float = 3000, **extra: Any) -> dict[str, Any]:
    """DESIGN.md's water heater, routed on surplus (no thermostat: done_when left out)."""
    return {"relay": H, "power_w": power_w, "priority": 1,
            "surplus": {"margin_w": 100, "on_after_s": 60, "off_import_w": 200,
                        "off_after_s": 180},
            "min_on_s": 600, "min_off_s": 300, "max_starts_per_hour": 4, **extra}


def routed(surplus_w: Callable[[datetime], float], powers: Mapping[str, float]
           ) -> Callable[[datetime, Mapping[str, str]], Values]:
    """The meter sees the home's surplus less what the routed loads now on draw."""
    def signals(now: datetime, out: Mapping[str, str]) -> Values:
        drawn = sum(p for relay, p in powers.items() if output_is_on(out[relay]))
        return {"grid": -surplus_w(now) + drawn}
    return signals


# --- a cumulus day: surplus 0 <-> 3 kW every few minutes ------------------------------------

# Minutes of sun, cloud, sun, ... (cumulus passing: 1 to 6 minutes each), repeated all day.
CUMULUS_MIN = (4, 2, 5, 3, 1, 6, 2, 4, 3, 5, 6, 1, 2, 3, 5, 2)


def cumulus_edges(start: datetime, end: datetime) -> list[tuple[datetime, bool]]:
    """(from when, sunny) for the passing clouds."""
    edges: list[tuple[datetime, bool]] = []
    t, sunny = start, True
    for minutes in cycle(CUMULUS_MIN):
        if t > end:
            return edges
        edges.append((t, sunny))
        t, sunny = t + timedelta(minutes=minutes), not sunny
    raise AssertionError("unreachable")


def test_cumulus_day_no_chatter_and_most_of_the_sun_heats_water() -> None:
    start, end = at(SUMMER, "10:00"), at(SUMMER, "16:00")
    edges = cumulus_edges(start, end)

    def surplus_w(now: datetime) -> float:
        return 3000.0 if [s for t, s in edges if t <= now][-1] else 0.0

    load = heater(2400)
    day = run_day(config([load]), Script(signals=routed(surplus_w, {H: 2400})), start, end,
                  step_s=5)
    # No chatter: under the cap in any hour, and each run and each pause at least
    # min_on_s / min_off_s (run_day's invariants check the same tick by tick).
    assert 0 < most_starts_in_an_hour(day, H) <= 4
    spans = day.on_spans(H)
    assert all((e - s).total_seconds() >= 600 for s, e in spans[:-1])
    assert all((b[0] - a[1]).total_seconds() >= 300 for a, b in pairwise(spans))
    assert len(starts(day, H)) <= 4 * 6
    # Most of the sunny time heats water.
    sunny_s = sum(5 for t, _ in day.ticks if surplus_w(t) > 0)
    heated_sunny_s = sum(5 for t, d in day.ticks if surplus_w(t) > 0
                         and output_is_on(d[H].wish))
    assert heated_sunny_s > 0.5 * sunny_s, (heated_sunny_s, sunny_s)


# --- a kettle while routing; sustained import -----------------------------------------------


def test_kettle_spike_while_routing_the_heater_rides_it_out() -> None:
    kettle = (at(SUMMER, "11:00"), at(SUMMER, "11:02"))

    def signals(now: datetime, out: Mapping[str, str]) -> Values:
        boiling = 2000.0 if kettle[0] <= now < kettle[1] else 0.0
        return {"grid": -4500.0 + (3000.0 if out[H] == "on" else 0.0) + boiling}

    day = run_day(config([heater()]), Script(signals=signals), at(SUMMER, "10:00"),
                  at(SUMMER, "12:00"), step_s=5)
    (span,) = day.on_spans(H)
    assert span[0] < at(SUMMER, "10:05") and span[1] == at(SUMMER, "12:00")
    # The kettle makes the meter import 500 W for two minutes: the allocator's off_after_s
    # (180 s) rides it out, not min_on_s (the heater has been on for almost an hour).
    during = [d[H] for t, d in day.ticks if kettle[0] <= t < kettle[1] + timedelta(minutes=1)]
    assert all(d.wish == "on" and d.status == "surplus" for d in during)


def test_sustained_import_the_routed_heater_goes_off_after_off_after_s() -> None:
    clouds = at(SUMMER, "12:00")

    def surplus_w(now: datetime) -> float:
        return 4500.0 if now < clouds else -300.0  # the house draws 300 W, no sun

    day = run_day(config([heater()]), Script(signals=routed(surplus_w, {H: 3000})),
                  at(SUMMER, "10:00"), at(SUMMER, "13:00"), step_s=5)
    (span,) = day.on_spans(H)
    # The smoothed surplus (60 s) falls under power_w - off_import_w some 25 s after the
    # clouds; off_after_s (180 s) later the heater goes off.
    assert clouds + timedelta(seconds=180) < span[1] <= clouds + timedelta(seconds=240), span
    assert day.at(span[1])[H].wish == "off"
    assert day.at(span[1] - timedelta(seconds=5))[H].status == "surplus"
    assert day.ticks[-1][1][H].wish == "off"


# --- a half-sunny day: part of the minimum by surplus, the rest caught up in HC --------------


def test_half_sunny_day_part_solar_part_catch_up_at_the_latest_start() -> None:
    load = heater(daily={"min_on": "3h", "catch_up": "offpeak"})
    sunny = (at(SUMMER, "11:00"), at(SUMMER, "12:30"))

    def surplus_w(now: datetime) -> float:
        return 4500.0 if sunny[0] <= now < sunny[1] else -300.0

    cfg = config([load], offpeak=["22:00-06:00"], tick_s=20)
    day = run_day(cfg, Script(signals=routed(surplus_w, {H: 3000})), at(SUMMER, "06:00"),
                  at(NEXT, "06:10"), step_s=20)
    solar, catch_up = day.on_spans(H)
    assert sunny[0] < solar[0] < sunny[0] + timedelta(minutes=5)
    assert day.at(solar[0])[H].status == "surplus"
    solar_s = (solar[1] - solar[0]).total_seconds()
    assert 3600 < solar_s < 3 * 3600
    # After the sun: what is owed, and the latest start that still fits before 06:00.
    afternoon = day.at(at(SUMMER, "15:00"))[H]
    assert afternoon.wish == "off" and afternoon.remaining_s == 3 * 3600 - solar_s
    assert afternoon.latest_start == at(NEXT, "06:00") - timedelta(seconds=3 * 3600 - solar_s)
    # The rest is caught up from that latest start, in the off-peak hours, to 06:00.
    assert catch_up[0] - afternoon.latest_start < timedelta(seconds=20)
    assert catch_up[1] == at(NEXT, "06:00")
    assert day.at(catch_up[0])[H].status == "catch_up"
    assert abs(on_seconds(day, H, end=at(NEXT, "06:00")) - 3 * 3600) <= 20
    assert day.at(at(NEXT, "05:59:40"))[H].remaining_s == 20  # the last tick's 20 s


# --- several routed loads: priorities, and equal priorities rotated by day --------------------


def test_two_loads_by_priority_the_first_served_first_the_second_gives_way_first() -> None:
    pump = {"relay": "pool-pump", "power_w": 900, "priority": 2,
            "surplus": {"margin_w": 50, "on_after_s": 120, "off_import_w": 100,
                        "off_after_s": 300}}
    levels = [(at(SUMMER, "10:00"), 1500.0), (at(SUMMER, "10:30"), 4500.0),
              (at(SUMMER, "11:30"), 3200.0), (at(SUMMER, "12:30"), 800.0)]

    def surplus_w(now: datetime) -> float:
        return [w for t, w in levels if t <= now][-1]

    day = run_day(config([heater(), pump]),
                  Script(signals=routed(surplus_w, {H: 3000, "pool-pump": 900})),
                  at(SUMMER, "10:00"), at(SUMMER, "13:00"), step_s=5)
    # 1.5 kW: the heater does not fit, the pump does.
    assert day.at(at(SUMMER, "10:20"))[H].wish == "off"
    assert day.at(at(SUMMER, "10:20"))["pool-pump"].wish == "on"
    # 4.5 kW: both (the heater first in line, the pump keeps its share).
    both = day.at(at(SUMMER, "11:00"))
    assert both[H].wish == "on" and both["pool-pump"].wish == "on"
    assert both[H].status == "surplus" and both["pool-pump"].status == "surplus"
    # 3.2 kW: only the first fits; the lower priority gives way, after its off_after_s.
    pump_off = [e for s, e in day.on_spans("pool-pump") if s < at(SUMMER, "11:30") < e]
    assert pump_off and at(SUMMER, "11:35") <= pump_off[0] <= at(SUMMER, "11:37"), pump_off
    assert day.at(at(SUMMER, "12:00"))[H].wish == "on"
    # 0.8 kW: the heater goes; the pump (0.9 kW + margin) does not come back.
    end = day.ticks[-1][1]
    assert end[H].wish == "off" and end["pool-pump"].wish == "off"


def _equal_pair_first_on(day_: str) -> str:
    """Two 1 kW loads of equal priority and room for one: which gets it that day."""
    loads = [{"relay": r, "power_w": 1000, "priority": 1,
              "surplus": {"margin_w": 50, "on_after_s": 60, "off_import_w": 100,
                          "off_after_s": 180}} for r in ("pump-a", "pump-b")]
    day = run_day(config(loads), Script(signals=routed(lambda now: 1500.0,
                                                       {"pump-a": 1000, "pump-b": 1000})),
                  at(day_, "10:00"), at(day_, "11:00"), step_s=5)
    on = {r for r in ("pump-a", "pump-b") if day.ticks[-1][1][r].wish == "on"}
    assert len(on) == 1, on
    assert all(len(day.on_spans(r)) <= 1 for r in ("pump-a", "pump-b"))
    return on.pop()


def test_equal_priorities_take_turns_day_by_day() -> None:
    first, second, third = (_equal_pair_first_on(d)
                            for d in ("2026-07-01", "2026-07-02", "2026-07-03"))
    assert first != second and third == first


def test_a_higher_priority_load_takes_the_surplus_from_a_lower_one_which_gives_way() -> None:
    pump = {"relay": "pool-pump", "power_w": 900, "priority": 2,
            "surplus": {"margin_w": 50, "on_after_s": 120, "off_import_w": 100,
                        "off_after_s": 300}}
    more = at(SUMMER, "10:30")

    def surplus_w(now: datetime) -> float:
        return 1500.0 if now < more else 3200.0  # room for the pump, then for the heater only

    day = run_day(config([heater(), pump]),
                  Script(signals=routed(surplus_w, {H: 3000, "pool-pump": 900})),
                  at(SUMMER, "10:00"), at(SUMMER, "11:30"), step_s=5)
    (pump_run,) = day.on_spans("pool-pump")
    (heater_run,) = day.on_spans(H)
    # The heater comes first in line once 3.2 kW covers it with the pump's share added back
    # (the 60 s average reaches power_w + margin_w + reserve_w in 211 s, then on_after_s);
    # the pump, no longer allotted, goes off after its off_after_s.
    assert more + timedelta(seconds=270) <= heater_run[0] <= more + timedelta(seconds=280)
    assert heater_run[0] < pump_run[1]
    # The pump lost its share when the heater was allotted, on_after_s (60 s) before it
    # switched on: off 300 s after that.
    assert pump_run[1] == heater_run[0] - timedelta(seconds=60) + timedelta(seconds=300)
    assert heater_run[1] == at(SUMMER, "11:30")
