"""What the automation reads, followed message by message: the engine's `Inputs`.

Shared by the service (live MQTT) and the replay (recorded rows): both hand every message to
`InputTracker.feed` with the time it was received, and ask `inputs(now)` at each tick. Every
payload is decoded by the contract (services.core.contract); nothing here spells a topic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.automation.conditions import uses_relays
from services.automation.config import AutomationConfig
from services.automation.engine_state import (
    Inputs,
    RelayInput,
    SignalInput,
    Source,
    TariffInput,
    tariff_facts,
)
from services.automation.offpeak import OffpeakLearner
from services.core.contract import (
    DeviceState,
    MeterState,
    Presence,
    Rejection,
    RelayReport,
    Topic,
    TopicKind,
    Topics,
)

Device = tuple[str, str]  # (service, device)
_SOURCES: Mapping[str, Source] = {"auto": "auto", "user": "user", "shed": "shed",
                                  "failsafe": "shed", "default": "default"}


def _device(source: str) -> Device:
    service, _, device = source.partition("/")
    return service, device


def _value(raw: object) -> float | str | bool | None:
    """A state field as a signal value; None for what a signal cannot be (absent, a list)."""
    if isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int | float) and math.isfinite(raw):
        return float(raw)
    return None


def _kind(value: object) -> str:
    return "text" if isinstance(value, str) else "flag" if isinstance(value, bool) else "number"


class InputTracker:
    """Follows the devices, services and relays an `automation` section reads."""

    def __init__(self, config: AutomationConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.by_device: dict[Device, list[tuple[str, str]]] = {}  # device -> (signal, field)
        for name, signal in config.signals.items():
            self.by_device.setdefault(_device(signal.source), []).append((name, signal.field))
        self.tariff_device = None if config.tariff is None else _device(config.tariff.source)
        relays = {load.relay for load in config.loads}
        for load in config.loads:
            for conditions in load.conditions().values():
                relays |= uses_relays(conditions)
        self.relay_ids = frozenset(relays)
        self.signals: dict[str, SignalInput] = {}
        self.tariff: TariffInput | None = None
        self.relays: dict[str, RelayInput] = {}
        self.offline_devices: set[Device] = set()
        self.offline_services: set[str] = set()
        self.offpeak = OffpeakLearner()

    # -- subscriptions --------------------------------------------------------------------

    @property
    def devices(self) -> frozenset[Device]:
        """Every device whose state is read (signals and tariff)."""
        extra = {self.tariff_device} if self.tariff_device is not None else set()
        return frozenset(self.by_device) | extra

    def filters(self, topics: Topics) -> list[str]:
        """The MQTT subscriptions the tracker needs, each once."""
        wanted: list[str] = []
        services = {service for service, _ in self.devices}
        for service, device in sorted(self.devices):
            wanted += [topics.state_of(service, device), topics.availability_of(service, device)]
        if self.relay_ids:
            services.add("relays")
            wanted += [topics.relay_state(r) for r in sorted(self.relay_ids)]
        wanted += [topics.status_of(s) for s in sorted(services)]
        return list(dict.fromkeys(wanted))

    # -- messages -------------------------------------------------------------------------

    def feed(self, topic: Topic, payload: bytes, received: datetime) -> Rejection | None:
        """One message (its parsed topic) received at aware ``received``.

        An empty payload (a retained message cleared) is no news. A rejection leaves every
        input as it was."""
        if not payload:
            return None
        if topic.kind == TopicKind.STATUS:
            return self._status(topic.service, payload)
        device = (topic.service, topic.device or "")
        if topic.kind == TopicKind.AVAILABILITY and device in self.devices:
            return self._availability(device, payload)
        if topic.kind == TopicKind.STATE:
            if topic.service == "relays" and device[1] in self.relay_ids:
                return self._relay(device[1], payload, received)
            if device in self.devices:
                return self._state(device, payload, received)
        return None

    def _availability(self, device: Device, payload: bytes) -> Rejection | None:
        presence = Presence.decode(payload)
        if isinstance(presence, Rejection):
            return presence
        if presence.online:
            self.offline_devices.discard(device)
        else:
            self.offline_devices.add(device)
        return None

    def _status(self, service: str, payload: bytes) -> Rejection | None:
        presence = Presence.decode(payload)
        if isinstance(presence, Rejection):
            return presence
        if presence.online:
            self.offline_services.discard(service)
        else:
            self.offline_services.add(service)
            if service == "relays":  # its states say nothing any more
                self.relays.clear()
        return None

    @staticmethod
    def _when(ts: datetime | None, received: datetime) -> datetime:
        """The reading's own time when it is not in the future (a retained old state is old),
        else the time it arrived."""
        if ts is not None and ts <= received:
            return ts
        return received

    def _state(self, device: Device, payload: bytes, received: datetime) -> Rejection | None:
        state = DeviceState.decode(payload)
        if isinstance(state, Rejection):
            return state
        when = self._when(state.ts, received)
        fresh: dict[str, SignalInput] = {}
        for name, field in self.by_device.get(device, ()):
            value = _value(state.fields.get(field))
            if value is None:  # a field missing from this state: the signal ages
                continue
            before = self.signals.get(name)
            if before is not None and _kind(before.value) != _kind(value):
                # A field does not change type: a number turned text is a bad message.
                return Rejection(f"{field} = {str(value)[:40]!r}: a {_kind(value)} where "
                                 f"signal {name!r} reads a {_kind(before.value)}")
            fresh[name] = SignalInput(value, when)
        self.signals.update(fresh)
        if device == self.tariff_device:
            meter = MeterState.decode(payload)
            if isinstance(meter, Rejection):
                return meter
            if meter.tariff_period is None:  # not a tariff state: the tariff ages
                return None
            self.tariff = TariffInput(received=when, tariff_period=meter.tariff_period,
                                      tempo_today=meter.tempo_today,
                                      tempo_tomorrow=meter.tempo_tomorrow,
                                      ejp_notice=meter.ejp_notice)
            facts = tariff_facts(self.tariff, when, math.inf)
            assert facts is not None
            self.offpeak.observe(when.astimezone(self.tz), facts.period)
        return None

    def _relay(self, relay: str, payload: bytes, received: datetime) -> Rejection | None:
        report = RelayReport.decode(payload)
        if isinstance(report, Rejection):
            return report
        when = self._when(report.ts, received)
        before = self.relays.get(relay)
        since = None if before is None else (
            before.since if before.output == report.output else when)
        self.relays[relay] = RelayInput(report.output, _SOURCES[report.source], since)
        return None

    # -- the tick -------------------------------------------------------------------------

    def inputs(self) -> Inputs:
        """Everything as last heard: the engine judges freshness from the received times."""
        offline = {name for device, pairs in self.by_device.items()
                   if device in self.offline_devices or device[0] in self.offline_services
                   for name, _ in pairs}
        signals = {name: (SignalInput(si.value, si.received, True) if name in offline else si)
                   for name, si in self.signals.items()}
        tariff = self.tariff
        if tariff is not None and self.tariff_device is not None and (
                self.tariff_device in self.offline_devices
                or self.tariff_device[0] in self.offline_services):
            tariff = TariffInput(tariff.received, tariff.tariff_period, tariff.tempo_today,
                                 tariff.tempo_tomorrow, tariff.ejp_notice, offline=True)
        return Inputs(signals=signals, tariff=tariff, relays=dict(self.relays),
                      offpeak=self.offpeak.learned())

    # -- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """What is worth keeping across a restart: the learned off-peak hours."""
        return {"offpeak": self.offpeak.to_dict()}

    def load(self, data: object) -> None:
        """Back from to_dict() (anything unreadable starts fresh)."""
        raw = data.get("offpeak") if isinstance(data, Mapping) else None
        self.offpeak = OffpeakLearner.from_dict(raw)
