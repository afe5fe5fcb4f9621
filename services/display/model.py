"""The display's view of the box, followed message by message (pure: no I/O, no clock).

The service hands every message to `BoxTracker.feed` with the time it was received (epoch s)
and asks `view(now)` for a frozen `BoxView` at each frame. Payloads are decoded by the contract
(services.core.contract); nothing here spells a topic. A value older than ``stale_after_s``,
or of a device or service said offline, is a stale `Reading`: rendered ``----``, never as the
old number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from services.automation.conditions import SignalValue, Snapshot, TariffFacts
from services.automation.engine_state import TariffInput, tariff_facts
from services.core.contract import (
    DeviceState,
    MeterState,
    Presence,
    Rejection,
    RelayReport,
    Topic,
    TopicKind,
)

Device = tuple[str, str]  # (service, device)
K = TypeVar("K")
METER = "teleinfo"
REASON_MAX = 120  # a line scrolls at most this far


@dataclass(frozen=True, slots=True)
class Reading:
    """A number, or None when unknown; ``stale`` when too old or its source is offline."""

    value: float | None
    stale: bool = False

    @property
    def shown(self) -> bool:
        """True when the number may be shown (known and fresh)."""
        return self.value is not None and not self.stale


def _add(a: Reading, b: Reading) -> Reading:
    """Two sources' sum: unknown only when both are, stale when either is."""
    if a.value is None or b.value is None:
        return b if a.value is None else a
    return Reading(a.value + b.value, a.stale or b.stale)


@dataclass(frozen=True, slots=True)
class Text:
    """A word (a charge state, a tariff period), or None; stale like a Reading."""

    value: str | None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class RelayLine:
    """One relay: its real output, mode and source, and the automation's reason."""

    id: str
    output: str | None  # "on"/"off"/an order; None when unknown
    mode: str | None
    source: str | None
    reason: str | None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    """Something standing that the alerts page shows: overload, a shed load, a source offline."""

    kind: str  # "overload" | "shed" | "offline"
    subject: str  # the meter, the relay, or "service/device"

    @property
    def key(self) -> str:
        """What the Pager tells alerts apart by (a new key wakes the screen)."""
        return f"{self.kind}:{self.subject}"


@dataclass(frozen=True)
class BoxView:
    """Everything the pages show, at one instant."""

    grid_va: Reading  # >0 import, <0 export
    pv_w: Reading
    pv_today_kwh: Reading
    pv_today_partial: bool  # the inverter's share counts from the display's first reading
    soc_pct: Reading
    charge_state: Text
    tariff: TariffFacts | None  # None: never heard; .stale when old
    tariff_period: Text  # the meter's own period name (blue_hp, hc, ejp_peak...)
    relays: tuple[RelayLine, ...] = ()
    alerts: tuple[Alert, ...] = ()


def _toggle(group: set[K], key: K, present: bool) -> None:
    if present:
        group.add(key)
    else:
        group.discard(key)


@dataclass
class _Seen:
    state: DeviceState
    received: float


@dataclass
class _Relay:
    report: RelayReport | None = None
    received: float = 0.0
    status: str | None = None
    reason: str | None = None


