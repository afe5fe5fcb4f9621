"""The payloads services exchange, as frozen types: ``decode(bytes) -> T | Rejection`` and
``encode() -> bytes``. Decoders never raise: whatever arrives becomes a message or a
rejection that the receiving service reports as an event."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from services.core.contract.orders import ORDERS, Order
from services.core.contract.payload import Rejection, decode_json, decode_object, decode_text

MIN_FOR_S = 1.0
MAX_FOR_S = 366 * 86400.0
COMMAND_MAX_BYTES = 1024  # the longest valid command is ~60 bytes
Mode = Literal["on", "off", "auto"]
_MODES: dict[str, Mode] = {"on": "on", "off": "off", "auto": "auto"}


def utc_now_iso() -> str:
    """ISO 8601 UTC timestamp with milliseconds, as used in every message's ``ts``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(data: Any) -> str:
    """Compact JSON, as published on the bus (NaN is never written: it is not JSON)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def parse_ts(value: object) -> datetime | None:
    """An ISO 8601 timestamp with a zone, or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- presence -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    """``online``/``offline``: a service's status or a device's availability."""

    online: bool

    @classmethod
    def decode(cls, payload: bytes) -> Presence | Rejection:
        """Case-insensitive; an empty retained payload (a cleared topic) is offline."""
        text = decode_text(payload, 64)
        if isinstance(text, Rejection):
            return text
        if text.lower() in ("online", "offline", ""):
            return cls(text.lower() == "online")
        return Rejection.of("expected online or offline", text)

    def encode(self) -> bytes:
        """``online`` or ``offline``."""
        return b"online" if self.online else b"offline"


# -- relay command ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayCommand:
    """What a user asked of a relay: a mode, and for a forced mode its order and its end:
    a duration (``for_s``) or a local wall-clock time (``until``, (hour, minute); the relays
    service turns it into an instant with its clock and time zone)."""

    mode: Mode
    order: Order | None = None  # fil pilote order of a forced 'on'
    for_s: float | None = None
    until: tuple[int, int] | None = None

    @classmethod
    def decode(cls, payload: bytes) -> RelayCommand | Rejection:
        """``ON``/``OFF``/``AUTO`` (any case), ``{"mode", "for_s"|"until"}`` or ``{"order"}``
        JSON."""
        text = decode_text(payload, COMMAND_MAX_BYTES)
        if isinstance(text, Rejection):
            return text
        if not text:
            return Rejection("empty command")
        if text.lower() in ("on", "off", "auto"):
            return cls(_MODES[text.lower()])
        if text[0] != "{":
            return Rejection.of(f"{text[:40]!r} is neither ON, OFF, AUTO nor a JSON object", text)
        data = decode_object(text.encode(), "a JSON command", COMMAND_MAX_BYTES)
        if isinstance(data, Rejection):
            return data
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RelayCommand | Rejection:
        """The JSON form, already parsed (also what the api's request body holds)."""
        unknown = set(data) - {"mode", "order", "for_s", "until"}
        if unknown:
            return Rejection(f"unknown key(s): {', '.join(sorted(map(str, unknown)))[:80]}")
        for_s = _duration(data.get("for_s"))
        if isinstance(for_s, Rejection):
            return for_s
        until = _clock_time(data.get("until"))
        if isinstance(until, Rejection):
            return until
        if for_s is not None and until is not None:
            return Rejection("give either 'for_s' or 'until', not both")
        mode = data.get("mode", "on" if "order" in data else None)
        mode = mode.lower() if isinstance(mode, str) else mode
        if mode not in ("on", "off", "auto"):
            return Rejection(f"mode {_short(mode)} is not one of on, off, auto")
        if "order" in data:
            order = data["order"]
            if not isinstance(order, str) or order.lower() not in ORDERS:
                return Rejection(f"order {_short(order)} is not one of {', '.join(ORDERS)}")
            if mode != "on":
                return Rejection("an order forces the zone: 'mode' can only be 'on' with it")
            return cls("on", Order(order.lower()), for_s, until)
        if mode == "auto" and (for_s is not None or until is not None):
            key = "for_s" if for_s is not None else "until"
            return Rejection(f"'{key}' goes with a forced mode (on/off), not with auto")
        return cls(_MODES[mode], None, for_s, until)

    def check_kind(self, kind: str) -> Rejection | None:
        """An order is for a fil pilote zone only."""
        if self.order is not None and kind != "fil_pilote":
            return Rejection("'order' is for fil pilote zones; this relay takes on/off")
        return None

    def encode(self) -> bytes:
        """The shortest form that says it all."""
        if self.order is None and self.for_s is None and self.until is None:
            return self.mode.upper().encode()
        data: dict[str, Any] = {"mode": self.mode}
        if self.order is not None:
            data["order"] = self.order.value
        if self.for_s is not None:
            data["for_s"] = self.for_s
        if self.until is not None:
            data["until"] = self.until_text
        return to_json(data).encode()

    @property
    def until_text(self) -> str | None:
        """``until`` as written: ``HH:MM``."""
        return None if self.until is None else f"{self.until[0]:02d}:{self.until[1]:02d}"


