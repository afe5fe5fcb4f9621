"""A scripted day for the engine: fake clock, inputs from functions, relays that obey at once.

`run_day` ticks an Engine from `start` to `end`, feeds it the script's signals and tariff,
makes each relay's real output its wish (source auto, unless the script forces a user/shed
output), round-trips the state through JSON every tick (what the service persists) and checks
DESIGN.md's invariants on every tick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.automation.config import AutomationConfig
from services.automation.daily import output_is_on
from services.automation.engine import CHOICES, Decision, Engine
from services.automation.engine_state import (
    STATUSES,
    Inputs,
    RelayInput,
    SignalInput,
    Source,
    TariffInput,
)

PARIS = ZoneInfo("Europe/Paris")
Values = Mapping[str, float | str | None]  # None: the signal is silent this tick


def at(day: str, clock: str) -> datetime:
    """Local Paris time: at("2026-07-01", "10:00")."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=PARIS)


@dataclass
class Script:
    """What the world does: signal values, tariff fields, forced relay outputs."""

    signals: Callable[[datetime, Mapping[str, str]], Values] = lambda now, out: {}
    tariff: Callable[[datetime], Mapping[str, Any] | None] = lambda now: None
    forced: Callable[[datetime], Mapping[str, RelayInput]] = lambda now: {}


@dataclass
class Day:
    """The record of a run: every tick's decisions, and the last state."""

    ticks: list[tuple[datetime, dict[str, Decision]]] = field(default_factory=list)
    state: dict[str, Any] | None = None

    def first(self, relay: str, status: str) -> datetime | None:
        """When the relay first got a status."""
        return next((t for t, d in self.ticks if d[relay].status == status), None)

    def at(self, when: datetime) -> dict[str, Decision]:
        """The decisions of the tick at (or last before) ``when``."""
        return [d for t, d in self.ticks if t <= when][-1]

    def on_spans(self, relay: str) -> list[tuple[datetime, datetime]]:
        """[start, end) of each run of on wishes."""
        spans: list[tuple[datetime, datetime]] = []
        start: datetime | None = None
        for t, d in self.ticks:
            on = output_is_on(d[relay].wish)
            if on and start is None:
                start = t
            elif not on and start is not None:
                spans.append((start, t))
                start = None
        if start is not None:
            spans.append((start, self.ticks[-1][0]))
        return spans


def run_day(config: AutomationConfig, script: Script, start: datetime, end: datetime, *,
            step_s: float | None = None, state: dict[str, Any] | None = None,
            restart_at: datetime | None = None, outputs: dict[str, str] | None = None,
            roundtrip: bool = True) -> Day:
    """Tick from start to end (inclusive) and check the invariants on every tick."""
    engine = Engine(config)
    step = timedelta(seconds=step_s or config.tick_s)
    out = dict(outputs or {load.relay: "off" for load in config.loads})
    source: dict[str, Source] = dict.fromkeys(out, "default")
    received: dict[str, SignalInput] = {}
    changed: dict[str, datetime] = {}
    starts: dict[str, list[datetime]] = {r: [] for r in out}
    day = Day(state=state)
    now = start
    while now <= end:
        if restart_at is not None and now >= restart_at:
            engine, restart_at = Engine(config), None  # a new process, same persisted state
        for name, value in script.signals(now, out).items():
            if value is not None:
                received[name] = SignalInput(value, now)
        raw = script.tariff(now)
        tariff = None if raw is None else TariffInput(received=now, **raw)
        forced = script.forced(now)
        relays = {r: forced.get(r, RelayInput(o, source[r], changed.get(r)))
                  for r, o in out.items()}
        inputs = Inputs(signals=dict(received), tariff=tariff, relays=relays)
        decisions, new_state = engine.tick(now, inputs, day.state)
        day.state = json.loads(json.dumps(new_state)) if roundtrip else new_state
        _check(config, now, relays, decisions, day, changed, starts)
        for r, d in decisions.items():
            real = forced.get(r)
            new_out = d.wish if real is None else real.output
            if output_is_on(new_out) and not output_is_on(relays[r].output):
                starts[r].append(now)
            if output_is_on(new_out) != output_is_on(relays[r].output):
                changed[r] = now
            out[r] = new_out
            source[r] = "auto" if real is None else real.source
        day.ticks.append((now, decisions))
        now = (now.astimezone(UTC) + step).astimezone(start.tzinfo)  # real seconds across DST
    return day


def _check(config: AutomationConfig, now: datetime, relays: Mapping[str, RelayInput],
           decisions: Mapping[str, Decision], day: Day, changed: Mapping[str, datetime],
           starts: Mapping[str, list[datetime]]) -> None:
    """DESIGN.md's invariants, on every tick."""
    before = day.ticks[-1][1] if day.ticks else {}
    for load in config.loads:
        d, real = decisions[load.relay], relays[load.relay]
        on = output_is_on(d.wish)
        assert d.reason and d.reason_en, f"{now} {load.relay}: no reason"
        assert d.status in STATUSES, f"{now} {load.relay}: status {d.status}"
        if d.hold is not None:  # a binding keeps the real output, under a choice's status
            assert d.status in CHOICES and d.wish == real.output, f"{now} {load.relay}: hold"
        if d.status in {"blocked", "done"}:
            assert not on, f"{now} {load.relay}: on while {d.status}: {d.reason}"
        if d.status == "stale" and on:
            prev = before.get(load.relay)
            assert load.when_stale == "hold" and prev is not None and prev.wish == d.wish, (
                f"{now} {load.relay}: on decision on stale input")
        since = changed.get(load.relay)
        age = (now - since).total_seconds() if since is not None else float("inf")
        if d.status in CHOICES and on != output_is_on(real.output):
            limit = load.min_off_s if on else load.min_on_s
            assert age >= limit, f"{now} {load.relay}: {d.status} flips after {age:.0f} s"
        if on and not output_is_on(real.output) and load.max_starts_per_hour is not None:
            recent = [s for s in starts[load.relay] if (now - s).total_seconds() < 3600]
            assert len(recent) < load.max_starts_per_hour, f"{now} {load.relay}: start cap"
        prev = before.get(load.relay)
        if prev is not None and (prev.wish, prev.status, prev.hold) != (d.wish, d.status,
                                                                        d.hold):
            assert any(e.kind == "decision" for e in d.events), f"{now}: change without event"
