"""The automation day and RunCounter: day bounds on DST days, on-time, starts, restarts."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.automation.daily import (
    MAX_GAP_S,
    AutomationDay,
    RunCounter,
    output_is_on,
    wall_instant,
)

PARIS = ZoneInfo("Europe/Paris")
DAY = AutomationDay(PARIS, 6 * 60)


def at(text: str) -> datetime:
    """A local Paris time 'YYYY-MM-DD HH:MM[:SS]' (first pass in the repeated hour)."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ts(when: datetime) -> float:
    """Epoch seconds: aware datetimes in the repeated hour never compare equal across zones
    (PEP 495), so instants are compared as numbers."""
    return when.timestamp()


# -- the automation day -------------------------------------------------------------------


def test_the_day_starts_at_day_starts_at() -> None:
    assert DAY.day_of(at("2026-01-02 05:59:59")) == date(2026, 1, 1)
    assert DAY.day_of(at("2026-01-02 06:00")) == date(2026, 1, 2)
    assert DAY.day_of(at("2026-01-01 23:00")) == date(2026, 1, 1)
    assert DAY.start(date(2026, 1, 1)) == at("2026-01-01 06:00")
    assert DAY.end(date(2026, 1, 1)) == at("2026-01-02 06:00")
    assert DAY.length_s(date(2026, 1, 1)) == 86400
    midnight = AutomationDay(PARIS, 0)
    assert midnight.day_of(at("2026-01-02 00:00")) == date(2026, 1, 2)
    assert midnight.day_of(at("2026-01-01 23:59:59")) == date(2026, 1, 1)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        DAY.day_of(datetime(2026, 1, 14, 10, 0))
    with pytest.raises(ValueError, match="no time zone"):
        RunCounter(DAY).observe(datetime(2026, 1, 14, 10, 0), True)


def test_dst_days_last_23_and_25_hours() -> None:
    # The days that hold the changes' nights (2026-03-29 and 2026-10-25, at 02:00/03:00).
    assert DAY.length_s(date(2026, 3, 28)) == 23 * 3600
    assert DAY.end(date(2026, 3, 28)) == utc("2026-03-29 04:00")  # 06:00 CEST
    assert DAY.length_s(date(2026, 10, 24)) == 25 * 3600
    assert DAY.end(date(2026, 10, 24)) == utc("2026-10-25 05:00")  # 06:00 CET
    assert DAY.length_s(date(2026, 3, 29)) == DAY.length_s(date(2026, 10, 25)) == 86400
    # 05:30 on the change days belongs to the day before, real times included.
    assert DAY.day_of(utc("2026-03-29 03:59")) == date(2026, 3, 28)
    assert DAY.day_of(utc("2026-10-25 04:59")) == date(2026, 10, 24)


def test_a_day_starting_in_the_skipped_or_repeated_hour() -> None:
    day = AutomationDay(PARIS, 2 * 60 + 30)
    # 02:30 does not exist on 2026-03-29: the day starts at the change (03:00 CEST).
    assert day.start(date(2026, 3, 29)) == utc("2026-03-29 01:00")
    assert day.day_of(utc("2026-03-29 00:59")) == date(2026, 3, 28)
    assert day.day_of(utc("2026-03-29 01:00")) == date(2026, 3, 29)
    # 02:30 happens twice on 2026-10-25: the first pass starts the day, the second stays in it.
    assert ts(day.start(date(2026, 10, 25))) == ts(utc("2026-10-25 00:30"))
    assert day.day_of(utc("2026-10-25 01:00")) == date(2026, 10, 25)  # 02:00 CET, 2nd pass
    assert day.length_s(date(2026, 10, 24)) == 24 * 3600  # ends at the first pass
    assert day.length_s(date(2026, 10, 25)) == 25 * 3600
    # 02:30 -> the change -> 02:30: the skipped hour's half before 02:30 falls in each day.
    assert day.length_s(date(2026, 3, 28)) == day.length_s(date(2026, 3, 29)) == 23.5 * 3600


def test_wall_instants_in_gaps_and_repeats() -> None:
    assert wall_instant(date(2026, 3, 29), 150, PARIS) == utc("2026-03-29 01:00")
    assert ts(wall_instant(date(2026, 10, 25), 150, PARIS)) == ts(utc("2026-10-25 00:30"))
    assert ts(wall_instant(date(2026, 10, 25), 150, PARIS, last=True)) == ts(
        utc("2026-10-25 01:30"))
    assert wall_instant(date(2026, 1, 1), 1440, PARIS) == at("2026-01-02 00:00")


def test_by_is_a_time_within_the_day() -> None:
    d = date(2026, 1, 14)
    assert DAY.by(d, 6 * 60) == at("2026-01-15 06:00")  # its start time: its end
    assert DAY.by(d, 18 * 60) == at("2026-01-14 18:00")
    assert DAY.by(d, 5 * 60) == at("2026-01-15 05:00")
    assert DAY.by(d, 7 * 60) == at("2026-01-14 07:00")


