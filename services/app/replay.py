"""`enerbox automation replay`: the automation on a recorded day, with a simulated clock.

Pure: rows in (replay_rows), output lines and a summary out. The engine ticks every `tick_s`
from the first row's time to the last's (that one included) and sees the rows up to each
tick's time (through the same `InputTracker` the service uses); the relays' own rules
(services.relays.model: precedence shed > user > auto > default, forced-mode expiry, the
`relays` section's minimum on/off times) decide each relay's real output, which goes back to
the engine as its `RelayInput`. The recording is the home without the steered loads: while
a load is on, its `power_w` is added to the `surplus.grid` signal, and a `power_from` signal
the recording never carries reads `power_w` while on, 0 while off.

It lives in the composition root because it joins two services' rules (no service imports
another).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.automation.config import AutomationConfig
from services.automation.engine import Decision, Engine
from services.automation.engine_state import Inputs, RelayInput, SignalInput, Source
from services.automation.inputs import InputTracker
from services.automation.replay_rows import Row
from services.core.contract import (
    ON_ORDERS,
    AutomationSwitch,
    DeviceState,
    RelayCommand,
    ShedFlag,
    TopicKind,
)
from services.relays.commands import decode_for
from services.relays.config import RelayConfig
from services.relays.model import (
    RelayState,
    apply_command,
    desired,
    expire,
    hold_for_min_time,
    wish_value,
)

_SOURCES: Mapping[str, Source] = {"auto": "auto", "user": "user", "shed": "shed",
                                  "failsafe": "shed", "default": "default"}
_WORDS = {  # the replay's own reasons, in the automation's language
    "fr": {"user": "ordre de l'utilisateur : {mode}", "until": " jusqu'à {until}",
           "shed": "délesté", "shed_why": "délesté : {why}", "default": "sortie par défaut"},
    "en": {"user": "user order: {mode}", "until": " until {until}",
           "shed": "shed", "shed_why": "shed: {why}", "default": "default output"},
}


class ReplayError(ValueError):
    """A configuration or a row the replay cannot run (the message says which)."""


@dataclass
class SimRelay:
    """One relay as the relays service would run it, with its day's figures."""

    cfg: RelayConfig
    power_w: float
    state: RelayState = field(default_factory=RelayState)
    output: str = ""
    source: str = "default"
    changed_at: float = 0.0
    since: datetime | None = None  # when the replay last changed its output
    wish: str | None = None  # the automation's wish, in this relay's values
    decision: Decision | None = None
    on_s: float = 0.0
    starts: int = 0

    @property
    def on(self) -> bool:
        """Its output draws power (on, or confort, confort-1, confort-2 for a zone)."""
        return self.output == "on" or self.output in ON_ORDERS


@dataclass
class Result:
    """The output lines (dicts, in order) and the summary for stderr."""

    lines: list[dict[str, Any]]
    summary: dict[str, Any]


