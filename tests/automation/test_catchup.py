"""Rule 7's catch-up: latest start before `by`, DST nights, part solar, unreachable, restarts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.automation.catchup import (
    CatchUp,
    CatchUpPlan,
    intersect,
    intervals,
    load_catch_up_windows,
    plan_catch_up,
    plan_for_load,
)
from services.automation.config import AutomationConfig
from services.automation.daily import AutomationDay, RunCounter
from services.automation.units import Window, parse_window

PARIS = ZoneInfo("Europe/Paris")
DAY = AutomationDay(PARIS, 6 * 60)
OFFPEAK = (parse_window("22:00-06:00"),)
H = 3600.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def windows(*texts: str) -> tuple[Window, ...]:
    return tuple(parse_window(t) for t in texts)


@dataclass
class Day:
    """A load simulated over one automation day: each tick, rule 7 (or the sun) decides, and
    the relay reports its new output at once (or, with ``lag``, only at the next tick)."""

    first: date
    min_on_s: float = 3 * H
    catch_up: tuple[Window, ...] | None = OFFPEAK
    by: int = 6 * 60
    tick_s: int = 60
    sun: Callable[[datetime], bool] = lambda now: False
    blocked: Callable[[datetime], bool] = lambda now: False  # rules 1-5 holding it off
    lag: bool = False
    counter: RunCounter = field(default_factory=lambda: RunCounter(DAY))
    log: list[tuple[datetime, CatchUp, bool]] = field(default_factory=list)
    events: list[datetime] = field(default_factory=list)
    output: bool = False

    def run(self, start: datetime | None = None, stop: datetime | None = None) -> Day:
        now = start or DAY.start(self.first)
        stop = stop or DAY.end(self.first)
        while now.timestamp() < stop.timestamp():
            self.tick(now)
            now = (now.astimezone(UTC) + timedelta(seconds=self.tick_s)).astimezone(PARIS)
        return self

    def tick(self, now: datetime) -> None:
        if self.lag:
            self.counter.observe(now, self.output)
        plan = self.plan(now)
        if plan.verdict is CatchUp.UNREACHABLE and self.counter.note_unreachable(now):
            self.events.append(now)
        self.output = (plan.on or self.sun(now)) and not self.blocked(now)
        if not self.lag:
            self.counter.observe(now, self.output)
        self.log.append((now, plan.verdict, self.output))

    def plan(self, now: datetime) -> CatchUpPlan:
        owed = self.counter.owed_s(now, self.min_on_s)
        return plan_catch_up(DAY, now, owed, self.catch_up, self.by, tick_s=self.tick_s)

    def on_spans(self) -> list[tuple[float, float]]:
        """(start, end) epoch seconds of each stretch the output was on."""
        spans: list[tuple[float, float]] = []
        start: float | None = None
        for now, _, on in [*self.log, (self.log[-1][0] + timedelta(seconds=self.tick_s),
                                       CatchUp.NONE, False)]:
            if on and start is None:
                start = now.timestamp()
            elif not on and start is not None:
                spans.append((start, now.timestamp()))
                start = None
        return spans

    def verdicts(self) -> set[CatchUp]:
        return {v for _, v, _ in self.log}


def test_grey_winter_day_starts_at_03_00_exactly() -> None:
    day = Day(date(2026, 1, 14)).run()
    assert day.on_spans() == [(at("2026-01-15 03:00").timestamp(),
                               at("2026-01-15 06:00").timestamp())]
    assert day.counter.on_time_s(at("2026-01-15 05:59:59")) == 3 * H - 1
    assert day.verdicts() == {CatchUp.WAIT, CatchUp.RUN}
    assert day.events == []


def test_grey_day_with_5_s_ticks_and_a_relay_that_reports_a_tick_late() -> None:
    # Ticks at 5 s, the counter seeing the new output only at the next tick: the tick it
    # missed stays within the tolerance, so it is a catch-up, not an unreachable one.
    day = Day(date(2026, 1, 14), tick_s=5, lag=True).run(start=at("2026-01-15 02:00"))
    assert day.on_spans()[0][0] == at("2026-01-15 03:00").timestamp()
    assert day.verdicts() == {CatchUp.WAIT, CatchUp.RUN}
    assert day.events == []
    # What the counter missed: the one tick before it saw the relay on.
    assert day.counter.owed_s(at("2026-01-15 05:59:59"), 3 * H) <= day.tick_s + 1


def test_october_night_25_h_day() -> None:
    # 22:00 CEST -> 06:00 CET is 9 real hours; 3 h before 06:00 CET is 03:00 CET, and 5 h
    # before is 02:00 CEST: the first pass, a wall-clock count would say 01:00.
    day = Day(date(2026, 10, 24)).run()
    assert day.on_spans() == [(utc("2026-10-25 02:00").timestamp(),
                               utc("2026-10-25 05:00").timestamp())]
    five = Day(date(2026, 10, 24), min_on_s=5 * H).run()
    assert five.on_spans() == [(utc("2026-10-25 00:00").timestamp(),
                                utc("2026-10-25 05:00").timestamp())]
    plan = plan_catch_up(DAY, at("2026-10-24 22:00"), 5 * H, OFFPEAK, 6 * 60)
    assert plan.available_s == 9 * H
    assert plan.latest_start is not None
    assert plan.latest_start.timestamp() == utc("2026-10-25 00:00").timestamp()  # 02:00 CEST


def test_march_night_23_h_day() -> None:
    # 22:00 CET -> 06:00 CEST is 7 real hours; 5 h owed start at 00:00 CET, not 01:00.
    day = Day(date(2026, 3, 28)).run()
    assert day.on_spans() == [(utc("2026-03-29 01:00").timestamp(),  # 03:00 CEST
                               utc("2026-03-29 04:00").timestamp())]
    five = Day(date(2026, 3, 28), min_on_s=5 * H).run()
    assert five.on_spans() == [(at("2026-03-29 00:00").timestamp(),
                                at("2026-03-29 06:00").timestamp())]
    assert plan_catch_up(DAY, at("2026-03-28 22:00"), 5 * H, OFFPEAK, 360).available_s == 7 * H


def test_half_sunny_day_starts_the_catch_up_later_by_the_solar_run() -> None:
    sunny = Day(date(2026, 1, 14),
                sun=lambda now: at("2026-01-14 11:00") <= now < at("2026-01-14 12:20")).run()
    assert sunny.on_spans() == [
        (at("2026-01-14 11:00").timestamp(), at("2026-01-14 12:20").timestamp()),
        (at("2026-01-15 04:20").timestamp(), at("2026-01-15 06:00").timestamp()),
    ]
    evening = Day(date(2026, 1, 14), sun=sunny.sun).run(stop=at("2026-01-14 22:00"))
    plan = evening.plan(at("2026-01-14 22:00"))
    assert plan.owed_s == 100 * 60
    assert plan.latest_start == at("2026-01-15 04:20")


def test_owed_time_that_cannot_fit_runs_in_what_is_left() -> None:
    # Blocked 02:00-04:30 (a block, a shed): the 3 h no longer fit after 03:00, so it runs
    # 04:30-06:00 as unreachable, with one event: at 03:02, the shortfall (2 ticks) being
    # past the one-tick tolerance.
    day = Day(date(2026, 1, 14),
              blocked=lambda now: at("2026-01-15 02:00") <= now < at("2026-01-15 04:30")).run()
    assert day.on_spans() == [(at("2026-01-15 04:30").timestamp(),
                               at("2026-01-15 06:00").timestamp())]
    assert day.events == [at("2026-01-15 03:02")]
    assert CatchUp.UNREACHABLE in day.verdicts()
    plan = plan_catch_up(DAY, at("2026-01-15 04:30"), 3 * H, OFFPEAK, 360)
    assert plan.verdict is CatchUp.UNREACHABLE and plan.on
    assert plan.available_s == 1.5 * H
    assert plan.latest_start == at("2026-01-15 03:00")  # in the past: it no longer fits


def test_unreachable_outside_a_window_stays_off() -> None:
    plan = plan_catch_up(DAY, at("2026-01-15 03:00"), 3 * H, windows("22:00-02:00"), 360)
    assert plan.verdict is CatchUp.UNREACHABLE
    assert not plan.on
    assert plan.latest_start == at("2026-01-14 23:00")


def test_nothing_owed_no_catch_up_or_past_by_is_none() -> None:
    now = at("2026-01-15 03:00")
    assert plan_catch_up(DAY, now, 0, OFFPEAK, 360).verdict is CatchUp.NONE
    alone = plan_catch_up(DAY, now, 2 * H, None, 360)  # no catch_up: only reported
    assert (alone.verdict, alone.owed_s, alone.by) == (CatchUp.NONE, 2 * H, at("2026-01-15 06:00"))
    assert not alone.on
    pool = plan_catch_up(DAY, at("2026-01-14 18:00"), 2 * H, windows("15:00-18:00"), 18 * 60)
    assert pool.verdict is CatchUp.NONE  # past its 18:00


def test_wrapping_window_with_by_inside_it() -> None:
    # 22:00-08:00 with by 06:00: the window's time after 06:00 does not count.
    day = Day(date(2026, 1, 14), catch_up=windows("22:00-08:00")).run()
    assert day.on_spans() == [(at("2026-01-15 03:00").timestamp(),
                               at("2026-01-15 06:00").timestamp())]
    # Two windows with a gap, by inside the second: 2 h fit as 00:00-01:00 then 04:00-05:00.
    split = Day(date(2026, 1, 14), min_on_s=2 * H, by=5 * 60,
                catch_up=windows("23:00-01:00", "04:00-07:00")).run()
    assert split.on_spans() == [
        (at("2026-01-15 00:00").timestamp(), at("2026-01-15 01:00").timestamp()),
        (at("2026-01-15 04:00").timestamp(), at("2026-01-15 05:00").timestamp()),
    ]
    assert split.events == []
    gap = plan_catch_up(DAY, at("2026-01-15 02:00"), H, split.catch_up, split.by)
    assert (gap.verdict, gap.inside, gap.available_s) == (CatchUp.WAIT, False, H)


def test_a_window_before_the_day_start_counts_from_the_start() -> None:
    # 04:00-08:00 with days from 06:00: 06:00-08:00 today, 04:00-06:00 tomorrow (by 06:00).
    spans = intervals(DAY, date(2026, 1, 14), windows("04:00-08:00"), at("2026-01-15 06:00"))
    assert spans == [(at("2026-01-14 06:00").timestamp(), at("2026-01-14 08:00").timestamp()),
                     (at("2026-01-15 04:00").timestamp(), at("2026-01-15 06:00").timestamp())]


def test_a_restart_mid_run_gives_the_same_verdicts() -> None:
    whole = Day(date(2026, 1, 14)).run()
    first = Day(date(2026, 1, 14)).run(stop=at("2026-01-15 04:00"))
    saved = json.loads(json.dumps(first.counter.to_dict()))
    second = Day(date(2026, 1, 14), counter=RunCounter.from_dict(DAY, saved),
                 output=first.output).run(start=at("2026-01-15 04:00"))
    assert first.log + second.log == whole.log


def test_max_on_and_the_plan_from_the_config() -> None:
    cfg = AutomationConfig.model_validate(yaml.safe_load("""
        offpeak: ["22:00-06:00"]
        loads:
          - relay: water-heater
            daily: {min_on: 3h, max_on: 6h, by: "06:00", catch_up: offpeak}
          - relay: pool-pump
            allow: [{time: "10:00-18:00"}]
            daily: {min_on: 2h, by: "18:00", catch_up: "15:00-18:00"}
          - relay: dryer
            allow: [{time: "10:00-18:00"}, {time: "20:00-23:00"}]
            daily: {min_on: 1h, catch_up: "08:00-21:00"}
          - relay: towel
            daily: {min_on: 1h}
    """))
    heater, pool, dryer, towel = cfg.loads
    assert load_catch_up_windows(cfg, heater) == OFFPEAK
    assert load_catch_up_windows(cfg, pool) == windows("15:00-18:00")
    assert load_catch_up_windows(cfg, dryer) == windows("10:00-18:00", "20:00-21:00")
    assert load_catch_up_windows(cfg, towel) is None
    plan = plan_for_load(cfg, pool, DAY, at("2026-01-14 15:59:56"), 0)
    assert plan.verdict is CatchUp.RUN  # 15:59:56 + a 5 s tick is past 16:00
    assert plan_for_load(cfg, pool, DAY, at("2026-01-14 15:00"), 0).verdict is CatchUp.WAIT
    assert plan_for_load(cfg, heater, DAY, at("2026-01-15 05:00"), 3 * H).verdict is CatchUp.NONE
    counter = RunCounter(DAY)
    counter.observe(at("2026-01-14 10:00"), True)
    for k in range(1, 6 * 12 + 1):
        counter.observe(at("2026-01-14 10:00") + timedelta(minutes=5 * k), True)
    assert counter.max_reached(at("2026-01-14 16:00"), heater.daily.max_on if heater.daily
                               else None)


def test_offpeak_learned_from_the_meter() -> None:
    cfg = AutomationConfig.model_validate(yaml.safe_load("""
        loads:
          - relay: water-heater
            daily: {min_on: 3h, catch_up: offpeak}
    """))
    load = cfg.loads[0]
    assert load_catch_up_windows(cfg, load) is None  # not learned yet: no catch-up
    learned = windows("23:00-07:00")
    assert load_catch_up_windows(cfg, load, learned) == learned


def test_intersect_keeps_wrapping_windows_whole() -> None:
    assert intersect(OFFPEAK, None) == OFFPEAK
    assert intersect(OFFPEAK, windows("00:00-24:00")) == OFFPEAK
    assert intersect(OFFPEAK, windows("05:00-23:00")) == windows("05:00-06:00", "22:00-23:00")
    assert intersect(OFFPEAK, windows("10:00-18:00")) == ()


# -- properties ---------------------------------------------------------------------------

WINDOW = st.tuples(st.integers(0, 1439), st.integers(1, 1439)).map(
    lambda p: Window(p[0], (p[0] + p[1]) % 1440 or 1440))
DAYS = st.sampled_from([date(2026, 3, 28), date(2026, 10, 24), date(2026, 1, 14),
                        date(2026, 3, 29), date(2026, 10, 25)])


@given(DAYS, st.lists(WINDOW, min_size=1, max_size=3), st.integers(0, 1439),
       st.integers(1, 20 * 60), st.integers(0, 24 * 60 - 1))
def test_latest_start_leaves_exactly_what_is_owed_before_by(
        first: date, wins: list[Window], by: int, owed_min: int, after_min: int) -> None:
    now = datetime.fromtimestamp(DAY.start(first).timestamp() + after_min * 60, PARIS)
    if DAY.day_of(now) != first:
        return
    owed = owed_min * 60.0
    plan = plan_catch_up(DAY, now, owed, wins, by)
    spans = intervals(DAY, first, wins, plan.by)
    if plan.verdict in {CatchUp.WAIT, CatchUp.RUN}:  # reachable
        assert plan.latest_start is not None
        start = plan.latest_start.timestamp()
        after = sum(max(0.0, e - max(s, start)) for s, e in spans)
        assert abs(after - owed) < 1e-6  # what is owed fits exactly from the latest start
        assert start + owed <= plan.by.timestamp() + 1e-6
        assert owed <= plan.available_s + 1e-6
        assert start >= now.timestamp() - 1e-6
        if plan.verdict is CatchUp.WAIT and plan.inside:
            assert now.timestamp() < start
        # At the latest start it runs; a little before, it waits.
        at_start = plan_catch_up(DAY, plan.latest_start, owed, wins, by, tick_s=1)
        assert (at_start.verdict, at_start.inside) == (CatchUp.RUN, True)
        if start - 2 >= now.timestamp():
            before = datetime.fromtimestamp(start - 2, PARIS)
            assert plan_catch_up(DAY, before, owed, wins, by, tick_s=1).verdict is CatchUp.WAIT
    if plan.verdict is CatchUp.UNREACHABLE:
        assert plan.available_s < owed
    assert plan.available_s <= sum(e - s for s, e in spans) + 1e-6
    assert plan.on == (plan.verdict is CatchUp.RUN or (plan.verdict is CatchUp.UNREACHABLE
                                                       and plan.inside))
