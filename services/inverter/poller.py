"""What to do with one device's readings and silences: pure decisions, no I/O, no clock.

The worker asks ``due(now)``, reads, then hands the result to ``on_reading`` /
``on_silence`` / ``on_decode_failure`` and carries out the returned ``Outcome``.

Night rule (no latitude/longitude in the config, so no solar clock): a device that goes
silent while it was not producing (its last reading below ``producing_above_w``, or no
reading at all since start) is asleep: ``status: sleeping``, ``ac_power_w: 0``, its energy
counter and identity held, available, polled every ``night_poll_s``, one log line per night
(reset by the next producing reading). The same silence right after a producing reading is
a fault: ``offline`` after ``offline_after`` failures, with backoff. An inverter that answers
with neither St nor power (SMA at night) reads ``sleeping`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.inverter.fields import ENERGY_KEYS
from services.inverter.types import Decoded, Kind

IDENTITY = ("manufacturer", "model", "serial", "firmware", "rated_power_w")
MEASURES = ("ac_power_w", "ac_current_a", "ac_voltage_v", "ac_frequency_hz", "dc_power_w",
            "dc_voltage_v", "dc_current_a")
ASLEEP = ("sleeping", "off")
REDISCOVER_AFTER = 3  # decode failures in a row before the chain is discovered again


class Mode(StrEnum):
    """Where a device stands."""

    UNKNOWN = "unknown"  # not answered yet
    ONLINE = "online"
    SLEEPING = "sleeping"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Policy:
    """One device's timing and thresholds."""

    poll_s: float = 5.0
    night_poll_s: float = 60.0
    producing_above_w: float = 50.0
    offline_after: int = 3
    backoff_max_s: float = 60.0


