"""Rule 7's catch-up planning: when the daily minimum still owed must start to fit before `by`.

Pure. The catch-up windows are daily local windows (may wrap midnight); `plan_catch_up` takes
them already cut to the load's `allow` windows (`load_catch_up_windows` does that from the
config), lays them on the automation day as real intervals (DST-correct: 9 h of 22:00-06:00
on the October night, 7 h in March) up to `by`, and walks them backwards from `by` for the
latest start from which what is owed still fits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from services.automation.config import AutomationConfig
from services.automation.daily import AutomationDay, wall_instant
from services.automation.loads import LoadConfig
from services.automation.units import DAY_MINUTES, Window


class CatchUp(StrEnum):
    """Rule 7's verdict."""

    WAIT = "wait"  # owed, still fits if started later
    RUN = "run"  # the latest start has come, and now is inside a window: on (catch_up)
    UNREACHABLE = "unreachable"  # no longer fits: on in whatever window time is left
    NONE = "none"  # nothing owed, no catch_up configured, or past `by`


@dataclass(frozen=True)
class CatchUpPlan:
    """What rule 7 says now, and the figures behind it (for the status and the page)."""

    verdict: CatchUp
    owed_s: float  # the daily minimum still owed
    available_s: float  # catch-up window time left between now and `by` (real seconds)
    latest_start: datetime | None  # None: nothing owed, no windows, or even the day's fall short
    by: datetime  # when the minimum is due (reported even without catch_up)
    inside: bool  # now is inside a catch-up window

    @property
    def on(self) -> bool:
        """Rule 7 wants the load on (catch_up, or unreachable inside a window)."""
        return self.verdict is CatchUp.RUN or (self.verdict is CatchUp.UNREACHABLE
                                               and self.inside)


def intervals(day: AutomationDay, which: date, windows: Sequence[Window],
              until: datetime) -> list[tuple[float, float]]:
    """The windows' real intervals (epoch s) from the day's start to ``until``, merged."""
    lo, hi = day.start(which).timestamp(), until.timestamp()
    found: list[tuple[float, float]] = []
    for offset in (-1, 0, 1):  # a day spans two dates; a wrapping window starts the date before
        d = which + timedelta(days=offset)
        for w in windows:
            end_date = d + timedelta(days=1) if w.wraps or w.end == DAY_MINUTES else d
            s = wall_instant(d, w.start, day.tz).timestamp()
            e = wall_instant(end_date, w.end % DAY_MINUTES, day.tz, last=True).timestamp()
            s, e = max(s, lo), min(e, hi)
            if e > s:
                found.append((s, e))
    found.sort()
    merged: list[tuple[float, float]] = []
    for s, e in found:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


@functools.lru_cache(maxsize=256)
def _spans(day: AutomationDay, which: date, windows: tuple[Window, ...],
           by_minute: int) -> tuple[tuple[float, float], ...]:
    """`intervals` to `by`, kept: they change once a day per load, the engine asks each tick."""
    return tuple(intervals(day, which, windows, day.by(which, by_minute)))


def latest_start(spans: Sequence[tuple[float, float]], owed_s: float) -> float | None:
    """Walking back from the last interval: where ``owed_s`` of window time starts (None: no
    fit)."""
    rest = owed_s
    for s, e in reversed(spans):
        if e - s >= rest:
            return e - rest
        rest -= e - s
    return None


