"""Both 2026 DST days (Europe/Paris) against the pure engine: a 23 h and a 25 h automation day.

The clock here runs in UTC (days.run_day adds its step to the datetime it is given; from a
Paris time it would step the wall clock, repeating the spring hour and skipping the autumn
one). Real durations are compared as epoch seconds. run_day checks the invariants every tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.automation.days import PARIS, Day, Script, at, run_day
from tests.automation.scenario_days import config, on_seconds

H = "water-heater"
SPRING = ("2026-03-28", "2026-03-29")  # the automation day, and the date the clocks change
AUTUMN = ("2026-10-24", "2026-10-25")
NIGHTS = pytest.mark.parametrize(("first", "change", "hours"), [(*SPRING, 23), (*AUTUMN, 25)],
                                 ids=["spring-23h", "autumn-25h"])


def utc(when: datetime) -> datetime:
    """The same instant, in UTC (the clock the runs step)."""
    return when.astimezone(UTC)


def instant(day: str, clock: str, *, second_pass: bool = False) -> float:
    """Epoch seconds of a Paris wall-clock time (the autumn repeat: first or second pass)."""
    return at(day, clock).replace(fold=int(second_pass)).timestamp()


def spans_s(day: Day, relay: str) -> list[tuple[float, float]]:
    """The on spans as epoch seconds."""
    return [(s.timestamp(), e.timestamp()) for s, e in day.on_spans(relay)]


def run(loads: list[dict[str, Any]], start: datetime, end: datetime, **extra: Any) -> Day:
    """A run on the UTC clock, one tick a minute."""
    return run_day(config(loads, tick_s=60, **extra), Script(), utc(start), utc(end),
                   step_s=60)


@NIGHTS
def test_grey_night_catch_up_at_the_latest_start_on_both_dst_nights(
        first: str, change: str, hours: int) -> None:
    load = {"relay": H, "daily": {"min_on": "3h", "catch_up": "offpeak"}}
    day = run([load], at(first, "06:00"), at(change, "06:10"), offpeak=["22:00-06:00"])
    end = instant(change, "06:00")
    # 3 real hours before 06:00: 03:00 CEST in spring (02:00 CET never was), 03:00 CET in
    # autumn (after the repeated hour).
    assert spans_s(day, H) == [(end - 3 * 3600, end)]
    assert day.on_spans(H)[0][0].astimezone(PARIS).strftime("%H:%M") == "03:00"
    noon = day.at(utc(at(first, "12:00")))[H]
    assert noon.latest_start is not None and noon.latest_start.timestamp() == end - 3 * 3600
    assert noon.remaining_s == 3 * 3600
    last = day.at(utc(at(change, "05:59")))[H]
    assert last.on_today_s == 3 * 3600 - 60 and last.remaining_s == 60
    assert day.ticks[-1][1][H].on_today_s == 0  # a new automation day
    assert (end - instant(first, "06:00")) / 3600 == hours


@NIGHTS
def test_daily_counter_counts_the_real_length_of_the_day(first: str, change: str,
                                                         hours: int) -> None:
    load = {"relay": H, "daily": {"min_on": "1h"},
            "schedule": [{"time": "00:00-24:00", "state": "on"}]}
    day = run([load], at(first, "06:00"), at(change, "06:00"))
    before_end = day.at(utc(at(change, "05:59")))[H]
    assert before_end.on_today_s == hours * 3600 - 60
    at_start = day.ticks[-1][1][H]
    assert at_start.on_today_s == 0 and at_start.wish == "on"


@NIGHTS
def test_schedules_follow_the_wall_clock(first: str, change: str, hours: int) -> None:
    night = {"relay": "night", "schedule": [{"time": "22:00-06:00", "state": "on"}]}
    two = {"relay": "two", "schedule": [{"time": "02:00-03:00", "state": "on"}]}
    day = run([night, two], at(first, "20:00"), at(change, "08:00"))
    # 22:00-06:00 is 7 real hours on the spring night, 9 on the autumn one.
    assert on_seconds(day, "night") == (hours - 16) * 3600
    assert spans_s(day, "night") == [(instant(first, "22:00"), instant(change, "06:00"))]
    # 02:00-03:00 never happens in spring, and its wall clock holds twice in autumn.
    assert on_seconds(day, "two") == {23: 0, 25: 2 * 3600}[hours]


def test_by_in_the_spring_gap_is_the_change_itself() -> None:
    load = {"relay": H, "daily": {"min_on": "1h", "by": "02:30", "catch_up": "00:00-03:00"}}
    day = run([load], at(SPRING[0], "20:00"), at(SPRING[1], "04:00"))
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()  # 02:00 CET -> 03:00 CEST
    evening = day.ticks[0][1][H]
    assert evening.by == "02:30" and evening.latest_start is not None
    assert evening.latest_start.timestamp() == change - 3600  # 01:00 CET
    assert spans_s(day, H) == [(change - 3600, change)]


def test_by_in_the_autumn_repeat_is_its_second_pass() -> None:
    load = {"relay": H, "daily": {"min_on": "1h", "by": "02:30", "catch_up": "00:00-03:00"}}
    day = run([load], at(AUTUMN[0], "20:00"), at(AUTUMN[1], "04:00"))
    first = instant(AUTUMN[1], "02:30")
    second = instant(AUTUMN[1], "02:30", second_pass=True)
    assert second - first == 3600
    # Due at the second 02:30: the hour owed runs from the first 02:30 to the second.
    assert spans_s(day, H) == [(first, second)]