def _duration(value: object) -> float | Rejection | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection(f"for_s must be a number of seconds, not {_short(value)}")
    if not math.isfinite(value) or not MIN_FOR_S <= value <= MAX_FOR_S:
        return Rejection(
            f"for_s must be between {MIN_FOR_S:.0f} s and {MAX_FOR_S:.0f} s (a year), got {value}"
        )
    return float(value)


# H:MM or HH:MM, 00:00 to 23:59 (a local wall-clock time; 24:00 is 00:00, write that).
_CLOCK_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _clock_time(value: object) -> tuple[int, int] | Rejection | None:
    if value is None:
        return None
    match = _CLOCK_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return Rejection(f"until must be a local time \"HH:MM\" (00:00 to 23:59), not "
                         f"{_short(value)}")
    return int(match[1]), int(match[2])


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The relays service's answer to a command sent with a response topic (MQTT v5)."""

    relay: str
    accepted: bool
    applied: bool = False  # False while the load is shed: applied when restored
    reason: str | None = None
    mode: Mode | None = None
    order: Order | None = None
    for_s: float | None = None
    until: datetime | None = None  # when the forced mode ends (the relay's reckoning)

    @classmethod
    def decode(cls, payload: bytes) -> CommandReply | Rejection:
        """Parse a reply (the api's side)."""
        data = decode_object(payload, "a command reply")
        if isinstance(data, Rejection):
            return data
        relay, accepted = data.get("relay"), data.get("accepted")
        if not isinstance(relay, str) or not isinstance(accepted, bool):
            return Rejection('a reply needs "relay" (text) and "accepted" (true/false)')
        mode = data.get("mode")
        order = data.get("order")
        for_s = data.get("for_s")
        return cls(
            relay, accepted, bool(data.get("applied")),
            str(data["reason"])[:200] if data.get("reason") else None,
            mode if mode in ("on", "off", "auto") else None,
            Order(order) if isinstance(order, str) and order in ORDERS else None,
            float(for_s) if isinstance(for_s, int | float) and not isinstance(for_s, bool)
            else None,
            parse_ts(data.get("until")),
        )

    def encode(self) -> bytes:
        """JSON, absent values left out."""
        data: dict[str, Any] = {"relay": self.relay, "accepted": self.accepted,
                                "applied": self.applied}
        for key in ("reason", "mode", "for_s"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.order is not None:
            data["order"] = self.order.value
        if self.until is not None:
            data["until"] = self.until.astimezone(UTC).isoformat(timespec="seconds").replace(
                "+00:00", "Z")
        return to_json(data).encode()


# -- shedding and automation --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShedFlag:
    """The shedding service's decision for one load (retained on ``relays/<id>/shed``)."""

    shed: bool
    reason: str | None = None
    ts: str = field(default_factory=utc_now_iso)

    @classmethod
    def decode(cls, payload: bytes) -> ShedFlag | Rejection:
        """``{"shed": true|false, "reason": "...", "ts": ...}``."""
        data = decode_object(payload, "a shed message", 4096)
        if isinstance(data, Rejection):
            return data
        shed = data.get("shed")
        if not isinstance(shed, bool):
            return Rejection('a shed message must be {"shed": true|false, "reason": "..."}')
        reason = data.get("reason")
        ts = data.get("ts")
        return cls(shed, str(reason)[:200] if reason else None,
                   ts if isinstance(ts, str) and parse_ts(ts) else utc_now_iso())

    def encode(self) -> bytes:
        """JSON."""
        return to_json({"shed": self.shed, "reason": self.reason, "ts": self.ts}).encode()


@dataclass(frozen=True, slots=True)
class AutoWish:
    """The automation's wish for a relay in auto mode: a state, or an order for a zone."""

    value: str  # "on"/"off" or a fil pilote order
    reason: str = ""
    ts: str = field(default_factory=utc_now_iso)

    @classmethod
    def decode(cls, payload: bytes) -> AutoWish | Rejection:
        """``{"state": "on"|"off"}`` or ``{"order": ...}``, with ``reason`` and ``ts``."""
        data = decode_object(payload, "an auto wish", 4096)
        if isinstance(data, Rejection):
            return data
        state, order = data.get("state"), data.get("order")
        if (state is None) == (order is None):
            return Rejection('an auto wish has one of "state" (on/off) or "order"')
        if state is not None and state not in ("on", "off"):
            return Rejection(f"state {_short(state)} is not on or off")
        if order is not None and order not in ORDERS:
            return Rejection(f"order {_short(order)} is not one of {', '.join(ORDERS)}")
        reason = data.get("reason")
        ts = data.get("ts")
        return cls(str(state or order), str(reason)[:200] if reason else "",
                   ts if isinstance(ts, str) and parse_ts(ts) else utc_now_iso())

    def encode(self) -> bytes:
        """JSON."""
        key = "state" if self.value in ("on", "off") else "order"
        return to_json({key: self.value, "reason": self.reason, "ts": self.ts}).encode()


@dataclass(frozen=True, slots=True)
class AutomationSwitch:
    """A load's "automation enabled" switch (``automation/<relay>/set``)."""

    enabled: bool

    @classmethod
    def decode(cls, payload: bytes) -> AutomationSwitch | Rejection:
        """``ON``/``OFF`` (any case) or ``{"enabled": true|false}``."""
        text = decode_text(payload, COMMAND_MAX_BYTES)
        if isinstance(text, Rejection):
            return text
        if text.lower() in ("on", "off"):
            return cls(text.lower() == "on")
        if not text.startswith("{"):
            return Rejection.of(f"{text[:40]!r} is neither ON, OFF nor "
                                '{"enabled": true|false}', text)
        data = decode_object(text.encode(), "an automation switch", COMMAND_MAX_BYTES)
        if isinstance(data, Rejection):
            return data
        enabled = data.get("enabled")
        if set(data) != {"enabled"} or not isinstance(enabled, bool):
            return Rejection.of('expected {"enabled": true|false}', text)
        return cls(enabled)

    def encode(self) -> bytes:
        """``ON`` or ``OFF`` (what Home Assistant's switch sends)."""
        return b"ON" if self.enabled else b"OFF"


@dataclass(frozen=True, slots=True)
class PulseCalibration:
    """A pulse meter's index read on its display (``pulses/<meter>/set``), in Wh."""

    energy_wh: float

    @classmethod
    def decode(cls, payload: bytes) -> PulseCalibration | Rejection:
        """``{"energy_wh": N}``, N a finite number from 0 to 10^12 Wh (a plain number too)."""
        text = decode_text(payload, COMMAND_MAX_BYTES)
        if isinstance(text, Rejection):
            return text
        data: Any = decode_json(text.encode(), COMMAND_MAX_BYTES)
        if isinstance(data, Rejection):
            return data
        if isinstance(data, dict):
            if set(data) != {"energy_wh"}:
                return Rejection.of('expected {"energy_wh": <the index in Wh>}', text)
            data = data["energy_wh"]
        value = _number(data)
        if value is None or not 0 <= value <= 1e12:
            return Rejection.of("energy_wh must be a number of Wh from 0 to 10^12", text)
        return cls(value)

    def encode(self) -> bytes:
        """JSON."""
        return to_json({"energy_wh": self.energy_wh}).encode()


# -- events -------------------------------------------------------------------------------


class EventKind(StrEnum):
    """Every event a service publishes on ``<p>/<service>/events``."""

    STARTUP = "startup"
    DEVICE_FOUND = "device_found"
    DEVICE_LOST = "device_lost"
    PORT_ERROR = "port_error"
    MODE_DETECTED = "mode_detected"
    REJECTED = "rejected"  # an inbound message refused, with the reason
    COMMAND = "command"
    FORCED_EXPIRED = "forced_expired"
    READBACK_MISMATCH = "readback_mismatch"
    BOARD_ERROR = "board_error"
    BOARD_OK = "board_ok"
    BOARD_RESET = "board_reset"
    SHED = "shed"
    RESTORE = "restore"
    STALE = "stale"
    FRESH = "fresh"
    SHEDDING_OFFLINE = "shedding_offline"
    SHEDDING_BACK = "shedding_back"
    SAFE_STATE = "safe_state"
    DISK_BUDGET_EXCEEDED = "disk_budget_exceeded"
    SINK_DOWN = "sink_down"
    SINK_UP = "sink_up"
    SINK_BAD_DATA = "sink_bad_data"
    WORKER_DIED = "worker_died"
    HANDLER_FAILED = "handler_failed"  # a bug met while handling one message or pass: survived
    BROKER_REFUSED = "broker_refused"
    DECISION = "decision"  # the automation changed a load's wish or status, with the reason
    UNREACHABLE = "unreachable"  # a load's daily minimum no longer fits before its `by`
    COUNTER_BACKWARDS = "counter_backwards"  # an energy counter read lower: the last kept


@dataclass(frozen=True, slots=True)
class Event:
    """A typed event; ``data`` holds its JSON-able details."""

    kind: EventKind
    data: Mapping[str, Any] = field(default_factory=dict)
    ts: str = field(default_factory=utc_now_iso)

    @classmethod
    def decode(cls, payload: bytes) -> Event | Rejection:
        """Parse an event (the api's and the display's side)."""
        data = decode_object(payload, "an event")
        if isinstance(data, Rejection):
            return data
        kind = data.pop("type", None)
        if kind not in EventKind.__members__.values():
            return Rejection(f"unknown event type {_short(kind)}")
        ts = data.pop("ts", None)
        return cls(EventKind(kind), data,
                   ts if isinstance(ts, str) and parse_ts(ts) else utc_now_iso())

    def encode(self) -> bytes:
        """``{"type": ..., "ts": ..., ...details}`` (details never override type and ts)."""
        return to_json({**self.data, "type": self.kind.value, "ts": self.ts}).encode()


# -- states -------------------------------------------------------------------------------

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Any device's state: its normalized fields (JSON values) and its ``ts``."""

    fields: Mapping[str, Any]
    ts: datetime | None

    @classmethod
    def decode(cls, payload: bytes) -> DeviceState | Rejection:
        """A JSON object within the limits; ``ts`` parsed when it is a zoned ISO time."""
        data = decode_object(payload, "a state")
        if isinstance(data, Rejection):
            return data
        ts = parse_ts(data.pop("ts", None))
        return cls(data, ts)

    def number(self, key: str) -> float | None:
        """A finite numeric field (bools are not numbers), else None."""
        value = self.fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None


def _numbers(value: object) -> tuple[float, ...] | None:
    if not isinstance(value, list) or not 1 <= len(value) <= 3:
        return None
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            return None
        out.append(float(item))
    return tuple(out)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _text(value: object, choices: tuple[str, ...] | None = None) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    return value if choices is None or value in choices else None


_COLOURS = ("blue", "white", "red", "unknown")


@dataclass(frozen=True, slots=True)
class MeterState:
    """What teleinfo's consumers read of a Linky state; a mistyped field reads as absent."""

    apparent_power_va: float | None = None
    apparent_power_phase_va: tuple[float, ...] | None = None
    current_a: tuple[float, ...] | None = None
    voltage_v: tuple[float, ...] | None = None
    subscribed_current_a: float | None = None
    subscribed_power_kva: float | None = None
    cutoff_power_kva: float | None = None
    overload: bool = False
    overload_phases: tuple[int, ...] = ()
    net_power_va: float | None = None
    tariff_option: str | None = None
    tariff_period: str | None = None
    ejp_notice: bool = False
    tempo_today: str | None = None
    tempo_tomorrow: str | None = None
    ts: datetime | None = None

    @classmethod
    def decode(cls, payload: bytes) -> MeterState | Rejection:
        """A teleinfo ``state`` payload."""
        state = DeviceState.decode(payload)
        if isinstance(state, Rejection):
            return state
        f = state.fields
        phases = f.get("overload_phases")
        flagged = tuple(
            p for p in (phases if isinstance(phases, list) else [])
            if isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 3
        )
        return cls(
            apparent_power_va=_number(f.get("apparent_power_va")),
            apparent_power_phase_va=_numbers(f.get("apparent_power_phase_va")),
            current_a=_numbers(f.get("current_a")),
            voltage_v=_numbers(f.get("voltage_v")),
            subscribed_current_a=_number(f.get("subscribed_current_a")),
            subscribed_power_kva=_number(f.get("subscribed_power_kva")),
            cutoff_power_kva=_number(f.get("cutoff_power_kva")),
            overload=f.get("overload") is True,
            overload_phases=flagged,
            net_power_va=_number(f.get("net_power_va")),
            tariff_option=_text(f.get("tariff_option")),
            tariff_period=_text(f.get("tariff_period")),
            ejp_notice=f.get("ejp_notice") is True,
            tempo_today=_text(f.get("tempo_today"), _COLOURS),
            tempo_tomorrow=_text(f.get("tempo_tomorrow"), _COLOURS),
            ts=state.ts,
        )


_RELAY_SOURCES = ("failsafe", "shed", "user", "auto", "default")


@dataclass(frozen=True, slots=True)
class RelayReport:
    """What a relay's ``state`` says of its real output: consumers' view (automation, sim)."""

    output: str  # "on"/"off" for a switch, the order for a fil pilote zone
    source: str = "default"  # failsafe, shed, user, auto, default
    mode: str = "auto"
    ts: datetime | None = None

    @classmethod
    def decode(cls, payload: bytes) -> RelayReport | Rejection:
        """A relays ``state`` payload: ``state`` (on/off) or ``order``, with ``source``."""
        state = DeviceState.decode(payload)
        if isinstance(state, Rejection):
            return state
        f = state.fields
        output = _text(f.get("state"), ("on", "off")) or _text(f.get("order"), tuple(ORDERS))
        if output is None:
            return Rejection('a relay state has "state" (on/off) or "order" (a fil pilote '
                             "order)")
        source = _text(f.get("source"), _RELAY_SOURCES)
        mode = _text(f.get("mode"), ("on", "off", "auto"))
        return cls(output, source or "default", mode or "auto", state.ts)