def test_what_counts_as_on() -> None:
    assert [v for v in ("on", "off", "confort", "confort-1", "confort-2", "eco", "hors-gel",
                        "arret") if output_is_on(v)] == ["on", "confort", "confort-1",
                                                          "confort-2"]


# -- RunCounter ---------------------------------------------------------------------------


def feed(counter: RunCounter, start: datetime, spans: list[tuple[int, bool]],
         step_s: int = 60) -> datetime:
    """Observe ``on`` for each (minutes, on) span in turn, every ``step_s``; returns the end."""
    now = start
    for minutes, on in spans:
        for _ in range(minutes * 60 // step_s):
            counter.observe(now, on)
            now += timedelta(seconds=step_s)
    counter.observe(now, spans[-1][1])
    return now


def test_on_time_counts_the_real_output() -> None:
    c = RunCounter(DAY)
    end = feed(c, at("2026-01-14 10:00"), [(30, False), (80, True), (10, False)])
    assert c.on_time_s(end) == 80 * 60
    assert c.owed_s(end, 3 * 3600) == 3 * 3600 - 80 * 60
    assert c.owed_s(end, None) == 0


def test_a_run_crossing_the_day_start_is_split() -> None:
    c = RunCounter(DAY)
    end = feed(c, at("2026-01-14 05:00"), [(120, True)])
    assert DAY.day_of(end) == date(2026, 1, 14)
    assert c.on_time_s(end) == 3600  # 06:00 -> 07:00 today
    # Just before 06:00 the day of the 13th had its hour.
    c2 = RunCounter(DAY)
    feed(c2, at("2026-01-14 05:00"), [(59, True)])
    assert c2.on_time_s(at("2026-01-14 05:59:30")) == 59.5 * 60
    assert c2.on_time_s(at("2026-01-14 06:00:30")) == 30  # projected into the new day


def test_the_day_start_resets_done_and_the_counters() -> None:
    c = RunCounter(DAY)
    feed(c, at("2026-01-14 20:00"), [(60, True)])
    c.mark_done(at("2026-01-14 21:00"))
    assert c.is_done(at("2026-01-14 23:00"))
    assert c.note_unreachable(at("2026-01-14 23:00"))
    assert not c.note_unreachable(at("2026-01-15 04:00"))
    assert not c.is_done(at("2026-01-15 06:00"))  # without an observation too
    c.observe(at("2026-01-15 06:01"), False)
    assert not c.done
    assert c.on_time_s(at("2026-01-15 06:01")) == 0
    assert c.note_unreachable(at("2026-01-15 07:00"))


def test_shed_time_is_passed_as_off_and_is_not_on_time() -> None:
    c = RunCounter(DAY)
    # On for 30 min, shed (output off, the caller passes False) 20 min, on again 10 min.
    end = feed(c, at("2026-01-14 10:00"), [(30, True), (20, False), (10, True)])
    assert c.on_time_s(end) == 40 * 60


def test_time_in_state_for_min_on_and_min_off() -> None:
    c = RunCounter(DAY)
    t0 = at("2026-01-14 10:00")
    c.observe(t0, False)
    assert c.off_for_s(t0 + timedelta(minutes=5)) == math.inf  # off since before we saw it
    assert c.on_for_s(t0) == 0
    c.observe(t0 + timedelta(minutes=10), True)
    assert c.on_for_s(t0 + timedelta(minutes=14)) == 240
    assert c.off_for_s(t0 + timedelta(minutes=14)) == 0
    c.observe(t0 + timedelta(minutes=15), False)
    assert c.off_for_s(t0 + timedelta(minutes=16)) == 60


def test_starts_per_hour_is_a_sliding_window() -> None:
    c = RunCounter(DAY)
    t0 = at("2026-01-14 10:00")
    c.observe(t0, True)  # first sight: not a start (it was not seen to switch)
    for k in range(4):  # off at :05, :15, :25, :35; on at :10, :20, :30, :40
        c.observe(t0 + timedelta(minutes=10 * k + 5), False)
        c.observe(t0 + timedelta(minutes=10 * k + 10), True)
    assert c.starts_last_hour(t0 + timedelta(minutes=45)) == 4
    assert c.starts_last_hour(t0 + timedelta(minutes=69, seconds=59)) == 4
    assert c.starts_last_hour(t0 + timedelta(minutes=70)) == 3  # the :10 start is 60 min old
    assert c.starts_last_hour(t0 + timedelta(minutes=95)) == 1
    c.observe(t0 + timedelta(minutes=101), True)
    assert c.starts == []  # old starts are dropped, not kept forever
    assert c.starts_last_hour(t0 + timedelta(minutes=101)) == 0


def test_max_on() -> None:
    c = RunCounter(DAY)
    t0 = at("2026-01-14 10:00")
    feed(c, t0, [(6 * 60 - 1, True)])
    assert not c.max_reached(t0 + timedelta(hours=6, minutes=-1), 6 * 3600)
    assert c.max_reached(t0 + timedelta(hours=6), 6 * 3600)
    assert not c.max_reached(t0 + timedelta(hours=6), None)


def test_a_restart_mid_run_changes_nothing() -> None:
    spans = [(40, False), (90, True), (20, False), (45, True)]
    whole = RunCounter(DAY)
    end = feed(whole, at("2026-01-15 04:00"), spans)
    first = RunCounter(DAY)
    mid = feed(first, at("2026-01-15 04:00"), spans[:2])
    first.mark_done(mid)
    saved = json.loads(json.dumps(first.to_dict()))  # persisted as JSON
    resumed = RunCounter.from_dict(DAY, saved)
    feed(resumed, mid, spans[2:])
    assert resumed.to_dict() == whole.to_dict() | {"done": True}
    for now in (end, end + timedelta(minutes=3)):
        assert resumed.on_time_s(now) == whole.on_time_s(now)
        assert resumed.starts_last_hour(now) == whole.starts_last_hour(now)
        assert resumed.on_for_s(now) == whole.on_for_s(now)


def test_unreadable_state_starts_fresh() -> None:
    for junk in ({}, {"day": "nope"}, {"day": "2026-01-14", "last_ts": "x", "on": True},
                 {"day": "2026-01-14", "last_ts": 1.0, "on": "yes"}):
        c = RunCounter.from_dict(DAY, junk)
        assert c.current is None
        assert c.on_time_s(at("2026-01-14 10:00")) == 0
    c = RunCounter.from_dict(DAY, {"day": "2026-01-14", "last_ts": 1.0, "on": False,
                                   "starts": [1.0, "x", None], "on_s": -5})
    assert c.starts == [1.0]
    assert c.on_s == 0


def test_a_long_gap_adds_no_on_time_and_a_clock_going_back_adds_none() -> None:
    c = RunCounter(DAY)
    t0 = at("2026-01-14 10:00")
    c.observe(t0, True)
    c.observe(t0 + timedelta(seconds=MAX_GAP_S + 1), True)  # the service was down
    assert c.on_time_s(t0 + timedelta(seconds=MAX_GAP_S + 1)) == 0
    c.observe(t0 + timedelta(seconds=MAX_GAP_S + 61), True)
    assert c.on_time_s(t0 + timedelta(seconds=MAX_GAP_S + 61)) == 60
    c.observe(t0, True)  # back in time
    assert c.on_time_s(t0 + timedelta(seconds=MAX_GAP_S + 61)) == 60
    assert c.current == date(2026, 1, 14)


def test_days_unseen_are_skipped() -> None:
    c = RunCounter(DAY)
    t0 = at("2026-01-14 10:00")
    c.observe(t0, True)
    later = at("2026-01-17 07:00")
    c.observe(later, True)
    assert c.current == date(2026, 1, 17)
    assert c.on_time_s(later) == 0


# -- properties ---------------------------------------------------------------------------

# Walks across both 2026 DST nights, in steps of up to 20 minutes.
STEPS = st.lists(st.tuples(st.integers(1, 1200), st.booleans()), min_size=1, max_size=150)
STARTS = st.sampled_from([at("2026-03-28 20:00"), at("2026-10-24 20:00"),
                          at("2026-01-14 03:00")])


@given(STARTS, STEPS)
def test_on_time_never_decreases_within_a_day_nor_exceeds_its_length(
        start: datetime, steps: list[tuple[int, bool]]) -> None:
    c = RunCounter(DAY)
    now, last = start, (DAY.day_of(start), 0.0)
    c.observe(now, False)
    for step_s, on in steps:
        now += timedelta(seconds=step_s)
        c.observe(now, on)
        day, on_time = DAY.day_of(now), c.on_time_s(now)
        if day == last[0]:
            assert on_time >= last[1]
        assert on_time <= now.timestamp() - DAY.start(day).timestamp()
        assert on_time <= DAY.length_s(day)
        last = (day, on_time)


@given(STARTS, STEPS, st.integers(0, 3600))
def test_starts_last_hour_never_counts_a_start_older_than_60_min(
        start: datetime, steps: list[tuple[int, bool]], after_s: int) -> None:
    c = RunCounter(DAY)
    now, state, seen = start, False, []
    c.observe(now, state)
    for step_s, on in steps:
        now += timedelta(seconds=step_s)
        c.observe(now, on)
        if on and not state:
            seen.append(now)
        state = on
    query = now + timedelta(seconds=after_s)
    recent = [s for s in seen if query - s < timedelta(hours=1)]
    assert c.starts_last_hour(query) == len(recent)
