"""The shared surplus allocator: which routed loads the surplus covers, tick by tick (pure).

DESIGN.md "Surplus allocator": `available = smoothed(-grid + power of the routed loads now on)
- reserve_w`; loads the allocator does not steer take their power first; the free ones are
then walked in priority order. An off load allotted for `on_after_s` without a break switches
on (one switch-on per `step_s` across all loads); an on load not allotted for `off_after_s`
without a break switches off. Off-grid, the charger state and the battery current replace the
grid signal. No I/O and no clock: the caller passes the time (epoch seconds if the state is
persisted, so that it means something after a restart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from services.automation.smoothing import Ema, finite


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutedLoad:
    """A load with a `surplus:` block; a lower `priority` is served first."""

    id: str
    priority: int
    power_w: float
    margin_w: float = 0.0
    on_after_s: float = 60.0
    off_import_w: float = 0.0
    off_after_s: float = 180.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OffGridConfig:
    """Off-grid source: loads run while the charger is full and the battery barely discharges."""

    discharge_a: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocatorConfig:
    """The `automation.surplus` settings the allocator uses."""

    smoothing_s: float = 60.0
    reserve_w: float = 50.0
    step_s: float = 60.0
    offgrid: OffGridConfig | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadNow:
    """One routed load this tick, as the engine sees it.

    `on` is the relay's real output; `free` says rules 1-5 leave it free; `measured_w` is its
    `power_from` value (None: `power_w` while on); `on_for_other_reason` is set when a user, a
    requirement or a catch-up has it on.
    """

    on: bool
    free: bool = True
    measured_w: float | None = None
    on_for_other_reason: bool = False

    def draw_w(self, load: RoutedLoad) -> float:
        """What it draws now: measured, else its nominal power while on."""
        if not self.on:
            return 0.0
        return load.power_w if self.measured_w is None else self.measured_w


@dataclass(frozen=True, slots=True, kw_only=True)
class OffGridNow:
    """The off-grid inputs this tick: charger in absorption/float, battery current (+ charging)."""

    charger_full: bool
    battery_a: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The allocator's word on one load: allotted now, switched on (and not yet off), and why."""

    allotted: bool
    wants_on: bool
    reason: str
    code: str  # stable key of the reason, for translations: see CODES
    on_after_s: float | None = None  # the wait before a switch-on, when backed off (off-grid)


CODES = ("stale", "not_free", "other_reason", "waiting", "allotted", "waiting_step",
         "switched_on", "on", "short", "switched_off")

_ABSENT = LoadNow(on=False, free=False)  # a load the caller did not describe: held off
# Off-grid there is no surplus figure to see, only "try and watch the battery": a load that
# had to give way waits twice as long before its next try, per give-way in a row (at most 32
# times on_after_s), so it stops cycling every on_after_s + off_after_s. A run that lasted
# BACKOFF_RESET_S, or a new day, starts the count again.
BACKOFF_RESET_S = 3600.0
BACKOFF_MAX_DOUBLINGS = 5


@dataclass(slots=True)
class _Timers:
    wants_on: bool = False
    allotted_since: float | None = None
    unallotted_since: float | None = None
    gave_way: int = 0  # off-grid give-ways in a row
    on_at: float | None = None  # when the allocator last switched it on (epoch s)