@dataclass
class Publish:
    """A state to publish: ``group`` is '' for the device's first group, else a suffix of
    its id ('meter' for a meter behind an inverter in one chain)."""

    group: str
    kind: Kind
    fields: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the worker must do after one poll."""

    publish: list[Publish] = field(default_factory=list)
    online: bool | None = None  # the availability to publish, when it changed
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    log: str | None = None  # one INFO line: state changes only
    reason: str | None = None


def _power(fields: dict[str, Any]) -> float | None:
    value = fields.get("ac_power_w")
    return float(value) if isinstance(value, int | float) else None


def is_zero_fault_frame(fields: dict[str, Any]) -> bool:
    """Fronius: a frame of zeros with St 7 (fault) between two normal ones."""
    values = [fields[k] for k in MEASURES if k in fields]
    flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return fields.get("status") == "fault" and all(x == 0 for x in flat)


class DevicePoller:
    """One device's schedule, night state, counters and discovery flag."""

    def __init__(self, policy: Policy, now: float = 0.0) -> None:
        self.policy = policy
        self.next_at = now
        self.mode = Mode.UNKNOWN
        self.need_discovery = True
        self.serial: str | None = None
        self.failures = 0  # polls in a row without an answer
        self.decode_failures = 0
        self.producing = False  # the last inverter reading was above producing_above_w
        self._slept_logged = False  # this night's one line was written
        self._dropped_zero = False
        self._held: dict[str, dict[str, Any]] = {}  # group -> identity and counters
        self._kinds: dict[str, Kind] = {}
        self._last: dict[str, dict[str, Any]] = {}  # group -> last published fields

    def due(self, now: float) -> bool:
        """Time to poll."""
        return now >= self.next_at

    def discovered(self) -> None:
        """The worker found the chain (again)."""
        self.need_discovery = False
        self.decode_failures = 0

    # -- answers -------------------------------------------------------------------------------

    def on_reading(self, now: float, groups: Sequence[Decoded]) -> Outcome:
        """A complete reading: check it, hold what must be held, publish it."""
        out = Outcome()
        serial = next((g.fields.get("serial") for g in groups if g.fields.get("serial")), None)
        if serial is not None and self.serial is not None and serial != self.serial:
            # another device answers at this address: its chain may differ, so rediscover
            # before trusting any value, and forget the old device's counters
            out.log = f"serial changed from {self.serial} to {serial}: rediscovering"
            self.serial, self.need_discovery = None, True
            self._held.clear()
            self._last.clear()
            self.next_at = now
            return out
        if serial is not None:
            self.serial = serial
        self.failures = 0
        self.decode_failures = 0
        slow = False
        for index, group in enumerate(groups):
            name = self._group_name(index, group.kind, groups)
            fields = dict(group.fields)
            if group.kind == "inverter":
                fields = self._inverter(fields)
                if self._drop_zero_frame(name, fields):
                    out.reason = "zero fault frame right after production: dropped once"
                    continue
                slow = slow or fields.get("status") in ASLEEP
            self._hold(name, group.kind, fields, out)
            self._last[name] = fields
            out.publish.append(Publish(name, group.kind, fields, dict(group.raw)))
        previous, self.mode = self.mode, Mode.ONLINE
        if previous in (Mode.UNKNOWN, Mode.OFFLINE):
            out.online = True  # logged as the availability change
        self.next_at = self._cadence(now, self.policy.night_poll_s if slow else self.policy.poll_s)
        return out

    def _cadence(self, now: float, interval: float) -> float:
        """One interval after this poll was due, not after it ended: a poll delayed by
        another device's timeout does not shift every later one (re-phased from now when
        it fell a whole interval behind)."""
        nxt = self.next_at + interval
        return nxt if nxt > now else now + interval

    def _group_name(self, index: int, kind: Kind, groups: Sequence[Decoded]) -> str:
        if index == 0:
            return ""
        same = [g for g in groups[1:] if g.kind == kind]
        return kind if len(same) == 1 else f"{kind}-{index}"

    def _inverter(self, fields: dict[str, Any]) -> dict[str, Any]:
        power = _power(fields)
        if "status" not in fields and not power:
            # SMA at night: St and W both "not implemented"; asleep, so 0 W is a fact
            fields["status"] = "sleeping"
            fields.setdefault("ac_power_w", 0)
        power = _power(fields)
        if power is not None and power >= self.policy.producing_above_w:
            self.producing = True
            self._slept_logged = False  # a new day: the next night may log again
        elif power is not None:
            self.producing = False
        return fields

    def _drop_zero_frame(self, name: str, fields: dict[str, Any]) -> bool:
        last = self._last.get(name)
        if not is_zero_fault_frame(fields):
            self._dropped_zero = False
            return False
        produced = last is not None and (_power(last) or 0) >= self.policy.producing_above_w
        if produced and not self._dropped_zero:
            self._dropped_zero = True
            self.producing = True  # the frame said nothing: keep the last state
            return True
        return False

    def _hold(self, name: str, kind: Kind, fields: dict[str, Any], out: Outcome) -> None:
        """Identity fields fill in when a reading lacks them (Aurora reads them once);
        energy counters never step back: a step back is an event, the last value stays."""
        held = self._held.setdefault(name, {})
        self._kinds[name] = kind
        for key in IDENTITY:
            if key in fields:
                held[key] = fields[key]
            elif key in held:
                fields[key] = held[key]
        for key in ENERGY_KEYS:
            last = held.get(key)
            value = fields.get(key)
            if value is None:
                if last is not None:
                    fields[key] = last  # an accumulator read as 0/absent: keep the known one
                continue
            if last is not None and value < last:
                out.events.append(("counter_backwards", {
                    "field": key, "value": value, "kept": last, "group": name or None}))
                fields[key] = last
            else:
                held[key] = value

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart: identity and the last energy counters per group, so
        a restart at night still publishes the counter, and a counter that stepped back
        while we were stopped is still caught."""
        return {"serial": self.serial, "kinds": dict(self._kinds),
                "held": {name: dict(v) for name, v in self._held.items()}}

    def restore(self, data: object) -> None:
        """Load a ``snapshot``; anything malformed is ignored (a fresh start, not a crash)."""
        if not isinstance(data, dict):
            return
        kinds, held = data.get("kinds"), data.get("held")
        if not isinstance(kinds, dict) or not isinstance(held, dict):
            return
        for name, kind in kinds.items():
            values = held.get(name)
            if kind not in ("inverter", "meter") or not isinstance(values, dict):
                continue
            self._kinds[str(name)] = kind
            self._held[str(name)] = {
                k: v for k, v in values.items()
                if (k in IDENTITY and isinstance(v, str | int | float))
                or (k in ENERGY_KEYS and isinstance(v, int) and not isinstance(v, bool)
                    and v >= 0)}
        serial = data.get("serial")
        self.serial = serial if isinstance(serial, str) else None

    # -- silences ------------------------------------------------------------------------------

    def on_silence(self, now: float, reason: str, answered: bool = False) -> Outcome:
        """No usable answer (timeout, connection lost; ``answered``: the device did answer,
        but not as a SunSpec device, so it is not asleep)."""
        out = Outcome(reason=reason)
        self.failures += 1
        asleep = self.mode is Mode.SLEEPING or (
            self.mode is not Mode.OFFLINE and not self.producing and self._may_sleep())
        if asleep and not answered:
            if self.mode is not Mode.SLEEPING:
                if self.mode is Mode.UNKNOWN:
                    out.online = True  # asleep is not an error: the device stays available
                if not self._slept_logged:
                    self._slept_logged = True
                    # Never heard since start: night, or a wrong host/port/unit id.
                    hint = ("" if self._last.get("") else
                            f" ({reason}; by day, check its host, port and unit id)")
                    out.log = (f"asleep (silent after {self._last_power()}){hint}: polled "
                               f"every {self.policy.night_poll_s:g} s")
            self.mode = Mode.SLEEPING
            out.publish = self._sleeping()  # re-sent each night poll: the state must not expire
            self.next_at = now + self.policy.night_poll_s
            return out
        if self.failures >= self.policy.offline_after and self.mode is not Mode.OFFLINE:
            self.mode = Mode.OFFLINE
            out.online = False
            out.log = f"{self.failures} failed polls in a row: {reason}"
        self.next_at = now + self.backoff()
        return out

    def _may_sleep(self) -> bool:
        """Only an inverter sleeps; a device never read may be one."""
        return not self._kinds or "inverter" in self._kinds.values()

    def _last_power(self) -> str:
        last = self._last.get("")
        power = _power(last) if last else None
        return "no reading yet" if power is None else f"{power:g} W"

    def _sleeping(self) -> list[Publish]:
        groups = [n for n, k in self._kinds.items() if k == "inverter"] or [""]
        result = []
        for name in groups:
            fields: dict[str, Any] = {"status": "sleeping", "ac_power_w": 0}
            fields.update(self._held.get(name, {}))
            result.append(Publish(name, "inverter", fields))
        return result

    def backoff(self) -> float:
        """Wait before the next poll after ``failures`` silences in a row: the normal
        period until offline, then doubling up to ``backoff_max_s``."""
        p = self.policy
        extra = self.failures - p.offline_after + 1
        if extra <= 0:
            return p.poll_s
        return float(min(p.poll_s * 2 ** min(extra, 30), max(p.backoff_max_s, p.poll_s)))

    def on_decode_failure(self, now: float, reason: str) -> Outcome:
        """The device answered, but not with its cached chain (an exception at a model
        address, a model that does not decode): after 3 in a row, discover again."""
        self.decode_failures += 1
        out = Outcome(reason=reason)
        if self.decode_failures >= REDISCOVER_AFTER:
            self.need_discovery = True
            self.decode_failures = 0
            out.log = f"{REDISCOVER_AFTER} readings failed to decode ({reason}): rediscovering"
        self.next_at = now + self.policy.poll_s
        return out
