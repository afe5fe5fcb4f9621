"""Huawei SUN2000 inverters over Modbus: their own register map, not SunSpec; no I/O.

From Huawei's public "Solar Inverter Modbus Interface Definitions" (holding registers, read
with function 3, big-endian words), as also implemented by wlcrs/huawei-solar-lib. Not
checked against a captured image. Two reads per poll: identity (30000..30071) once per
device, and the running block (32000..32115) every poll, so every value of a reading, and
both halves of a 32-bit value, come from one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.inverter.types import Decoded

MANUFACTURER = "Huawei"

IDENTITY_BASE = 30000
IDENTITY_COUNT = 72  # model name (15), serial (10), ... model id (30070), PV strings (30071)
RUNNING_BASE = 32000
RUNNING_COUNT = 116  # state 1 (32000) .. daily energy yield (32114, U32)
MAX_STRINGS = 24  # PV1..PV24 at 32016..32063: the running block holds them all

# Offsets inside the identity block.
_MODEL = (0, 15)
_SERIAL = (15, 10)
_MODEL_ID = 70
_STRINGS = 71

# Addresses in the running block (subtract RUNNING_BASE for the offset).
STATE_1 = 32000
PV1_VOLTAGE = 32016  # then current; PVn at 32016 + 2(n-1)
INPUT_POWER = 32064
PHASE_VOLTAGES = (32069, 32070, 32071)
PHASE_CURRENTS = (32072, 32074, 32076)
ACTIVE_POWER = 32080
GRID_FREQUENCY = 32085
INTERNAL_TEMPERATURE = 32087
DEVICE_STATUS = 32089
FAULT_CODE = 32090
ACCUMULATED_YIELD = 32106
DAILY_YIELD = 32114

# "Not available": Huawei fills an unsupported or unread value with all ones (unsigned) or
# the largest positive value (signed).
U16_NA, I16_NA, U32_NA, I32_NA = 0xFFFF, 0x7FFF, 0xFFFFFFFF, 0x7FFFFFFF

STANDBY_NO_IRRADIATION = 0xA000

# Device status (32089): its documented name and DESIGN.md's status (None: no honest one).
DEVICE_STATUSES: Mapping[int, tuple[str, str | None]] = {
    0x0000: ("Standby: initializing", "sleeping"),
    0x0001: ("Standby: detecting insulation resistance", "starting"),
    0x0002: ("Standby: detecting irradiation", "sleeping"),
    0x0003: ("Standby: grid detecting", "starting"),
    0x0100: ("Starting", "starting"),
    0x0200: ("On-grid", "mppt"),
    0x0201: ("Grid connection: power limited", "throttled"),
    0x0202: ("Grid connection: self-derating", "throttled"),
    0x0203: ("Off-grid mode: running", "mppt"),
    0x0300: ("Shutdown: fault", "fault"),
    0x0301: ("Shutdown: command", "off"),
    0x0302: ("Shutdown: OVGR", "off"),
    0x0303: ("Shutdown: communication disconnected", "fault"),
    0x0304: ("Shutdown: power limited", "off"),
    0x0305: ("Shutdown: manual startup required", "off"),
    0x0306: ("Shutdown: DC switches disconnected", "off"),
    0x0307: ("Shutdown: rapid cutoff", "off"),
    0x0308: ("Shutdown: input underpowered", "sleeping"),  # dusk: too little sun
    0x0401: ("Grid scheduling: cosphi-P curve", "throttled"),
    0x0402: ("Grid scheduling: Q-U curve", "throttled"),
    0x0403: ("Grid scheduling: PF-U curve", "throttled"),
    0x0404: ("Grid scheduling: dry contact", "throttled"),
    0x0405: ("Grid scheduling: Q-P curve", "throttled"),
    0x0500: ("Spot-check ready", "starting"),
    0x0501: ("Spot-checking", "starting"),
    0x0600: ("Inspecting", "starting"),
    0x0700: ("AFCI self check", "starting"),
    0x0800: ("I-V scanning", None),  # a sweep while running: neither mppt nor throttled
    0x0900: ("DC input detection", "starting"),
    0x0A00: ("Running: off-grid charging", "mppt"),
    STANDBY_NO_IRRADIATION: ("Standby: no irradiation", "sleeping"),
}

# State 1 (32000) bits, for the raw topic.
STATE_1_BITS: Mapping[int, str] = {
    0: "standby", 1: "grid-connected", 2: "grid-connected normally",
    3: "derating: power rationing", 4: "derating: internal causes", 5: "normal stop",
    6: "stop: fault", 7: "stop: power rationing", 8: "shutdown", 9: "spot check",
}


class HuaweiError(ValueError):
    """A block that cannot be this map's (wrong length, no model name)."""


@dataclass(frozen=True)
class Identity:
    """What the identity block says; read once per device."""

    model: str | None
    serial: str | None
    model_id: int | None
    strings: int  # PV strings to read (0: none reported)


def _string(regs: Sequence[int]) -> str | None:
    raw = b"".join(r.to_bytes(2, "big") for r in regs)
    if not raw or raw[0] == 0 or raw[0] == 0xFF:
        return None  # NUL-filled or all ones: not available
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return text or None


def _u16(value: int) -> int | None:
    return None if value == U16_NA else value


def _i16(value: int) -> int | None:
    if value == I16_NA:
        return None
    return value - 0x10000 if value & 0x8000 else value


def _u32(hi: int, lo: int) -> int | None:
    value = hi << 16 | lo
    return None if value == U32_NA else value


def _i32(hi: int, lo: int) -> int | None:
    value = hi << 16 | lo
    if value == I32_NA:
        return None
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def _scaled(value: int | None, gain: int) -> float | None:
    return None if value is None else round(value / gain, 3)