def plan_catch_up(day: AutomationDay, now: datetime, owed_s: float,
                  windows: Sequence[Window] | None, by_minute: int, *,
                  tick_s: float = 0.0) -> CatchUpPlan:
    """Rule 7 at ``now`` for ``owed_s`` still owed, catch-up ``windows`` (None: no catch_up)
    due by local ``by_minute``.

    ``tick_s`` is the engine's decision step: it waits while the next tick is still at or
    before the latest start (so with ticks on the minute a 03:00 latest start starts at
    03:00 exactly), and a shortfall under one tick (the tick the relay took to report on)
    still counts as fitting: `run`, not `unreachable`.
    """
    which = day.day_of(now)
    by = day.by(which, by_minute)
    if windows is None:
        return CatchUpPlan(CatchUp.NONE, owed_s, 0.0, None, by, False)
    t = now.timestamp()
    spans = _spans(day, which, tuple(windows), by_minute)
    available = sum(max(0.0, e - max(s, t)) for s, e in spans)
    inside = any(s <= t < e for s, e in spans)
    latest = latest_start(spans, owed_s) if owed_s > 0 else None
    when = None if latest is None else datetime.fromtimestamp(latest, day.tz)
    if owed_s <= 0 or t >= by.timestamp():
        verdict = CatchUp.NONE
    elif available < owed_s - tick_s or latest is None:
        verdict = CatchUp.UNREACHABLE
    elif (t < latest and t + tick_s <= latest) or not inside:
        verdict = CatchUp.WAIT
    else:
        verdict = CatchUp.RUN
    return CatchUpPlan(verdict, owed_s, available, when, by, inside)


# -- from the config ------------------------------------------------------------------------


def minutes_of(windows: Sequence[Window]) -> list[bool]:
    """Which minutes of the day the windows cover."""
    return [any(w.contains(m) for w in windows) for m in range(DAY_MINUTES)]


def windows_of(covered: Sequence[bool]) -> tuple[Window, ...]:
    """Back from covered minutes to windows; a run across midnight is one wrapping window."""
    if all(covered):
        return (Window(0, DAY_MINUTES),)
    if not any(covered):
        return ()
    first_gap = covered.index(False)  # start the scan at a gap so no run is cut in two
    found: list[Window] = []
    start: int | None = None
    for k in range(1, DAY_MINUTES + 1):
        m = (first_gap + k) % DAY_MINUTES
        if covered[m] and start is None:
            start = m
        elif not covered[m] and start is not None:
            found.append(Window(start, m if m else DAY_MINUTES))
            start = None
    return tuple(sorted(found, key=lambda w: w.start))


def intersect(windows: Sequence[Window], allow: Sequence[Window] | None) -> tuple[Window, ...]:
    """The windows' time inside ``allow`` (None: always allowed)."""
    if allow is None:
        return tuple(windows)
    return windows_of([a and b for a, b in zip(minutes_of(windows), minutes_of(allow),
                                                strict=True)])


def load_catch_up_windows(cfg: AutomationConfig, load: LoadConfig,
                          learned_offpeak: Sequence[Window] | None = None
                          ) -> tuple[Window, ...] | None:
    """The load's catch-up windows less its time outside `allow`; None: no catch-up.

    `catch_up: offpeak` reads the configured `offpeak`, else ``learned_offpeak`` (from the
    meter); while neither is known there is no catch-up yet. An `allow` map without `time`
    counts as all day here (its other keys vary during the day; rule 3 still applies them
    at run time), so the plan may count time that rule 3 then blocks: the shortfall then
    shows as `unreachable`.
    """
    if load.daily is None or load.daily.min_on is None or load.daily.catch_up is None:
        return None
    windows = cfg.catch_up_windows(load)
    if windows is None:
        if learned_offpeak is None:
            return None
        windows = tuple(learned_offpeak)
    times = [c.time for c in load.allow]
    allow = None if not times or any(w is None for w in times) else [
        w for w in times if w is not None]
    return intersect(windows, allow)


def plan_for_load(cfg: AutomationConfig, load: LoadConfig, day: AutomationDay,
                  now: datetime, on_time_s: float, *,
                  learned_offpeak: Sequence[Window] | None = None) -> CatchUpPlan:
    """Rule 7 for a configured load with ``on_time_s`` run today (RunCounter.on_time_s)."""
    min_on = load.daily.min_on if load.daily is not None else None
    owed = 0.0 if min_on is None else max(0.0, min_on - on_time_s)
    windows = load_catch_up_windows(cfg, load, learned_offpeak)
    return plan_catch_up(day, now, owed, windows, cfg.by_of(load),
                         tick_s=cfg.tick_s)