class Replay:
    """The automation and the relays it drives, on a simulated clock."""

    def __init__(self, automation: AutomationConfig, relays: Iterable[RelayConfig],
                 relays_timezone: str = "Europe/Paris") -> None:
        if not automation.loads:
            raise ReplayError("the configuration has no automation.loads: nothing to replay")
        self.config = automation
        self.engine = Engine(automation)
        self.tracker = InputTracker(automation)
        self.tz = ZoneInfo(automation.timezone)
        self.relays_tz = relays_timezone
        words = _WORDS.get(str(getattr(automation, "language", "fr")), _WORDS["fr"])
        self.words = words
        known = {r.id: r for r in relays}
        steered = [load.relay for load in automation.loads]
        ids = steered + sorted(self.tracker.relay_ids - set(steered))
        missing = [r for r in ids if r not in known]
        if missing:
            raise ReplayError(f"automation names relays the relays section does not have: "
                              f"{', '.join(missing)}")
        power = {load.relay: load.power_w or 0.0 for load in automation.loads}
        self.sims = {r: SimRelay(known[r], power.get(r, 0.0)) for r in ids}
        self.steered = frozenset(steered)
        self.disabled: set[str] = set()  # loads whose automation the user switched off
        self.tracked: Inputs | None = None  # the tracker's inputs since it was last fed
        self.relay_inputs: dict[str, RelayInput] | None = None  # the relays' as last built
        self.fed = False
        self.grid = automation.surplus.grid if automation.surplus is not None else None
        self.lines: list[dict[str, Any]] = []
        self.started = False

    # -- the run --------------------------------------------------------------------------

    def run(self, rows: Sequence[Row]) -> Result:
        """Replay time-ordered rows; the output lines and the summary."""
        if not rows:
            raise ReplayError("no rows to replay")
        synthetic = self._absent_power_from(rows)
        start, end = rows[0].epoch, rows[-1].epoch
        for sim in self.sims.values():  # the relays service starts in the safe state
            sim.output, sim.changed_at = sim.cfg.safe_state, start
        tick = float(self.config.tick_s)
        state: dict[str, Any] | None = None
        i, k, n = 0, 0, len(rows)
        for t in tick_times(start, end, tick):
            while True:
                due = self._expiry(t)
                if due is not None and (i >= n or due[0] < rows[i].epoch):
                    self._control(due[1], due[0])  # a forced mode ends between ticks
                elif i < n and rows[i].epoch <= t:
                    self._feed(rows[i])
                    i += 1
                else:
                    break
            state = self._tick(t, state, synthetic)
            if not self.started:
                self.started = True
                for sim in self.sims.values():
                    self._emit(sim, t)
            k += 1
        for sim in self.sims.values():  # the last row's time ends the day
            if sim.on:
                sim.on_s += max(0.0, end - sim.changed_at)
        summary = {"relays": {r: {"on_s": round(s.on_s), "starts": s.starts}
                              for r, s in self.sims.items()},
                   "rows": n, "ticks": k}
        return Result(self.lines, summary)

    def _expiry(self, t: float) -> tuple[float, SimRelay] | None:
        """The first forced mode ending by ``t`` (the relays service ends it on time)."""
        due = [(s.state.until, s) for s in self.sims.values()
               if s.state.until is not None and s.state.mode != "auto" and s.state.until <= t]
        return min(due, key=lambda d: d[0]) if due else None

    def _absent_power_from(self, rows: Sequence[Row]) -> dict[str, str]:
        """power_from signals the recording never carries: signal name -> relay."""
        wanted: dict[tuple[str, str, str], tuple[str, str]] = {}
        for load in self.config.loads:
            if load.power_from is not None:
                sig = self.config.signals[load.power_from]
                service, _, device = sig.source.partition("/")
                wanted[(service, device, sig.field)] = (load.power_from, load.relay)
        seen: set[tuple[str, str, str]] = set()
        devices = {(s, d) for s, d, _ in wanted}
        for row in rows:
            if row.topic.kind != TopicKind.STATE or (row.topic.service,
                                                     row.topic.device) not in devices:
                continue
            state = DeviceState.decode(row.payload) if row.payload else None
            if isinstance(state, DeviceState):
                seen |= {key for key in wanted if key[:2] == (row.topic.service,
                         row.topic.device) and key[2] in state.fields}
        return dict(v for key, v in wanted.items() if key not in seen)

    def _feed(self, row: Row) -> None:
        kind, relay = row.topic.kind, row.topic.device
        if kind == TopicKind.AUTOMATION_SET:
            if isinstance(row.message, AutomationSwitch) and relay in self.steered:
                (self.disabled.discard if row.message.enabled else self.disabled.add)(relay)
            return
        if kind in (TopicKind.RELAY_SET, TopicKind.RELAY_SHED):
            sim = self.sims.get(relay or "")
            if sim is None:
                return  # a relay the automation neither steers nor reads
            if kind == TopicKind.RELAY_SET:
                command = decode_for(row.payload, sim.cfg.kind)
                if not isinstance(command, RelayCommand):
                    raise ReplayError(f"line {row.line}: relays/{relay}/set: {command.reason}")
                apply_command(sim.state, command, row.epoch, self.relays_tz)
            elif isinstance(row.message, ShedFlag):
                sim.state.under_shedding = True
                sim.state.shed, sim.state.shed_reason = row.message.shed, row.message.reason
            self._control(sim, row.epoch)  # the relays service acts on a command at once
            return
        self.fed = True
        rejection = self.tracker.feed(row.topic, row.payload, row.ts)
        if rejection is not None:
            raise ReplayError(f"line {row.line}: {rejection.reason}")

    def _tick(self, t: float, state: dict[str, Any] | None,
              synthetic: Mapping[str, str]) -> dict[str, Any]:
        now = datetime.fromtimestamp(t, self.tz)
        decisions, new_state = self.engine.tick(now, self._inputs(now, synthetic), state)
        for relay, decision in decisions.items():
            sim = self.sims[relay]
            sim.decision = decision
            # Disabled: the service clears its wish, the relay goes to its default.
            sim.wish = None if relay in self.disabled else wish_value(sim.cfg, decision.wish)
        for sim in self.sims.values():
            self._control(sim, t)
        return new_state

    def _inputs(self, now: datetime, synthetic: Mapping[str, str]) -> Inputs:
        """The tracker's inputs, with the simulated relays and the loads' own power."""
        if self.fed or self.tracked is None:  # the tracker changes only when fed
            self.tracked, self.fed = self.tracker.inputs(), False
        inputs = self.tracked
        signals = dict(inputs.signals)
        grid = signals.get(self.grid or "")
        if self.grid is not None and grid is not None and isinstance(grid.value, float):
            added = sum(s.power_w for s in self.sims.values() if s.on)
            signals[self.grid] = SignalInput(grid.value + added, grid.received, grid.offline)
        for name, relay in synthetic.items():
            sim = self.sims[relay]
            signals[name] = SignalInput(sim.power_w if sim.on else 0.0, now)
        if self.relay_inputs is None:  # rebuilt only after a relay changed
            self.relay_inputs = {r: RelayInput(s.output, _SOURCES[s.source], s.since)
                                 for r, s in self.sims.items()}
        return Inputs(signals=signals, tariff=inputs.tariff, relays=self.relay_inputs,
                      offpeak=inputs.offpeak, disabled=frozenset(self.disabled))

    # -- the relays' own rules ------------------------------------------------------------

    def _control(self, sim: SimRelay, t: float) -> None:
        """What the relays service does each cycle: expiry, precedence, min on/off."""
        expire(sim.state, t)
        value, source = desired(sim.cfg, sim.state, sim.wish)
        if value != sim.output and not hold_for_min_time(
                sim.cfg, sim.output, value, source, t - sim.changed_at):
            was_on = sim.on
            if was_on:
                sim.on_s += t - sim.changed_at
            sim.output, sim.source, sim.changed_at = value, source, t
            sim.since = datetime.fromtimestamp(t, self.tz)
            if sim.on and not was_on and self.started:
                sim.starts += 1
            self._emit(sim, t)
        elif source != sim.source and value == sim.output:
            if sim.on:  # on-time counted up to here, so a later change adds only its part
                sim.on_s += t - sim.changed_at
                sim.changed_at = t
            sim.source = source
            self._emit(sim, t)

    def _emit(self, sim: SimRelay, t: float) -> None:
        self.relay_inputs = None  # every change of output or source comes through here
        if not self.started:
            return
        decision = sim.decision
        self.lines.append({
            "ts": datetime.fromtimestamp(t, self.tz).isoformat(timespec="seconds"),
            "relay": sim.cfg.id, "output": sim.output, "source": _SOURCES[sim.source],
            "status": None if decision is None else decision.status,
            "reason": self._reason(sim)})

    def _reason(self, sim: SimRelay) -> str:
        """The automation's reason when it drives the relay; else why it does not."""
        w = self.words
        if sim.source in ("shed", "failsafe"):
            why = sim.state.shed_reason
            return w["shed_why"].format(why=why) if why else w["shed"]
        if sim.source == "user":
            text = w["user"].format(mode=sim.state.order or sim.state.mode)
            if sim.state.until is not None:
                until = datetime.fromtimestamp(sim.state.until, self.tz)
                text += w["until"].format(until=f"{until:%H:%M}")
            return text
        if sim.decision is not None:
            return sim.decision.reason
        return w["default"]


def tick_times(start: float, end: float, tick_s: float) -> Iterator[float]:
    """Every tick_s from the first row's time, and the last row's time when the ticks miss
    it (so that every row is seen)."""
    k = 0
    while (t := start + k * tick_s) <= end:
        yield t
        k += 1
    if start + (k - 1) * tick_s < end:
        yield end


def replay(automation: AutomationConfig, relays: Iterable[RelayConfig], rows: Sequence[Row],
           relays_timezone: str = "Europe/Paris") -> Result:
    """Run a replay (ReplayError: a config or a row it cannot run)."""
    return Replay(automation, relays, relays_timezone).run(rows)