def decode_identity(regs: Sequence[int]) -> Identity:
    """The identity block (IDENTITY_COUNT registers from IDENTITY_BASE)."""
    if len(regs) < IDENTITY_COUNT:
        raise HuaweiError(f"identity block: {len(regs)} of {IDENTITY_COUNT} registers")
    start, count = _MODEL
    model = _string(regs[start:start + count])
    start, count = _SERIAL
    serial = _string(regs[start:start + count])
    if model is None and serial is None:
        raise HuaweiError("no model name nor serial number: not a Huawei inverter's map")
    strings = _u16(regs[_STRINGS]) or 0
    return Identity(model=model, serial=serial, model_id=_u16(regs[_MODEL_ID]),
                    strings=min(strings, MAX_STRINGS))


def status_of(code: int | None) -> tuple[str | None, str | None]:
    """(Huawei's name, DESIGN.md's status) of a device status code."""
    if code is None:
        return None, None
    return DEVICE_STATUSES.get(code, (f"unknown 0x{code:04X}", None))


def _state_1_labels(value: int | None) -> list[str]:
    if value is None:
        return []
    return [name for bit, name in STATE_1_BITS.items() if value >> bit & 1]


class _Block:
    """The running block, addressed by register number."""

    def __init__(self, regs: Sequence[int]) -> None:
        if len(regs) < RUNNING_COUNT:
            raise HuaweiError(f"running block: {len(regs)} of {RUNNING_COUNT} registers")
        self.regs = regs

    def __getitem__(self, address: int) -> int:
        return self.regs[address - RUNNING_BASE]

    def u16(self, a: int) -> int | None:
        return _u16(self[a])

    def i16(self, a: int) -> int | None:
        return _i16(self[a])

    def u32(self, a: int) -> int | None:
        return _u32(self[a], self[a + 1])

    def i32(self, a: int) -> int | None:
        return _i32(self[a], self[a + 1])


def _mppt(block: _Block, strings: int) -> list[dict[str, float]]:
    """One entry per PV string up to the reported count, when both values are there."""
    out = []
    for n in range(strings):
        volts = _scaled(block.i16(PV1_VOLTAGE + 2 * n), 10)
        amps = _scaled(block.i16(PV1_VOLTAGE + 2 * n + 1), 100)
        if volts is None or amps is None:
            continue
        out.append({"dc_voltage_v": volts, "dc_current_a": amps,
                    "dc_power_w": round(volts * amps, 1)})
    return out


def _phases(block: _Block) -> tuple[list[float], list[float]]:
    """Phase voltages and currents: three when B and C carry a voltage, else A only
    (single-phase models leave B and C at 0 or not available)."""
    volts = [_scaled(block.u16(a), 10) for a in PHASE_VOLTAGES]
    amps = [_scaled(block.i32(a), 1000) for a in PHASE_CURRENTS]
    count = 3 if all(volts[1:]) else 1
    return ([v for v in volts[:count] if v is not None],
            [a for a in amps[:count] if a is not None])


def _identity_fields(identity: Identity, f: dict[str, Any], raw: dict[str, Any]) -> None:
    for key, text in (("model", identity.model), ("serial", identity.serial)):
        if text:
            f[key] = text
    if identity.model_id is not None:
        raw["model_id"] = identity.model_id
    raw["pv_strings"] = identity.strings


def _status_fields(block: _Block, f: dict[str, Any], raw: dict[str, Any]) -> None:
    code = block.u16(DEVICE_STATUS)
    name, status = status_of(code)
    if status is not None:
        f["status"] = status
    if code is not None:
        raw["device_status"] = code
        raw["device_status_name"] = name
    state_1 = block.u16(STATE_1)
    if state_1 is not None:
        raw["state_1"] = _state_1_labels(state_1)
    fault = block.u16(FAULT_CODE)
    if fault:
        raw["fault_code"] = fault


def _measure_fields(block: _Block, strings: int, f: dict[str, Any]) -> None:
    power = block.i32(ACTIVE_POWER)
    if power is not None:
        f["ac_power_w"] = power
    volts, amps = _phases(block)
    if volts:
        f["ac_voltage_v"] = volts
    if amps:
        f["ac_current_a"] = amps
    for key, value in (("ac_frequency_hz", _scaled(block.u16(GRID_FREQUENCY), 100)),
                       ("temperature_c", _scaled(block.i16(INTERNAL_TEMPERATURE), 10))):
        if value is not None:
            f[key] = value
    dc_power = block.i32(INPUT_POWER)
    if dc_power is not None:
        f["dc_power_w"] = dc_power
    inputs = _mppt(block, strings)
    if inputs:
        f["mppt"] = inputs
        if len(inputs) == 1:
            f["dc_voltage_v"] = inputs[0]["dc_voltage_v"]
            f["dc_current_a"] = inputs[0]["dc_current_a"]


def decode_running(regs: Sequence[int], identity: Identity | None) -> Decoded:
    """DESIGN.md's inverter fields from one running block (RUNNING_COUNT registers from
    RUNNING_BASE); ``identity`` names the device and says how many PV strings to read."""
    block = _Block(regs)
    f: dict[str, Any] = {"manufacturer": MANUFACTURER}
    raw: dict[str, Any] = {}
    if identity is not None:
        _identity_fields(identity, f, raw)
    _status_fields(block, f, raw)
    _measure_fields(block, identity.strings if identity is not None else 0, f)
    total = block.u32(ACCUMULATED_YIELD)
    if total:  # 0 is an unset counter, never a reading; kWh with gain 100: x10 is Wh
        f["ac_energy_wh"] = total * 10
    daily = block.u32(DAILY_YIELD)
    if daily is not None:
        raw["daily_energy_wh"] = daily * 10
    return Decoded(kind="inverter", fields=f, raw=raw)