class SurplusAllocator:
    """Keeps the smoothed surplus, per-load timers and the last switch-on between ticks."""

    def __init__(self, config: AllocatorConfig, loads: Sequence[RoutedLoad]) -> None:
        self.config = config
        self.loads = tuple(loads)
        self._ema = Ema(config.smoothing_s)
        self._timers = {load.id: _Timers() for load in self.loads}
        self._last_on_s: float | None = None
        self._last_step_s: float | None = None
        self._day: int | None = None
        self.available_w: float | None = None  # after the reserve; None while stale or off-grid
        # (what was left for it, what it needed) in W per load walked on the grid this step
        self.figures: dict[str, tuple[float, float]] = {}

    def order(self, day: int = 0) -> list[RoutedLoad]:
        """The loads by priority; equal priorities by id, rotated by the day number."""
        ranked: list[RoutedLoad] = []
        by_priority = sorted(self.loads, key=lambda load: (load.priority, load.id))
        for _, group in groupby(by_priority, key=lambda load: load.priority):
            tied = list(group)
            shift = day % len(tied)
            ranked += tied[shift:] + tied[:shift]
        return ranked

    def step(self, now_s: float, grid_w: float | None, loads: Mapping[str, LoadNow], *,
             offgrid: OffGridNow | None = None, day: int = 0) -> dict[str, Verdict]:
        """One tick: the verdict on every load, in priority order.

        On the grid, `grid_w` is the meter (+ import, − export; None when stale) and `offgrid`
        is ignored; with an `offgrid` config, `offgrid` is the input (None when stale) and
        `grid_w` is ignored. `day` rotates equal priorities (e.g. the automation day's number).
        """
        if self._last_step_s is not None and now_s < self._last_step_s:
            self._restart(clear_last_on=True)  # the clock went back: no timer can be trusted
        self._last_step_s = now_s
        if day != self._day:  # a new day: every off-grid load tries afresh
            self._day = day
            for timers in self._timers.values():
                timers.gave_way = 0
        stale = offgrid is None if self.config.offgrid is not None else grid_w is None
        ranked = self.order(day)
        self.figures = {}
        if stale:
            self._restart(clear_last_on=False)
            return {load.id: Verdict(False, self._timers[load.id].wants_on,
                                     "no fresh surplus signal: nothing allotted", "stale")
                    for load in ranked}
        now = {load.id: loads.get(load.id, _ABSENT) for load in self.loads}
        left = 0.0
        if grid_w is not None and self.config.offgrid is None:
            routed_w = sum(now[load.id].draw_w(load) for load in self.loads)
            self.available_w = self._ema.update(now_s, routed_w - grid_w) - self.config.reserve_w
            left = self.available_w
        verdicts: dict[str, Verdict] = {}
        steered: list[RoutedLoad] = []
        for load in ranked:
            if now[load.id].free and not now[load.id].on_for_other_reason:
                steered.append(load)
            else:  # what the allocator does not steer takes its power first
                left -= now[load.id].draw_w(load)
                verdicts[load.id] = self._not_steered(load, now[load.id])
        if offgrid is not None and self.config.offgrid is not None:
            allotted = self._allot_offgrid(offgrid, self.config.offgrid, steered, now)
        else:
            allotted = _allot_grid(left, steered, now, self.figures)
        may_switch = self._last_on_s is None or now_s - self._last_on_s >= self.config.step_s
        for load in steered:
            verdict = self._advance(load, allotted[load.id], now_s, may_switch=may_switch)
            may_switch = may_switch and verdict.code != "switched_on"
            verdicts[load.id] = verdict
        return {load.id: verdicts[load.id] for load in ranked}

    def _not_steered(self, load: RoutedLoad, ln: LoadNow) -> Verdict:
        """A load held off by rules 1-5 (switched off at once) or on for another reason."""
        timers = self._timers[load.id]
        timers.allotted_since = timers.unallotted_since = None
        if not ln.free:
            timers.wants_on = False
            return Verdict(False, False, "held off by its rules", "not_free")
        # What the allocator had switched on stays so: no chatter when the other reason ends.
        return Verdict(False, timers.wants_on, "on for another reason: its power taken first",
                       "other_reason")

    def _allot_offgrid(self, og: OffGridNow, config: OffGridConfig,
                       steered: list[RoutedLoad], now: Mapping[str, LoadNow],
                       ) -> dict[str, tuple[bool, str]]:
        if og.charger_full and og.battery_a >= -config.discharge_a:
            return {load.id: (True, "charger full, battery not discharging") for load in steered}
        why = ("charger not in absorption/float" if not og.charger_full
               else f"battery discharging {-og.battery_a:.1f} A > {config.discharge_a:g} A")
        running = [load for load in steered if now[load.id].on]
        allotted = {load.id: (False, why) for load in steered}
        for load in running[:-1]:  # the lowest-priority load that is on gives way, one by one
            allotted[load.id] = (True, f"{why}: a lower-priority load gives way first")
        return allotted

    def _advance(self, load: RoutedLoad, allot: tuple[bool, str], now_s: float, *,
                 may_switch: bool) -> Verdict:
        """Run the load's timers for this tick's allotment and say what it means."""
        allotted, why = allot
        if allotted:
            return self._advance_allotted(load, why, now_s, may_switch=may_switch)
        t = self._timers[load.id]
        t.allotted_since = None
        if not t.wants_on:
            t.unallotted_since = None
            return Verdict(False, False, f"waiting for surplus: {why}", "waiting")
        if t.unallotted_since is None:
            t.unallotted_since = now_s
        short = now_s - t.unallotted_since
        if short < load.off_after_s:
            return Verdict(False, True, f"surplus short for {short:.0f} s of "
                           f"{load.off_after_s:g} s: {why}", "short")
        t.wants_on, t.unallotted_since = False, None
        if self.config.offgrid is not None:
            ran = None if t.on_at is None else now_s - t.on_at
            t.gave_way = 0 if ran is not None and ran >= BACKOFF_RESET_S else t.gave_way + 1
        return Verdict(False, False, f"switched off: {why}", "switched_off")

    def _advance_allotted(self, load: RoutedLoad, why: str, now_s: float, *,
                          may_switch: bool) -> Verdict:
        """An allotted load: its on timer runs, then it switches on when its turn comes."""
        t = self._timers[load.id]
        t.unallotted_since = None
        if t.allotted_since is None:
            t.allotted_since = now_s
        if t.wants_on:
            return Verdict(True, True, f"on surplus: {why}", "on")
        held = now_s - t.allotted_since
        wait = load.on_after_s * self._backoff(t)
        if held < wait:
            tries = f" (backed off: gave way {t.gave_way} times in a row)" if t.gave_way else ""
            return Verdict(True, False, f"allotted for {held:.0f} s of {wait:g} s:"
                           f" {why}{tries}", "allotted", None if not t.gave_way else wait)
        if not may_switch:
            return Verdict(True, False, f"waiting for its turn (one switch-on per "
                           f"{self.config.step_s:g} s)", "waiting_step")
        t.wants_on, self._last_on_s, t.on_at = True, now_s, now_s
        return Verdict(True, True, f"switched on: {why}", "switched_on")

    def _backoff(self, t: _Timers) -> float:
        """How many times on_after_s an off-grid load waits (1 on the grid)."""
        if self.config.offgrid is None:
            return 1.0
        return float(2 ** min(t.gave_way, BACKOFF_MAX_DOUBLINGS))

    def _restart(self, *, clear_last_on: bool) -> None:
        """Forget the average and the allotment timers (what the loads were switched to stays)."""
        self._ema.reset()
        self.available_w = None
        for t in self._timers.values():
            t.allotted_since = t.unallotted_since = None
        if clear_last_on:
            self._last_on_s = None

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data, for the engine to persist."""
        return {
            "ema": self._ema.to_dict(),
            "last_on_s": self._last_on_s,
            "last_step_s": self._last_step_s,
            "day": self._day,
            "loads": {lid: {"wants_on": t.wants_on, "allotted_since_s": t.allotted_since,
                            "unallotted_since_s": t.unallotted_since, "gave_way": t.gave_way,
                            "on_at_s": t.on_at}
                      for lid, t in self._timers.items()},
        }

    @classmethod
    def from_dict(cls, config: AllocatorConfig, loads: Sequence[RoutedLoad],
                  data: Mapping[str, Any]) -> SurplusAllocator:
        """An allocator resumed from `to_dict`'s data; unknown or unreadable parts start fresh."""
        alloc = cls(config, loads)
        alloc._ema.load(data.get("ema"))
        alloc._last_on_s = finite(data.get("last_on_s"))
        alloc._last_step_s = finite(data.get("last_step_s"))
        day = data.get("day")
        alloc._day = day if isinstance(day, int) and not isinstance(day, bool) else None
        saved = data.get("loads")
        for lid, timers in alloc._timers.items():
            one = saved.get(lid) if isinstance(saved, dict) else None
            if isinstance(one, dict):
                timers.wants_on = one.get("wants_on") is True
                timers.allotted_since = finite(one.get("allotted_since_s"))
                timers.unallotted_since = finite(one.get("unallotted_since_s"))
                count = one.get("gave_way")
                timers.gave_way = count if isinstance(count, int) and count >= 0 else 0
                timers.on_at = finite(one.get("on_at_s"))
        return alloc


def _allot_grid(left: float, steered: list[RoutedLoad], now: Mapping[str, LoadNow],
                figures: dict[str, tuple[float, float]] | None = None,
                ) -> dict[str, tuple[bool, str]]:
    """Walk the steered loads in order, allotting each its power while `left` lasts."""
    allotted: dict[str, tuple[bool, str]] = {}
    for load in steered:
        ln = now[load.id]
        # An on load keeps its share down to power - off_import; an off one needs power + margin.
        need = ln.draw_w(load) - load.off_import_w if ln.on else load.power_w + load.margin_w
        if figures is not None:
            figures[load.id] = (max(left, 0.0), need)
        if left >= need:
            allotted[load.id] = (True, f"{left:.0f} W available, needs {need:.0f} W")
            left -= ln.draw_w(load) if ln.on else load.power_w
        else:
            allotted[load.id] = (False, f"{max(left, 0.0):.0f} W available, needs {need:.0f} W")
    return allotted