@dataclass
class BoxTracker:
    """Follows the meter, the PV and battery devices, the relays and the automation."""

    stale_after_s: float = 60.0
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Paris"))
    states: dict[Device, _Seen] = field(default_factory=dict)
    meter: tuple[MeterState, float] | None = None
    relays: dict[str, _Relay] = field(default_factory=dict)
    offline_devices: set[Device] = field(default_factory=set)
    offline_services: set[str] = field(default_factory=set)
    # The first lifetime AC energy (Wh) of each inverter seen in a local day: its today.
    baselines: dict[Device, tuple[str, float, bool]] = field(default_factory=dict)

    def feed(self, topic: Topic, payload: bytes, received: float) -> Rejection | None:
        """One message (its parsed topic) received at epoch ``received``; a rejection leaves
        everything as it was; an empty payload (a cleared retained message) is no news."""
        if not payload or (topic.device is None and topic.kind != TopicKind.STATUS):
            return None
        if topic.kind in (TopicKind.STATUS, TopicKind.AVAILABILITY):
            return self._presence(topic.service, topic.device, payload)
        if topic.kind != TopicKind.STATE or topic.device is None:
            return None
        if topic.service in ("relays", "automation"):
            return (self._relay if topic.service == "relays" else self._automation)(
                topic.device, payload, received)
        return self._state((topic.service, topic.device), payload, received)

    def _presence(self, service: str, device: str | None, payload: bytes) -> Rejection | None:
        presence = Presence.decode(payload)
        if isinstance(presence, Rejection):
            return presence
        if device is None:
            _toggle(self.offline_services, service, not presence.online)
        else:
            _toggle(self.offline_devices, (service, device), not presence.online)
        return None

    def _state(self, device: Device, payload: bytes, received: float) -> Rejection | None:
        state = DeviceState.decode(payload)
        if isinstance(state, Rejection):
            return state
        if device[0] == METER:
            meter = MeterState.decode(payload)
            if isinstance(meter, Rejection):
                return meter
            self.meter = (meter, received)
        self.states[device] = _Seen(state, received)
        energy = state.number("ac_energy_wh")
        if device[0] == "inverter" and energy is not None:
            self._baseline(device, energy, received)
        return None

    def _baseline(self, device: Device, energy_wh: float, received: float) -> None:
        local = datetime.fromtimestamp(received, self.tz)
        day = local.date().isoformat()
        kept = self.baselines.get(device)
        if kept is None or kept[0] != day or energy_wh < kept[1]:
            # Taken after 00:10: the inverter's morning is missed, the figure is a floor.
            late = local.hour * 60 + local.minute > 10
            self.baselines[device] = (day, energy_wh, late)

    def _relay(self, relay: str, payload: bytes, received: float) -> Rejection | None:
        report = RelayReport.decode(payload)
        if isinstance(report, Rejection):
            return report
        entry = self.relays.setdefault(relay, _Relay())
        entry.report, entry.received = report, received
        return None

    def _automation(self, relay: str, payload: bytes, _received: float) -> Rejection | None:
        state = DeviceState.decode(payload)
        if isinstance(state, Rejection):
            return state
        entry = self.relays.setdefault(relay, _Relay())
        status, reason = state.fields.get("status"), state.fields.get("reason")
        entry.status = status if isinstance(status, str) else None
        entry.reason = reason[:REASON_MAX] if isinstance(reason, str) and reason else None
        return None

    # -- the view -----------------------------------------------------------------------

    def offline(self, device: Device) -> bool:
        """The device, or its service, said offline."""
        return device in self.offline_devices or device[0] in self.offline_services

    def _stale(self, device: Device, received: float, now: float) -> bool:
        return self.offline(device) or now - received > self.stale_after_s

    def _sum(self, services: tuple[str, ...], key: str, now: float) -> Reading:
        """The sum of a field over every device of those services that has it; stale when
        any of them is (a partial sum would be an old or wrong number)."""
        total, found, stale = 0.0, False, False
        for device, seen in self.states.items():
            value = seen.state.number(key)
            if device[0] not in services or value is None:
                continue
            found = True
            total += value
            stale = stale or self._stale(device, seen.received, now)
        return Reading(total if found else None, stale)

    def _one(self, key: str, now: float) -> Reading:
        """The first device's (by name) numeric field: the battery monitor's SoC."""
        found = self._first(key, now)
        if found is None or isinstance(found[0], bool) or not isinstance(found[0], int | float):
            return Reading(None, True)
        return Reading(float(found[0]), found[1])

    def _first(self, key: str, now: float) -> tuple[object, bool] | None:
        for device, seen in sorted(self.states.items()):
            if key in seen.state.fields:
                return seen.state.fields[key], self._stale(device, seen.received, now)
        return None

    def _grid(self, now: float) -> Reading:
        if self.meter is None:
            return Reading(None, True)
        meter, received = self.meter
        stale = any(self._stale(d, received, now) for d in self.states if d[0] == METER)
        value = meter.net_power_va if meter.net_power_va is not None else meter.apparent_power_va
        return Reading(value, stale)

    def _today(self, now: float) -> tuple[Reading, bool]:
        yields = self._sum(("vedirect",), "yield_today_kwh", now)
        total, stale, partial = yields.value or 0.0, yields.stale, False
        found = yields.value is not None
        today = datetime.fromtimestamp(now, self.tz).date().isoformat()
        for device, (day, base, late) in self.baselines.items():
            seen = self.states.get(device)
            energy = None if seen is None else seen.state.number("ac_energy_wh")
            if seen is None or energy is None or day != today:
                continue
            found, partial = True, partial or late
            total += (energy - base) / 1000
            stale = stale or self._stale(device, seen.received, now)
        return Reading(total if found else None, stale), partial

    def _tariff(self, now: float) -> tuple[TariffFacts | None, Text]:
        if self.meter is None:
            return None, Text(None, True)
        meter, received = self.meter
        offline = any(self.offline(d) for d in self.states if d[0] == METER)
        if meter.tariff_period is None:
            return None, Text(None, True)
        when = datetime.fromtimestamp(received, UTC)
        facts = tariff_facts(TariffInput(when, meter.tariff_period, meter.tempo_today,
                                         meter.tempo_tomorrow, meter.ejp_notice, offline),
                             datetime.fromtimestamp(now, UTC), self.stale_after_s)
        return facts, Text(meter.tariff_period, facts is None or facts.stale)

    def _relay_lines(self, now: float) -> tuple[RelayLine, ...]:
        lines = []
        auto_off = "automation" in self.offline_services
        for relay, entry in sorted(self.relays.items()):
            report = entry.report
            stale = report is None or self._stale(("relays", relay), entry.received, now)
            lines.append(RelayLine(
                relay, None if report is None else report.output,
                None if report is None else report.mode,
                None if report is None else report.source,
                None if auto_off else entry.reason, stale))
        return tuple(lines)

    def _alerts(self, now: float, relays: tuple[RelayLine, ...]) -> tuple[Alert, ...]:
        alerts: list[Alert] = []
        if self.meter is not None and self.meter[0].overload and not self._grid(now).stale:
            alerts += [Alert("overload", d[1]) for d in self.states if d[0] == METER][:1]
        alerts += [Alert("shed", r.id) for r in relays if r.source == "shed" and not r.stale]
        alerts += [Alert("offline", s) for s in sorted(self.offline_services)]
        alerts += [Alert("offline", f"{s}/{d}") for s, d in sorted(self.offline_devices)
                   if s not in self.offline_services]
        return tuple(alerts)

    def view(self, now: float) -> BoxView:
        """Everything as it stands at epoch ``now``."""
        today, partial = self._today(now)
        charge = self._first("charge_state", now)
        tariff, period = self._tariff(now)
        relays = self._relay_lines(now)
        return BoxView(
            grid_va=self._grid(now),
            pv_w=_add(self._sum(("inverter",), "ac_power_w", now),
                      self._sum(("vedirect",), "pv_power_w", now)),
            pv_today_kwh=today, pv_today_partial=partial,
            soc_pct=self._one("soc_pct", now),
            charge_state=Text(None, True) if charge is None else Text(
                str(charge[0]) if isinstance(charge[0], str) else None, charge[1]),
            tariff=tariff, tariff_period=period, relays=relays,
            alerts=self._alerts(now, relays),
        )

    # -- the automation's grammar --------------------------------------------------------

    def snapshot(self, now: float, signals: Mapping[str, tuple[Device, str]]) -> Snapshot:
        """The conditions' inputs at epoch ``now`` (indicators): ``signals`` names a field of
        a device, as the automation's ``signals`` section does."""
        values: dict[str, SignalValue] = {}
        for name, (device, key) in signals.items():
            seen = self.states.get(device)
            raw = None if seen is None else seen.state.fields.get(key)
            ok = isinstance(raw, bool | str | int | float)
            stale = seen is None or self._stale(device, seen.received, now)
            values[name] = SignalValue(raw if ok else None, stale)
        tariff, _ = self._tariff(now)
        relays = {r.id: r.output for r in self._relay_lines(now)
                  if r.output is not None and not r.stale}
        return Snapshot(datetime.fromtimestamp(now, self.tz), values, tariff, relays)
