"""The automation day and a load's daily counters, fed with the relay's real output.

Pure and clock-free: the caller passes ``now`` (an aware datetime) every time. Real durations
are computed on epoch seconds, never by subtracting aware datetimes (Python subtracts two
datetimes of the same zone on their wall clocks, an hour off across a DST change).

Wall-clock boundaries map to instants this way (`wall_instant`): a time skipped by the spring
change (02:30 in Europe/Paris) is the change itself (03:00 CEST); a time repeated by the autumn
change is its first pass for a start, its second pass for an end (`last=True`), so a window
covers every moment its wall clock says it holds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.automation.smoothing import finite
from services.automation.units import DAY_MINUTES, format_clock
from services.core.contract.orders import ON_ORDERS

HOUR_S = 3600.0
# Between two observations further apart than this the output is unknown (the service was
# down, the box lost power): the gap adds no on-time, so a lost hour means more heating, not
# a cold tank.
MAX_GAP_S = 300.0


def epoch_s(now: datetime) -> float:
    """Epoch seconds of an aware datetime (a naive one would silently read the host's zone)."""
    if now.tzinfo is None:
        raise ValueError(f"{now.isoformat()} has no time zone: pass an aware datetime")
    return now.timestamp()


def output_is_on(value: str) -> bool:
    """True for a real output that counts as on: "on", confort, confort-1, confort-2.

    eco heats at a lower set point but is a zone's usual "off" here (DESIGN.md: "on" is
    confort, confort-1 or confort-2), so it does not count as on-time.
    """
    return value == "on" or value in ON_ORDERS


def wall_instant(day: date, minute: int, tz: ZoneInfo, *, last: bool = False) -> datetime:
    """The instant (in ``tz``) when the wall clock of ``day`` reads ``minute`` (0..1440).

    Skipped by a spring change: the change itself. Repeated by an autumn change: its first
    pass, or its second with ``last`` (for the end of a window).
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    aware = naive.replace(tzinfo=tz, fold=1 if last else 0)
    back = aware.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) == naive:
        return back
    # In a gap: fold=1 reads it with the offset after the change, an instant before the
    # change; walk forward to the first minute whose wall clock has reached ``naive``.
    probe = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    while probe.astimezone(tz).replace(tzinfo=None) < naive:
        probe += timedelta(minutes=1)
    return probe.astimezone(tz)


@dataclass(frozen=True)
class AutomationDay:
    """Days that start at ``starts_at`` (minutes, local) in ``tz``: the counters' day.

    With 06:00, 05:59 on the 2nd belongs to the day of the 1st. A day is named by the date
    it starts on; it lasts 23 h or 25 h across a DST change.
    """

    tz: ZoneInfo
    starts_at: int = 360

    @classmethod
    def of(cls, timezone: str, day_starts_at: int) -> AutomationDay:
        """From the config's `timezone` and `day_starts_at` (AutomationConfig)."""
        return cls(ZoneInfo(timezone), day_starts_at)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - frozen and few: days are asked every tick
    def start(self, day: date) -> datetime:
        """When the day starts (aware, in the zone)."""
        return wall_instant(day, self.starts_at, self.tz)

    def end(self, day: date) -> datetime:
        """When the day ends: the next day's start."""
        return self.start(day + timedelta(days=1))

    def length_s(self, day: date) -> float:
        """Its real length in seconds (82800 and 90000 on DST days)."""
        return self.end(day).timestamp() - self.start(day).timestamp()

    def day_of(self, now: datetime) -> date:
        """The day ``now`` belongs to: the latest day that started at or before it."""
        t = epoch_s(now)
        candidate = now.astimezone(self.tz).date()
        if t < self.start(candidate).timestamp():
            return candidate - timedelta(days=1)
        return candidate

    @functools.lru_cache(maxsize=256)  # noqa: B019 - as start
    def by(self, day: date, by_minute: int) -> datetime:
        """The instant of local time ``by_minute`` within the day (its start time: its end)."""
        offset = (by_minute - self.starts_at) % DAY_MINUTES
        if offset == 0:
            return self.end(day)
        total = self.starts_at + offset
        when = wall_instant(day + timedelta(days=total // DAY_MINUTES), total % DAY_MINUTES,
                            self.tz, last=True)
        end = self.end(day)
        return when if when.timestamp() <= end.timestamp() else end

    def __str__(self) -> str:
        return f"days from {format_clock(self.starts_at)} ({self.tz.key})"


@dataclass
class RunCounter:
    """One relay's real output over time: daily on-time, switch-ons, time in its state.

    Feed it with `observe(now, on)` every tick and whenever the relay's output is seen to
    change (with the time it changed), ``on`` being `output_is_on` of the real output. While
    the relay is shed the caller passes ``on=False``: shed time is not on-time (DESIGN.md).
    An interval counts as the state observed at its start (sample and hold), split at the
    day's start; a gap longer than `MAX_GAP_S` counts as off. A clock that goes back adds
    nothing and never moves the day back. The first observation is not a switch-on (it was
    not seen to switch) and its state's age is unknown (`on_for_s`/`off_for_s`: infinite).

    Persist with `to_dict`, resume with `from_dict`: a restart mid-day changes nothing.
    """

    day: AutomationDay
    current: date | None = None  # the automation day the counters are for
    on_s: float = 0.0  # on-time in `current` up to `last_ts`
    on: bool | None = None  # the last observed output
    since_ts: float | None = None  # when it entered that state (None: before we saw it)
    last_ts: float | None = None
    starts: list[float] = field(default_factory=list)  # switch-ons of the last hour (epoch s)
    done: bool = False  # done_when held today (set by the engine)
    unreachable_noted: bool = False  # the day's unreachable event was sent

    # -- feeding ---------------------------------------------------------------------------

    def observe(self, now: datetime, on: bool, *, max_gap_s: float = MAX_GAP_S) -> None:
        """The relay's real output is ``on`` at ``now``."""
        t = epoch_s(now)
        if self.last_ts is None or self.current is None:
            self._start_day(self.day.day_of(now))
            self.on, self.since_ts, self.last_ts = on, None, t
            return
        t = max(t, self.last_ts)  # a clock going back: no time, no day change
        counting = bool(self.on) and t - self.last_ts <= max_gap_s
        self._accrue(t, counting)
        if on != self.on:
            self.on, self.since_ts = on, t
            if on:
                self.starts.append(t)
        self.starts = [s for s in self.starts if t - s < HOUR_S]
        self.last_ts = t

    def _accrue(self, t: float, counting: bool) -> None:
        """Add [last_ts, t] as on-time when ``counting``, rolling over day starts."""
        assert self.current is not None and self.last_ts is not None
        last = self.last_ts
        end = self.day.end(self.current).timestamp()
        if t >= end:
            if counting:
                self.on_s += end - last
            target = self.day.day_of(datetime.fromtimestamp(t, UTC))
            if target != self.current + timedelta(days=1):
                counting = False  # days went by unseen: nothing is known of them
            self._start_day(target)
            last = max(last, self.day.start(target).timestamp())
        if counting:
            self.on_s += t - last

    # -- the engine's marks ----------------------------------------------------------------

    def mark_done(self, now: datetime) -> None:
        """done_when held: off for the rest of the automation day of ``now``."""
        self._roll_to(now)
        self.done = True

    def note_unreachable(self, now: datetime) -> bool:
        """True the first time in the day (send the `unreachable` event), then False."""
        self._roll_to(now)
        first = not self.unreachable_noted
        self.unreachable_noted = True
        return first

    def _start_day(self, day: date) -> None:
        if day != self.current:
            self.current, self.on_s = day, 0.0
            self.done = self.unreachable_noted = False

    def _roll_to(self, now: datetime) -> None:
        """Bring the day up to ``now`` without inventing an output (sample and hold)."""
        if self.on is None or self.last_ts is None:
            self._start_day(self.day.day_of(now))
        elif now.timestamp() > self.last_ts:
            self.observe(now, self.on)

    # -- readings --------------------------------------------------------------------------

    def on_time_s(self, now: datetime) -> float:
        """The real on-time in the automation day of ``now`` (0 on a day not yet observed)."""
        if self.current is None or self.last_ts is None:
            return 0.0
        t = now.timestamp()
        day = self.day.day_of(now)
        if day == self.current:
            extra = t - self.last_ts if self.on and 0 <= t - self.last_ts <= MAX_GAP_S else 0.0
            return self.on_s + extra
        if day == self.current + timedelta(days=1) and self.on and t - self.last_ts <= MAX_GAP_S:
            return t - self.day.start(day).timestamp()
        return 0.0

    def is_done(self, now: datetime) -> bool:
        """done_when has held in the automation day of ``now``."""
        return self.done and self.current == self.day.day_of(now)

    def max_reached(self, now: datetime, max_on_s: float | None) -> bool:
        """Rule 4's daily maximum: on-time today at or above ``max_on_s`` (None: no maximum)."""
        return max_on_s is not None and self.on_time_s(now) >= max_on_s

    def owed_s(self, now: datetime, min_on_s: float | None) -> float:
        """What is still owed of the daily minimum (0 when none or met)."""
        return 0.0 if min_on_s is None else max(0.0, min_on_s - self.on_time_s(now))

    def starts_last_hour(self, now: datetime) -> int:
        """Real switch-ons in the 60 minutes before ``now`` (a start 60 min old is out)."""
        t = now.timestamp()
        return sum(1 for s in self.starts if 0 <= t - s < HOUR_S)

    def on_for_s(self, now: datetime) -> float:
        """How long it has been on (0 when off; infinite when on since before we saw it)."""
        return self._in_state_s(now, True)

    def off_for_s(self, now: datetime) -> float:
        """How long it has been off (0 when on; infinite when off since before we saw it)."""
        return self._in_state_s(now, False)

    def _in_state_s(self, now: datetime, state: bool) -> float:
        if self.on is not state:
            return 0.0
        if self.since_ts is None:
            return math.inf
        return max(0.0, now.timestamp() - self.since_ts)

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data, for the engine to persist."""
        return {
            "day": None if self.current is None else self.current.isoformat(),
            "on_s": self.on_s, "on": self.on, "since_ts": self.since_ts,
            "last_ts": self.last_ts, "starts": list(self.starts), "done": self.done,
            "unreachable_noted": self.unreachable_noted,
        }

    @classmethod
    def from_dict(cls, day: AutomationDay, data: Mapping[str, Any]) -> RunCounter:
        """A counter resumed from `to_dict`'s data; unreadable data starts fresh."""
        counter = cls(day)
        try:
            current = date.fromisoformat(data["day"]) if data.get("day") else None
        except (TypeError, ValueError):
            return counter
        last_ts, on = finite(data.get("last_ts")), data.get("on")
        if current is None or last_ts is None or not isinstance(on, bool):
            return counter
        starts = data.get("starts")
        counter.current, counter.last_ts, counter.on = current, last_ts, on
        counter.on_s = max(0.0, finite(data.get("on_s")) or 0.0)
        counter.since_ts = finite(data.get("since_ts"))
        counter.starts = [s for s in (finite(x) for x in starts) if s is not None] if isinstance(
            starts, list) else []
        counter.done = data.get("done") is True
        counter.unreachable_noted = data.get("unreachable_noted") is True
        return counter
