"""The automation engine: DESIGN.md's rule order over the pure parts (no I/O, no clock).

`Engine(config).tick(now, inputs, state)` returns one `Decision` per load and the new state
(a JSON-able dict). Rules 1-5 are prohibitions and act at once; rules 6-9 are choices, bound
by min_on_s/min_off_s (timed from the relay's real output) and max_starts_per_hour: the
choice keeps its status and `Decision.hold` says what holds the output. Each reason is a
`words.Reason`, rendered in the automation's language and in English.

The state dict stays the whole truth (the service persists it), but when the dict passed in
is the very one the previous tick returned, the live objects behind it are reused instead of
parsing it again (the usual case: one process ticking every tick_s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.automation.catchup import CatchUp, CatchUpPlan, load_catch_up_windows, plan_catch_up
from services.automation.conditions import (
    HoldState,
    Outcome,
    SignalValue,
    Snapshot,
    Truth,
    evaluate,
    uses_relays,
)
from services.automation.config import DEFAULT_TARIFF_STALE_S, AutomationConfig
from services.automation.daily import AutomationDay, output_is_on
from services.automation.engine_state import (
    Decision,
    Event,
    Hold,
    Inputs,
    LoadState,
    RelayInput,
    Status,
    tariff_facts,
)
from services.automation.loads import LoadConfig
from services.automation.surplus import (
    AllocatorConfig,
    LoadNow,
    OffGridConfig,
    OffGridNow,
    RoutedLoad,
    SurplusAllocator,
    Verdict,
)
from services.automation.units import Window, format_clock
from services.automation.words import Reason, render
from services.core.contract.orders import ORDERS

__all__ = ["Decision", "Engine", "Event", "Inputs"]

LAST_PRIORITY = 1_000_000  # no priority: after every numbered one
# The statuses of rules 6-9 (the choices min_on/min_off/max_starts may hold).
CHOICES = frozenset({"required", "catch_up", "unreachable", "surplus", "scheduled", "idle"})
FULL_CHARGER = frozenset({"absorption", "float"})
Choice = tuple[str, Status, Reason]


@dataclass
class _Pre:
    """Rules 1-7 for one load: a decision (rules 1-5 final; 6-7 a choice) or None (free)."""

    wish: bool | None  # True on, False off, None: no rule yet (surplus, schedule)
    status: Status
    reason: Reason
    prohibition: bool
    events: list[Event]
    value: str | None = None  # the exact output (a held zone order), else from wish


_FREE = Reason("idle")
_NONE_GIVEN = Outcome(Truth.FAILS)  # an empty condition list: never holds


@dataclass
class _LoadTick:
    """One load during one tick."""

    load: LoadConfig
    ls: LoadState
    ri: RelayInput | None
    on_s: float = 0.0  # its real on-time today
    plan: CatchUpPlan | None = None  # None: no daily minimum
    pre: _Pre | None = None

    @property
    def real_on(self) -> bool | None:
        """Its real output counts as on (None: unknown)."""
        return None if self.ri is None else _counts_on(self.ri)


class _Instant(datetime):
    """A datetime that knows its epoch seconds: the rules ask ~10 times per load and tick, and
    an aware datetime's timestamp() costs ~1.8 us here. Arithmetic on it gives instants
    without the cache, which compute theirs as usual."""

    __slots__ = ("_epoch",)
    _epoch: float

    @classmethod
    def of(cls, now: datetime) -> datetime:
        """``now`` (aware) with its epoch seconds kept."""
        inst = cls(now.year, now.month, now.day, now.hour, now.minute, now.second,
                   now.microsecond, tzinfo=now.tzinfo, fold=now.fold)
        inst._epoch = now.timestamp()
        return inst

    def timestamp(self) -> float:
        """Epoch seconds, kept when made by `of`."""
        try:
            return self._epoch
        except AttributeError:
            return super().timestamp()


@dataclass
class _Live:
    """The objects behind a state dict: per-load state, for_s timers, the allocator."""

    loads: dict[str, LoadState]
    hold: HoldState
    alloc: SurplusAllocator


class Engine:
    """DESIGN.md's ten-step rule order for every load of an `automation` section."""

    def __init__(self, config: AutomationConfig) -> None:
        self.config = config
        self.language = config.language
        self.day = AutomationDay.of(config.timezone, config.day_starts_at)
        self.tz = self.day.tz
        self.tariff_stale_s = (config.tariff.stale_after_s if config.tariff is not None
                               else DEFAULT_TARIFF_STALE_S)
        self.routed = tuple(
            RoutedLoad(id=load.relay, priority=load.priority if load.priority is not None
                       else LAST_PRIORITY, power_w=load.power_w or 0.0,
                       margin_w=load.surplus.margin_w, on_after_s=load.surplus.on_after_s,
                       off_import_w=load.surplus.off_import_w,
                       off_after_s=load.surplus.off_after_s)
            for load in config.loads if load.surplus is not None)
        surplus = config.surplus
        self.alloc_config = AllocatorConfig() if surplus is None else AllocatorConfig(
            smoothing_s=surplus.smoothing_s, reserve_w=surplus.reserve_w,
            step_s=surplus.step_s, offgrid=None if surplus.offgrid is None
            else OffGridConfig(discharge_a=surplus.offgrid.discharge_a))
        # Fixed per load: its condition lists and prefixes, and the relays conditions read.
        self._conditions = {load.relay: tuple((key, conds, f"{load.relay}.{key}")
                                              for key, conds in load.conditions().items())
                            for load in config.loads}
        self._by = {load.relay: format_clock(config.by_of(load)) for load in config.loads}
        self._read_relays = frozenset().union(*(
            uses_relays(conds) for load in config.loads for conds in load.conditions().values()))
        self._last: tuple[Mapping[str, Any], _Live] | None = None
        # Catch-up windows per (relay, learned off-peak): they change when the meter's do.
        self._windows: dict[tuple[str, tuple[Window, ...] | None], tuple[Window, ...] | None]
        self._windows = {}
        self._offgrid_now: tuple[str, float] | None = None  # this tick's charger state, amps

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def is_zone(load: LoadConfig) -> bool:
        """A fil pilote zone: its default is an order."""
        return load.default in ORDERS

    def on_value(self, load: LoadConfig) -> str:
        """What a rule that says on gives."""
        return "confort" if self.is_zone(load) else "on"

    def off_value(self, load: LoadConfig) -> str:
        """What blocked and stale give: a zone's default order, else off."""
        return load.default if self.is_zone(load) and load.default else "off"

    def words(self, reason: Reason) -> tuple[str, str]:
        """The reason in the automation's language, and in English."""
        en = render(reason, "en")
        return (en if self.language == "en" else render(reason, self.language)), en

    def _snapshot(self, now: datetime, inputs: Inputs,
                  states: Mapping[str, LoadState]) -> Snapshot:
        signals = {}
        for name, sc in self.config.signals.items():
            si = inputs.signals.get(name)
            signals[name] = (SignalValue(None, True) if si is None
                             else SignalValue(si.value, si.stale(now, sc.stale_after_s)))
        since = {}
        for relay in self._read_relays:  # only for_s on a relay reads these
            ri = inputs.relays.get(relay)
            ls = states.get(relay)
            if ri is not None and ri.since is not None:
                since[relay] = ri.since
            elif ls is not None and ls.counter.since_ts is not None:
                since[relay] = datetime.fromtimestamp(ls.counter.since_ts, self.tz)
        return Snapshot(now=now, signals=signals,
                        tariff=tariff_facts(inputs.tariff, now, self.tariff_stale_s),
                        relays={r: ri.output for r, ri in inputs.relays.items()},
                        relays_since=since)

    def _number(self, snap: Snapshot, name: str | None) -> float | None:
        sig = snap.signals.get(name or "")
        if sig is None or sig.stale or isinstance(sig.value, str | bool) or sig.value is None:
            return None
        return float(sig.value)

    def _resume(self, state: Mapping[str, Any] | None) -> _Live:
        """The live objects of ``state``: reused when it is what the last tick returned."""
        last, self._last = self._last, None  # a tick that raises must not leave them half-run
        if last is not None and state is last[0]:
            return last[1]
        saved = state or {}
        raw_loads = saved.get("loads")
        loads_data = raw_loads if isinstance(raw_loads, Mapping) else {}
        raw_alloc = saved.get("allocator")
        return _Live(
            loads={load.relay: LoadState.from_dict(self.day, loads_data.get(load.relay))
                   for load in self.config.loads},
            hold=HoldState.from_json(saved.get("hold")),
            alloc=SurplusAllocator.from_dict(self.alloc_config, self.routed, raw_alloc)
            if isinstance(raw_alloc, Mapping) else SurplusAllocator(self.alloc_config,
                                                                    self.routed))

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: datetime, inputs: Inputs, state: Mapping[str, Any] | None = None
             ) -> tuple[dict[str, Decision], dict[str, Any]]:
        """One tick at aware ``now``: the decisions per relay and the state to persist.

        Give back the returned dict untouched (its engine keys) as the next tick's ``state``.
        """
        now = _Instant.of(now.astimezone(self.tz))
        live = self._resume(state)
        today = self.day.day_of(now)
        ticks = [_LoadTick(load, live.loads[load.relay], inputs.relays.get(load.relay))
                 for load in self.config.loads]
        for lt in ticks:
            self._observe(lt, now, today)
        snap = self._snapshot(now, inputs, live.loads)
        hold = live.hold
        for lt in ticks:
            if lt.load.relay in inputs.disabled:
                lt.pre = _Pre(False, "disabled", Reason("disabled"), True, [])
                lt.plan = self._plan(lt, now, inputs)
                continue
            lt.pre, hold = self._rules_1_to_7(lt, snap, hold, inputs)
        live.hold = hold
        verdicts = self._surplus(snap, ticks, live.alloc, today.toordinal(), inputs.disabled)
        decisions = {lt.load.relay: self._decide(lt, now, verdicts.get(lt.load.relay),
                                                 live.alloc)
                     for lt in ticks}
        new_state = {"version": 1, "hold": hold.to_json(), "allocator": live.alloc.to_dict(),
                     "loads": {r: ls.to_dict() for r, ls in live.loads.items()}}
        self._last = (new_state, live)
        return decisions, new_state

    def _observe(self, lt: _LoadTick, now: datetime, today: date) -> None:
        """The relay's real output into the load's counters (the change when it happened)."""
        if lt.ri is not None:
            counter, on = lt.ls.counter, _counts_on(lt.ri)
            was = counter.on
            since = lt.ri.since
            if (since is not None and was is not None and on != was
                    and counter.last_ts is not None
                    and counter.last_ts <= since.timestamp() <= now.timestamp()):
                counter.observe(since, on)  # the change when it happened, not when seen
            counter.observe(now, on)
            lt.ls.count_start(today, was is False and lt.ls.counter.on is True)
        else:
            lt.ls.count_start(today, False)
        lt.on_s = lt.ls.counter.on_time_s(now)

    def _plan(self, lt: _LoadTick, now: datetime, inputs: Inputs) -> CatchUpPlan | None:
        """Rule 7's plan (catchup.plan_for_load, its windows kept), for a daily minimum."""
        load = lt.load
        if load.daily is None or load.daily.min_on is None:
            return None
        key = (load.relay, inputs.offpeak)
        if key not in self._windows:
            if len(self._windows) > 64:  # a meter whose learned hours keep changing
                self._windows.clear()
            self._windows[key] = load_catch_up_windows(self.config, load, inputs.offpeak)
        return plan_catch_up(self.day, now, max(0.0, load.daily.min_on - lt.on_s),
                             self._windows[key], self.config.by_of(load),
                             tick_s=self.config.tick_s)

    def _decide(self, lt: _LoadTick, now: datetime, verdict: Verdict | None,
                alloc: SurplusAllocator) -> Decision:
        """Rules 8-9 and the bindings over rules 1-7's outcome; events on a change."""
        assert lt.pre is not None
        ls, load, plan = lt.ls, lt.load, lt.plan
        wish, status, hold, reason = self._choose(lt, now, verdict, alloc)
        text, text_en = self.words(reason)
        events = list(lt.pre.events)
        if (wish, status, hold) != (ls.wish, ls.status, ls.hold):
            events.append(Event("decision", load.relay, wish, status, text, text_en))
        ls.wish, ls.status, ls.hold = wish, status, hold
        min_on = load.daily.min_on if load.daily is not None else None
        return Decision(relay=load.relay, wish=wish, status=status, hold=hold, reason=text,
                        reason_en=text_en, on_today_s=lt.on_s,
                        remaining_s=None if plan is None else plan.owed_s,
                        latest_start=None if plan is None else plan.latest_start,
                        starts_today=ls.starts_today, min_on_s=min_on,
                        by=None if min_on is None else self._by[load.relay],
                        events=tuple(events))

    def _rules_1_to_7(self, lt: _LoadTick, snap: Snapshot, hold: HoldState,
                      inputs: Inputs) -> tuple[_Pre, HoldState]:
        outcomes: dict[str, Outcome] = {}
        for key, conds, prefix in self._conditions[lt.load.relay]:
            if conds:
                outcomes[key], hold = evaluate(conds, snap, hold, prefix)
            else:  # nothing to hold, nothing to time (and no for_s entry to drop)
                outcomes[key] = _NONE_GIVEN
        lt.plan = self._plan(lt, snap.now, inputs)
        pre = self._prohibitions(lt, snap, outcomes)
        return pre or self._rules_6_7(lt, snap.now, outcomes["require"]), hold

    def _prohibitions(self, lt: _LoadTick, snap: Snapshot,
                      outcomes: Mapping[str, Outcome]) -> _Pre | None:
        """Rules 1-5: stale, block, outside allow, done, battery floor (None: none holds)."""
        load, ls, now = lt.load, lt.ls, snap.now
        stale: set[str] = set().union(*(o.stale for o in outcomes.values()))
        level = None if load.battery is None else self._number(snap, load.battery.signal)
        if load.battery is not None and level is None:
            stale.add(load.battery.signal)
        if stale:  # 1
            return self._stale(load, ls, now, sorted(stale))
        ls.stale_since = None
        block = outcomes["block"]
        if block.holds and block.matched is not None:  # 2
            return _Pre(False, "blocked", Reason.of("blocked", cond=block.matched), True, [])
        if load.allow and outcomes["allow"].truth is Truth.FAILS:  # 3
            return _Pre(False, "blocked", Reason.of("outside_allow", allow=tuple(load.allow)),
                        True, [])
        if outcomes["done_when"].holds:  # 4
            ls.counter.mark_done(now)
        max_on = load.daily.max_on if load.daily is not None else None
        if max_on is not None and lt.on_s >= max_on:
            return _Pre(False, "done", Reason.of("max_on", on_s=max_on), True, [])
        if ls.counter.is_done(now):
            return _Pre(False, "done", Reason.of("done_when", cond=tuple(load.done_when or ()),
                                                 on_s=round(lt.on_s)), True, [])
        return self._battery(lt, level)  # 5

    @staticmethod
    def _battery(lt: _LoadTick, level: float | None) -> _Pre | None:
        """Rule 5: under the floor, off; back only at resume (the band is kept in state)."""
        floor, ls = lt.load.battery, lt.ls
        if floor is None or level is None:
            return None
        if ls.battery_low and level >= floor.resume:
            ls.battery_low = False
        elif not ls.battery_low and level < floor.min:
            ls.battery_low = True
        if not ls.battery_low:
            return None
        return _Pre(False, "blocked", Reason.of("battery_low", signal=floor.signal, level=level,
                                                min=floor.min, resume=floor.resume), True, [])

    def _catch_up_reason(self, key: str, lt: _LoadTick, plan: CatchUpPlan) -> Reason:
        daily = lt.load.daily
        return Reason.of(key, owed_s=round(plan.owed_s), available_s=round(plan.available_s),
                         by=self._by[lt.load.relay],
                         offpeak=daily is not None and daily.catch_up == "offpeak")

    def _rules_6_7(self, lt: _LoadTick, now: datetime, require: Outcome) -> _Pre:
        """Rule 6 (require) and rule 7 (catch-up); a _Pre without a wish when neither holds."""
        if require.holds and require.matched is not None:
            return _Pre(True, "required", Reason.of("required", cond=require.matched), False,
                        [])
        plan, events = lt.plan, list[Event]()
        if plan is None:
            return _Pre(None, "idle", _FREE, False, events)
        if plan.verdict is CatchUp.UNREACHABLE and lt.ls.counter.note_unreachable(now):
            why = self._catch_up_reason("unreachable", lt, plan)
            events.append(Event("unreachable", lt.load.relay, self.on_value(lt.load),
                                "unreachable", *self.words(why)))
        if not plan.on:
            return _Pre(None, "idle", _FREE, False, events)
        if plan.verdict is CatchUp.RUN:
            return _Pre(True, "catch_up", self._catch_up_reason("catch_up", lt, plan), False,
                        events)
        return _Pre(True, "unreachable", self._catch_up_reason("unreachable", lt, plan), False,
                    events)

    def _stale(self, load: LoadConfig, ls: LoadState, now: datetime,
               names: Sequence[str]) -> _Pre:
        t = now.timestamp()
        if ls.stale_since is None:
            ls.stale_since = t
        what = tuple(names)
        if load.when_stale == "hold" and ls.wish is not None:
            left = load.hold_s - (t - ls.stale_since)
            if left > 0:
                return _Pre(output_is_on(ls.wish), "stale",
                            Reason.of("stale_hold", inputs=what, wish=ls.wish,
                                      left_s=math.ceil(left)), True, [], value=ls.wish)
        return _Pre(False, "stale", Reason.of("stale_off", inputs=what), True, [])

    def _surplus(self, snap: Snapshot, ticks: Sequence[_LoadTick], alloc: SurplusAllocator,
                 day: int, disabled: frozenset[str]) -> dict[str, Verdict]:
        """Rule 8: one allocator step over the routed loads rules 1-5 leave free.

        A disabled load is left out: not allotted, and its power is not counted as routed
        (it is the house's, seen on the grid like any other).
        """
        surplus = self.config.surplus
        if surplus is None or not self.routed:
            return {}
        loads_now: dict[str, LoadNow] = {}
        for lt in ticks:
            if lt.load.surplus is None or lt.pre is None or lt.load.relay in disabled:
                continue
            on = bool(lt.real_on)
            other = lt.pre.wish is True or (on and lt.ri is not None and lt.ri.source == "user")
            loads_now[lt.load.relay] = LoadNow(
                on=on, free=not lt.pre.prohibition,
                measured_w=self._number(snap, lt.load.power_from), on_for_other_reason=other)
        offgrid: OffGridNow | None = None
        self._offgrid_now = None
        if surplus.offgrid is not None:
            charger = snap.signals.get(surplus.offgrid.charger)
            current = self._number(snap, surplus.offgrid.battery_current)
            if charger is not None and not charger.stale and current is not None:
                offgrid = OffGridNow(charger_full=str(charger.value).lower() in FULL_CHARGER,
                                     battery_a=current)
                self._offgrid_now = (str(charger.value).lower(), round(current, 1))
        grid = self._number(snap, surplus.grid)
        return alloc.step(snap.now.timestamp(), grid, loads_now, offgrid=offgrid, day=day)

    def _surplus_reason(self, key: str, load: LoadConfig, verdict: Verdict,
                        alloc: SurplusAllocator) -> Reason:
        """The allocator's verdict with its figures (what was left for the load, its need)."""
        surplus = load.surplus
        if self._offgrid_now is not None:  # no export to see: the charger and the battery
            charger, amps = self._offgrid_now
            return Reason.of(key, code=verdict.code, charger=charger, battery_a=amps,
                             on_after_s=verdict.on_after_s if verdict.on_after_s is not None
                             else None if surplus is None else surplus.on_after_s,
                             off_after_s=None if surplus is None else surplus.off_after_s,
                             step_s=self.alloc_config.step_s)
        have, need = alloc.figures.get(load.relay, (alloc.available_w, None))
        # To 10 W: what a reader needs, and the sentence repeats (rendered once) tick to tick.
        return Reason.of(key, code=verdict.code,
                         available_w=None if have is None else round(have, -1),
                         need_w=None if need is None else round(need, -1),
                         on_after_s=None if surplus is None else surplus.on_after_s,
                         off_after_s=None if surplus is None else surplus.off_after_s,
                         step_s=self.alloc_config.step_s)

    def _choose(self, lt: _LoadTick, now: datetime, verdict: Verdict | None,
                alloc: SurplusAllocator) -> tuple[str, Status, Hold | None, Reason]:
        load, pre = lt.load, lt.pre
        assert pre is not None
        on_value = self.on_value(load)
        if pre.prohibition:  # rules 1-5 act at once, whatever min_on/min_off say
            value = pre.value or (on_value if pre.wish else self.off_value(load))
            return value, pre.status, None, pre.reason
        choice: Choice
        if pre.wish is not None:
            choice = on_value, pre.status, pre.reason
        elif verdict is not None and verdict.wants_on:
            choice = on_value, "surplus", self._surplus_reason("surplus", load, verdict, alloc)
        else:
            scheduled = load.scheduled(now)
            if scheduled is not None:
                choice = scheduled, "scheduled", Reason.of("scheduled", value=scheduled)
            else:
                default = load.default or "off"
                waiting = (None if verdict is None
                           else self._surplus_reason("waiting", load, verdict, alloc))
                choice = default, "idle", self._idle_reason(lt, default, waiting)
        return self._bind(lt, now, choice)

    def _idle_reason(self, lt: _LoadTick, default: str, waiting: Reason | None) -> Reason:
        """Nothing applies: the default, what it waits for, and a catch-up to come."""
        plan = lt.plan
        if plan is None or plan.verdict is not CatchUp.WAIT or plan.latest_start is None:
            return Reason.of("idle", value=default, surplus=waiting)
        start = plan.latest_start
        return Reason.of("idle", value=default, surplus=waiting,
                         catch_up_at=f"{start.hour:02d}:{start.minute:02d}",
                         owed_s=round(plan.owed_s), by=self._by[lt.load.relay])

    @staticmethod
    def _bind(lt: _LoadTick, now: datetime, choice: Choice
              ) -> tuple[str, Status, Hold | None, Reason]:
        """min_on_s / min_off_s / max_starts_per_hour over a choice (rules 6-9).

        The output is held, the status stays the choice's, and the reason says both.
        """
        wish, status, reason = choice
        load, ls, ri, real_on = lt.load, lt.ls, lt.ri, lt.real_on
        if real_on is None or ri is None:
            return wish, status, None, reason
        want_on = output_is_on(wish)
        if real_on and not want_on and load.min_on_s > 0:
            on_for = ls.counter.on_for_s(now)
            if on_for < load.min_on_s:
                return ri.output, status, "min_on", Reason.of(
                    "min_on", min_s=load.min_on_s, left_s=math.ceil(load.min_on_s - on_for),
                    then=reason)
        if not real_on and want_on:
            off_for = ls.counter.off_for_s(now)
            if load.min_off_s > 0 and off_for < load.min_off_s:
                return ri.output, status, "min_off", Reason.of(
                    "min_off", min_s=load.min_off_s,
                    left_s=math.ceil(load.min_off_s - off_for), then=reason)
            cap = load.max_starts_per_hour
            starts = ls.counter.starts_last_hour(now) if cap is not None else 0
            if cap is not None and starts >= cap:
                return ri.output, status, "max_starts", Reason.of(
                    "max_starts", starts=starts, cap=cap, then=reason)
        return wish, status, None, reason


def _counts_on(ri: RelayInput) -> bool:
    """The relay's real output counts as on (shed time is not on-time)."""
    return ri.source != "shed" and output_is_on(ri.output)

