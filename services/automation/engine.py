"""The automation engine: DESIGN.md's rule order over the pure parts (no I/O, no clock).

`Engine(config).tick(now, inputs, state)` returns one `Decision` per load and the new state
(a JSON-able dict). Rules 1-5 are prohibitions and act at once; rules 6-9 are choices, bound
by min_on_s/min_off_s (timed from the relay's real output) and max_starts_per_hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.automation.catchup import CatchUp, CatchUpPlan, plan_for_load
from services.automation.conditions import (
    Condition,
    HoldState,
    Outcome,
    SignalValue,
    Snapshot,
    Truth,
    evaluate,
)
from services.automation.config import DEFAULT_TARIFF_STALE_S, AutomationConfig
from services.automation.daily import AutomationDay, output_is_on
from services.automation.engine_state import (
    Decision,
    Event,
    Inputs,
    LoadState,
    RelayInput,
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
from services.core.contract.orders import ORDERS

__all__ = ["Decision", "Engine", "Event", "Inputs"]

LAST_PRIORITY = 1_000_000  # no priority: after every numbered one
CHOICES = frozenset({"required", "catch_up", "unreachable", "surplus", "schedule", "default"})
FULL_CHARGER = frozenset({"absorption", "float"})


def describe(cond: Condition) -> str:
    """A condition map in plain words: 'tempo_today red, period hp'."""
    data = cond.model_dump(mode="json", by_alias=True, exclude_none=True)
    return ", ".join(f"{k} {v}" for k, v in data.items())


@dataclass
class _Pre:
    """Rules 1-7 for one load: a decision (rules 1-5 final; 6-7 a choice) or None (free)."""

    wish: bool | None  # True on, False off, None: no rule yet (surplus, schedule)
    status: str
    reason: str
    prohibition: bool
    events: list[Event]
    value: str | None = None  # the exact output (a held zone order), else from wish


@dataclass
class _LoadTick:
    """One load during one tick."""

    load: LoadConfig
    ls: LoadState
    ri: RelayInput | None
    plan: CatchUpPlan | None = None
    pre: _Pre | None = None

    @property
    def real_on(self) -> bool | None:
        """Its real output counts as on (None: unknown)."""
        return None if self.ri is None else _counts_on(self.ri)


class Engine:
    """DESIGN.md's ten-step rule order for every load of an `automation` section."""

    def __init__(self, config: AutomationConfig) -> None:
        self.config = config
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

    def _snapshot(self, now: datetime, inputs: Inputs,
                  states: Mapping[str, LoadState]) -> Snapshot:
        signals = {}
        for name, sc in self.config.signals.items():
            si = inputs.signals.get(name)
            signals[name] = (SignalValue(None, True) if si is None
                             else SignalValue(si.value, si.stale(now, sc.stale_after_s)))
        since = {}
        for relay, ls in states.items():
            if ls.counter.since_ts is not None:
                since[relay] = datetime.fromtimestamp(ls.counter.since_ts, self.tz)
        for relay, ri in inputs.relays.items():
            if ri.since is not None:
                since[relay] = ri.since
        return Snapshot(now=now, signals=signals,
                        tariff=tariff_facts(inputs.tariff, now, self.tariff_stale_s),
                        relays={r: ri.output for r, ri in inputs.relays.items()},
                        relays_since=since)

    def _number(self, snap: Snapshot, name: str | None) -> float | None:
        sig = snap.signals.get(name or "")
        if sig is None or sig.stale or isinstance(sig.value, str | bool) or sig.value is None:
            return None
        return float(sig.value)

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: datetime, inputs: Inputs, state: Mapping[str, Any] | None = None
             ) -> tuple[dict[str, Decision], dict[str, Any]]:
        """One tick at aware ``now``: the decisions per relay and the state to persist."""
        now = now.astimezone(self.tz)
        saved = state or {}
        raw_loads = saved.get("loads")
        loads_data = raw_loads if isinstance(raw_loads, Mapping) else {}
        states = {load.relay: LoadState.from_dict(self.day, loads_data.get(load.relay))
                  for load in self.config.loads}
        hold = HoldState.from_json(saved.get("hold"))
        raw_alloc = saved.get("allocator")
        alloc = SurplusAllocator.from_dict(self.alloc_config, self.routed, raw_alloc) if (
            isinstance(raw_alloc, Mapping)) else SurplusAllocator(self.alloc_config, self.routed)
        today = self.day.day_of(now)
        ticks = [_LoadTick(load, states[load.relay], inputs.relays.get(load.relay))
                 for load in self.config.loads]
        for lt in ticks:
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
        snap = self._snapshot(now, inputs, states)
        for lt in ticks:
            lt.pre, hold = self._rules_1_to_7(lt, snap, hold, inputs)
        verdicts = self._surplus(snap, ticks, alloc, today.toordinal())
        decisions = {lt.load.relay: self._decide(lt, now, verdicts.get(lt.load.relay))
                     for lt in ticks}
        new_state = {"version": 1, "hold": hold.to_json(), "allocator": alloc.to_dict(),
                     "loads": {r: ls.to_dict() for r, ls in states.items()}}
        return decisions, new_state

    def _decide(self, lt: _LoadTick, now: datetime, verdict: Verdict | None) -> Decision:
        """Rules 8-9 and the bindings over rules 1-7's outcome; events on a change."""
        assert lt.pre is not None and lt.plan is not None
        ls, load = lt.ls, lt.load
        wish, status, reason = self._choose(lt, now, verdict)
        events = list(lt.pre.events)
        if (wish, status) != (ls.wish, ls.status):
            events.append(Event("decision", load.relay, wish, status, reason))
        ls.wish, ls.status = wish, status
        min_on = load.daily.min_on if load.daily is not None else None
        return Decision(relay=load.relay, wish=wish, status=status, reason=reason,
                        on_today_s=ls.counter.on_time_s(now),
                        remaining_s=None if min_on is None else lt.plan.owed_s,
                        latest_start=lt.plan.latest_start, starts_today=ls.starts_today,
                        events=tuple(events))

    def _rules_1_to_7(self, lt: _LoadTick, snap: Snapshot, hold: HoldState,
                      inputs: Inputs) -> tuple[_Pre, HoldState]:
        outcomes: dict[str, Outcome] = {}
        for key, conds in lt.load.conditions().items():
            outcomes[key], hold = evaluate(conds, snap, hold, f"{lt.load.relay}.{key}")
        lt.plan = plan_for_load(self.config, lt.load, self.day, snap.now,
                                lt.ls.counter.on_time_s(snap.now), learned_offpeak=inputs.offpeak)
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
            return _Pre(False, "blocked", f"block holds: {describe(block.matched)}", True, [])
        if load.allow and outcomes["allow"].truth is Truth.FAILS:  # 3
            windows = "; ".join(describe(c) for c in load.allow)
            return _Pre(False, "blocked", f"outside allow ({windows})", True, [])
        if outcomes["done_when"].holds:  # 4
            ls.counter.mark_done(now)
        max_on = load.daily.max_on if load.daily is not None else None
        if ls.counter.max_reached(now, max_on):
            return _Pre(False, "done", f"daily max_on reached: on "
                        f"{ls.counter.on_time_s(now):.0f} s of {max_on:g} s today", True, [])
        if ls.counter.is_done(now):
            return _Pre(False, "done", "done_when held today: "
                        + "; ".join(describe(c) for c in load.done_when or ()), True, [])
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
        return _Pre(False, "blocked", f"battery {floor.signal} {level:g} under the floor "
                    f"{floor.min:g} (back at {floor.resume:g})", True, [])

    def _rules_6_7(self, lt: _LoadTick, now: datetime, require: Outcome) -> _Pre:
        """Rule 6 (require) and rule 7 (catch-up); a _Pre without a wish when neither holds."""
        if require.holds and require.matched is not None:
            return _Pre(True, "required", f"require holds: {describe(require.matched)}",
                        False, [])
        plan, events = lt.plan, []
        assert plan is not None
        if plan.verdict is CatchUp.UNREACHABLE and lt.ls.counter.note_unreachable(now):
            events.append(Event("unreachable", lt.load.relay, self.on_value(lt.load),
                                "unreachable", f"daily min_on unreachable: {plan.owed_s:.0f} s "
                                f"owed, {plan.available_s:.0f} s of catch-up time left before "
                                f"{plan.by:%H:%M}"))
        if not plan.on:
            return _Pre(None, "", "", False, events)
        if plan.verdict is CatchUp.RUN:
            return _Pre(True, "catch_up", f"catch-up: {plan.owed_s:.0f} s owed still fits "
                        f"before {plan.by:%H:%M} only from now", False, events)
        return _Pre(True, "unreachable", f"catch-up: {plan.owed_s:.0f} s owed no longer fits "
                    f"({plan.available_s:.0f} s left before {plan.by:%H:%M}): running what "
                    "is left", False, events)

    def _stale(self, load: LoadConfig, ls: LoadState, now: datetime,
               names: Sequence[str]) -> _Pre:
        t = now.timestamp()
        if ls.stale_since is None:
            ls.stale_since = t
        what = ", ".join(names)
        if load.when_stale == "hold" and ls.wish is not None:
            left = load.hold_s - (t - ls.stale_since)
            if left > 0:
                return _Pre(output_is_on(ls.wish), "stale", f"stale input {what}: holding the "
                            f"last wish {ls.wish} ({left:.0f} s of hold_s left)", True, [],
                            value=ls.wish)
        return _Pre(False, "stale", f"stale input {what}: off", True, [])

    def _surplus(self, snap: Snapshot, ticks: Sequence[_LoadTick], alloc: SurplusAllocator,
                 day: int) -> dict[str, Verdict]:
        """Rule 8: one allocator step over the routed loads rules 1-5 leave free."""
        surplus = self.config.surplus
        if surplus is None or not self.routed:
            return {}
        loads_now: dict[str, LoadNow] = {}
        for lt in ticks:
            if lt.load.surplus is None or lt.pre is None:
                continue
            on = bool(lt.real_on)
            other = lt.pre.wish is True or (on and lt.ri is not None and lt.ri.source == "user")
            loads_now[lt.load.relay] = LoadNow(
                on=on, free=not lt.pre.prohibition,
                measured_w=self._number(snap, lt.load.power_from), on_for_other_reason=other)
        offgrid: OffGridNow | None = None
        if surplus.offgrid is not None:
            charger = snap.signals.get(surplus.offgrid.charger)
            current = self._number(snap, surplus.offgrid.battery_current)
            if charger is not None and not charger.stale and current is not None:
                offgrid = OffGridNow(charger_full=str(charger.value).lower() in FULL_CHARGER,
                                     battery_a=current)
        grid = self._number(snap, surplus.grid)
        return alloc.step(snap.now.timestamp(), grid, loads_now, offgrid=offgrid, day=day)

    def _choose(self, lt: _LoadTick, now: datetime, verdict: Verdict | None
                ) -> tuple[str, str, str]:
        load, pre = lt.load, lt.pre
        assert pre is not None
        on_value, off_value = self.on_value(load), self.off_value(load)
        if pre.prohibition:  # rules 1-5 act at once, whatever min_on/min_off say
            value = pre.value or (on_value if pre.wish else off_value)
            return value, pre.status, pre.reason
        if pre.wish is not None:
            wish, status, reason = on_value, pre.status, pre.reason
        elif verdict is not None and verdict.wants_on:
            wish, status, reason = on_value, "surplus", f"surplus: {verdict.reason}"
        else:
            scheduled = load.scheduled(now)
            note = "" if verdict is None else f" (surplus: {verdict.reason})"
            if scheduled is not None:
                wish, status = scheduled, "schedule"
                reason = f"schedule: {scheduled}{note}"
            else:
                wish, status = load.default or "off", "default"
                reason = f"nothing applies: default {wish}{note}"
        return self._bind(lt, now, (wish, status, reason))

    @staticmethod
    def _bind(lt: _LoadTick, now: datetime, choice: tuple[str, str, str]
              ) -> tuple[str, str, str]:
        """min_on_s / min_off_s / max_starts_per_hour over a choice (rules 6-9)."""
        wish, status, reason = choice
        load, ls, ri, real_on = lt.load, lt.ls, lt.ri, lt.real_on
        if real_on is None or ri is None:
            return choice
        want_on = output_is_on(wish)
        if real_on and not want_on and load.min_on_s > 0:
            on_for = ls.counter.on_for_s(now)
            if on_for < load.min_on_s:
                return ri.output, "min_on", (f"min_on_s: on for {on_for:.0f} s of "
                                             f"{load.min_on_s:g} s (then {status}: {reason})")
        if not real_on and want_on:
            off_for = ls.counter.off_for_s(now)
            if load.min_off_s > 0 and off_for < load.min_off_s:
                return ri.output, "min_off", (f"min_off_s: off for {off_for:.0f} s of "
                                              f"{load.min_off_s:g} s (then {status}: {reason})")
            cap = load.max_starts_per_hour
            if cap is not None and ls.counter.starts_last_hour(now) >= cap:
                return ri.output, "waiting", (
                    f"max_starts_per_hour: {ls.counter.starts_last_hour(now)} starts in the "
                    f"last hour, cap {cap} (then {status}: {reason})")
        return wish, status, reason


def _counts_on(ri: RelayInput) -> bool:
    """The relay's real output counts as on (shed time is not on-time)."""
    return ri.source != "shed" and output_is_on(ri.output)
