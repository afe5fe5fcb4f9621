"""ABB/Power-One Aurora protocol (old PVI inverters on RS485): frames, replies, tables; no I/O.

From Power-One's "Aurora Inverter Series - Communication Protocol" rel. 4.2. A request is 10
bytes: address, command, six argument bytes (zero padded), then CRC-16/X.25 of the first 8,
LOW byte first. A reply is 8 bytes: six payload bytes and the CRC. For most commands the
payload is transmission state, global state and four data bytes; P/N (52) and serial number
(63) use all six payload bytes for ASCII, so their first byte is not a transmission state.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.inverter.types import Decoded

BAUDRATE = 19200  # 8N1
DEFAULT_ADDRESS = 2
REQUEST_LEN = 10
REPLY_LEN = 8

# Commands (the ones a string inverter implements; 68 is for central inverters only).
STATE = 50
PART_NUMBER = 52
VERSION = 58
MEASURE = 59  # DSP measure: arg b2 = measure type, b3 = 0 global / 1 module
SERIAL_NUMBER = 63
FIRMWARE = 72
ENERGY = 78  # cumulated energy: arg b2 = period
ASCII_COMMANDS = frozenset({PART_NUMBER, SERIAL_NUMBER})  # six ASCII bytes, no states

# Measure types of command 59 (units: V, A, W, Hz, degC).
GRID_VOLTAGE = 1
GRID_CURRENT = 2
GRID_POWER = 3
FREQUENCY = 4
INPUT1_POWER = 8
INPUT2_POWER = 9
INVERTER_TEMPERATURE = 21
BOOSTER_TEMPERATURE = 22
INPUT1_VOLTAGE = 23
INPUT1_CURRENT = 25
INPUT2_VOLTAGE = 26
INPUT2_CURRENT = 27

# Periods of command 78 (2 is not used by the protocol).
ENERGY_DAILY, ENERGY_WEEKLY, ENERGY_MONTHLY, ENERGY_YEARLY = 0, 1, 3, 4
ENERGY_LIFETIME, ENERGY_PARTIAL = 5, 6

TRANSMISSION_STATES: Mapping[int, str] = {
    0: "Everything is OK",
    51: "Command is not implemented",
    52: "Variable does not exist",
    53: "Variable value is out of range",
    54: "EEprom not accessible",
    55: "Not toggled service mode",
    56: "Can not send the command to internal micro",
    57: "Command not executed",
    58: "The variable is not available, retry",
}

# Global state: its name and DESIGN.md's status (None: no honest mapping, status absent).
GLOBAL_STATES: Mapping[int, tuple[str, str | None]] = {
    0: ("Sending Parameters", "starting"),
    1: ("Wait Sun / Grid", "sleeping"),
    2: ("Checking Grid", "starting"),
    3: ("Measuring Riso", "starting"),
    4: ("DcDc Start", "starting"),
    5: ("Inverter Start", "starting"),
    6: ("Run", "mppt"),
    7: ("Recovery", "starting"),
    8: ("Pause", "standby"),
    9: ("Ground Fault", "fault"),
    10: ("OTH Fault", "fault"),
    11: ("Address Setting", "standby"),
    12: ("Self Test", "starting"),
    13: ("Self Test Fail", "fault"),
    14: ("Sensor Test + Meas.Riso", "starting"),
    15: ("Leak Fault", "fault"),
    16: ("Waiting for manual reset", "fault"),
    17: ("Internal Error E026", "fault"),
    18: ("Internal Error E027", "fault"),
    19: ("Internal Error E028", "fault"),
    20: ("Internal Error E029", "fault"),
    21: ("Internal Error E030", "fault"),
    22: ("Sending Wind Table", "starting"),
    23: ("Failed Sending table", "fault"),
    24: ("UTH Fault", "fault"),
    25: ("Remote OFF", "off"),
    26: ("Interlock Fail", "fault"),
    27: ("Executing Autotest", "starting"),
    30: ("Waiting Sun", "sleeping"),
    31: ("Temperature Fault", "fault"),
    32: ("Fan Staucked", "fault"),
    33: ("Int.Com.Fault", "fault"),
    34: ("Slave Insertion", "starting"),
    35: ("DC Switch Open", "off"),
    36: ("TRAS Switch Open", "off"),
    37: ("MASTER Exclusion", "standby"),
    38: ("Auto Exclusion", "standby"),
    98: ("Erasing Internal EEprom", "standby"),
    99: ("Erasing External EEprom", "standby"),
    100: ("Counting EEprom", "standby"),
    101: ("Freeze", "standby"),
}

INVERTER_STATES: Mapping[int, str] = {
    0: "Stand By", 1: "Checking Grid", 2: "Run", 3: "Bulk OV", 4: "Out OC", 5: "IGBT Sat",
    6: "Bulk UV", 7: "Degauss Error", 8: "No Parameters", 9: "Bulk Low", 10: "Grid OV",
    11: "Communication Error", 12: "Degaussing", 13: "Starting", 14: "Bulk Cap Fail",
    15: "Leak Fail", 16: "DcDc Fail", 17: "Ileak Sensor Fail", 18: "SelfTest: relay inverter",
    19: "SelfTest: wait for sensor test", 20: "SelfTest: test relay DcDc + sensor",
    21: "SelfTest: relay inverter fail", 22: "SelfTest timeout fail",
    23: "SelfTest: relay DcDc fail", 24: "Self Test 1", 25: "Waiting self test start",
    26: "Dc Injection", 27: "Self Test 2", 28: "Self Test 3", 29: "Self Test 4",
    30: "Internal Error", 31: "Internal Error", 40: "Forbidden State", 41: "Input UC",
    42: "Zero Power", 43: "Grid Not Present", 44: "Waiting Start", 45: "MPPT",
    46: "Grid Fail", 47: "Input OC",
}

DCDC_STATES: Mapping[int, str] = {
    0: "DcDc OFF", 1: "Ramp Start", 2: "MPPT", 3: "Not Used", 4: "Input OC", 5: "Input UV",
    6: "Input OV", 7: "Input Low", 8: "No Parameters", 9: "Bulk OV", 10: "Communication Error",
    11: "Ramp Fail", 12: "Internal Error", 13: "Input mode Error", 14: "Ground Fault",
    15: "Inverter Fail", 16: "DcDc IGBT Sat", 17: "DcDc ILEAK Fail", 18: "DcDc Grid Fail",
    19: "DcDc Comm.Error",
}

ALARM_STATES: Mapping[int, str] = {
    0: "No Alarm", 1: "Sun Low", 2: "Input OC", 3: "Input UV", 4: "Input OV", 5: "Sun Low",
    6: "No Parameters", 7: "Bulk OV", 8: "Comm.Error", 9: "Output OC", 10: "IGBT Sat",
    11: "Bulk UV", 12: "Internal error", 13: "Grid Fail", 14: "Bulk Low", 15: "Ramp Fail",
    16: "Dc / Dc Fail", 17: "Wrong Mode", 18: "Ground Fault", 19: "Over Temp.",
    20: "Bulk Cap Fail", 21: "Inverter Fail", 22: "Start Timeout", 23: "Ground Fault",
    24: "Degauss error", 25: "Ileak sens.fail", 26: "DcDc Fail", 27: "Self Test Error 1",
    28: "Self Test Error 2", 29: "Self Test Error 3", 30: "Self Test Error 4",
    31: "DC inj error", 32: "Grid OV", 33: "Grid UV", 34: "Grid OF", 35: "Grid UF",
    36: "Z grid Hi", 37: "Internal error", 38: "Riso Low", 39: "Vref Error",
    40: "Error Meas V", 41: "Error Meas F", 42: "Error Meas Z", 43: "Error Meas Ileak",
    44: "Error Read V", 45: "Error Read I", 46: "Table fail", 47: "Fan Fail", 48: "UTH",
    49: "Interlock fail", 50: "Remote Off", 51: "Vout Avg error", 52: "Battery low",
    53: "Clk fail", 54: "Input UC", 55: "Zero Power", 56: "Fan Stucked",
    57: "DC Switch Open", 58: "Tras Switch Open", 59: "AC Switch Open", 60: "Bulk UV",
    61: "Autoexclusion", 62: "Grid df / dt", 63: "Den switch Open", 64: "Jbox fail",
}

# Version (58) first character: the product.
MODELS: Mapping[str, str] = {
    "i": "PVI-2000", "o": "PVI-2000-OUTD", "I": "PVI-3600", "O": "PVI-3.6-OUTD",
    "5": "PVI-5000-OUTD", "6": "PVI-6000-OUTD", "P": "3-phase interface (3G74)",
    "C": "PVI-CENTRAL-50 module", "4": "PVI-4.2-OUTD", "3": "PVI-3.6-OUTD",
    "2": "PVI-3.3-OUTD", "1": "PVI-3.0-OUTD", "D": "PVI-12.5-OUTD", "X": "PVI-10.0-OUTD",
}
MANUFACTURER = "ABB/Power-One"


class AuroraError(Exception):
    """Any reply that cannot be used."""


class FrameError(AuroraError):
    """Not a reply: wrong length."""


class CrcError(AuroraError):
    """The reply's CRC does not match its payload."""


class TransmissionError(AuroraError):
    """The inverter answered with a non-zero transmission state."""

    def __init__(self, state: int, meaning: str) -> None:
        super().__init__(f"transmission state {state}: {meaning}")
        self.state = state
        self.meaning = meaning


class AuroraTimeout(AuroraError, TimeoutError):  # noqa: N818 (the name the service uses)
    """No reply at all: an unpowered inverter (night), a wrong address or a cut line."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc_table()


def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25: reflected poly 0x8408, init 0xFFFF, final xor 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def _with_crc(body: bytes) -> bytes:
    return body + crc16_x25(body).to_bytes(2, "little")


def request(address: int, command: int, *args: int) -> bytes:
    """The 10-byte request: address, command, up to six argument bytes, CRC low byte first."""
    if not 0 <= address <= 255 or not 0 <= command <= 255 or len(args) > 6:
        raise ValueError(f"bad request: address={address} command={command} args={args}")
    return _with_crc(bytes([address, command, *args]).ljust(8, b"\0"))


def encode_reply(payload: bytes) -> bytes:
    """The 8-byte reply carrying six payload bytes (for simulators and tests)."""
    if len(payload) > 6:
        raise ValueError(f"a reply carries 6 payload bytes, not {len(payload)}")
    return _with_crc(payload.ljust(6, b"\0"))


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply whose CRC checked: six payload bytes."""

    payload: bytes

    @property
    def transmission_state(self) -> int:
        """Byte 0 (not meaningful for the ASCII commands 52 and 63)."""
        return self.payload[0]

    @property
    def global_state(self) -> int:
        """Byte 1 (not meaningful for the ASCII commands 52 and 63)."""
        return self.payload[1]

    @property
    def data(self) -> bytes:
        """The four data bytes after the two states."""
        return self.payload[2:6]


def parse_reply(frame: bytes, command: int | None = None) -> Reply:
    """Check length and CRC; unless ``command`` is 52 or 63, a non-zero transmission state
    raises ``TransmissionError``."""
    if len(frame) != REPLY_LEN:
        raise FrameError(f"reply of {len(frame)} bytes, expected {REPLY_LEN}")
    got = int.from_bytes(frame[6:8], "little")
    want = crc16_x25(frame[:6])
    if got != want:
        raise CrcError(f"reply CRC {got:#06x}, computed {want:#06x}")
    reply = Reply(bytes(frame[:6]))
    if command not in ASCII_COMMANDS and reply.transmission_state != 0:
        state = reply.transmission_state
        raise TransmissionError(state, TRANSMISSION_STATES.get(state, "Unknown"))
    return reply


def decode_float(reply: Reply) -> float:
    """A DSP measure (59): big-endian IEEE754 float32, to its 7 significant digits."""
    value: float = struct.unpack(">f", reply.data)[0]
    # float32 holds ~7 digits; the rest of the widened double is noise (11.467145919799805).
    return float(f"{value:.7g}")


def decode_uint32(reply: Reply) -> int:
    """A cumulated energy (78): big-endian uint32, Wh."""
    return int.from_bytes(reply.data, "big")


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip("\0 ")


def decode_ascii(reply: Reply) -> str:
    """P/N (52) or serial number (63): all six payload bytes as ASCII."""
    return _ascii(reply.payload)


def decode_firmware(reply: Reply) -> str:
    """Firmware release (72): four characters, shown dotted ("C.0.2.2")."""
    return ".".join(_ascii(bytes([b])) or "?" for b in reply.data)


@dataclass(frozen=True, slots=True)
class State:
    """A state request's (50) reply."""

    global_state: int
    inverter_state: int
    dcdc1_state: int
    dcdc2_state: int
    alarm_state: int

    @property
    def status(self) -> str | None:
        """DESIGN.md's status, from the global state (None when the code is unknown)."""
        return GLOBAL_STATES.get(self.global_state, ("", None))[1]

    def names(self) -> dict[str, str]:
        """Each state's documented name, for the raw topic."""
        return {
            "global_state": GLOBAL_STATES.get(self.global_state, ("Unknown", None))[0],
            "inverter_state": INVERTER_STATES.get(self.inverter_state, "Unknown"),
            "dcdc1_state": DCDC_STATES.get(self.dcdc1_state, "Unknown"),
            "dcdc2_state": DCDC_STATES.get(self.dcdc2_state, "Unknown"),
            "alarm_state": ALARM_STATES.get(self.alarm_state, "Unknown"),
        }


def decode_state(reply: Reply) -> State:
    """State request (50): global, inverter, DC/DC 1, DC/DC 2 and alarm states."""
    return State(reply.payload[1], *reply.payload[2:6])


@dataclass(frozen=True, slots=True)
class Identity:
    """What never changes on a device: read once, cached by the caller."""

    serial: str | None = None
    part_number: str | None = None
    firmware: str | None = None
    version: str | None = None  # command 58's four characters, e.g. "1ENN"

    @property
    def model(self) -> str | None:
        """The product from the version code when known, else the P/N."""
        if self.version and self.version[0] in MODELS:
            return MODELS[self.version[0]]
        return self.part_number or None


def decode_version(reply: Reply) -> str:
    """Version (58): four code characters (product, grid standard, transformer, PV/wind)."""
    return _ascii(reply.data)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _mppt(measures: Mapping[int, float]) -> list[dict[str, float]]:
    """One entry per input whose voltage and current were both read."""
    inputs = []
    for v_key, a_key in ((INPUT1_VOLTAGE, INPUT1_CURRENT), (INPUT2_VOLTAGE, INPUT2_CURRENT)):
        volts, amps = _finite(measures.get(v_key)), _finite(measures.get(a_key))
        if volts is None or amps is None:
            continue
        # V x I instead of measures 8/9: two requests fewer per poll on a shared bus.
        inputs.append({"dc_voltage_v": volts, "dc_current_a": amps,
                       "dc_power_w": volts * amps})
    return inputs


def _identity_fields(identity: Identity, f: dict[str, Any], raw: dict[str, Any]) -> None:
    for key, value in (("model", identity.model), ("serial", identity.serial),
                       ("firmware", identity.firmware)):
        if value:
            f[key] = value
    for key, value in (("part_number", identity.part_number), ("version", identity.version)):
        if value:
            raw[key] = value


def _measure_fields(m: Mapping[int, float], f: dict[str, Any]) -> None:
    for key, name in ((GRID_POWER, "ac_power_w"), (FREQUENCY, "ac_frequency_hz"),
                      (INVERTER_TEMPERATURE, "temperature_c")):
        if key in m:
            f[name] = m[key]
    if GRID_VOLTAGE in m:
        f["ac_voltage_v"] = [m[GRID_VOLTAGE]]
    if GRID_CURRENT in m:
        f["ac_current_a"] = [m[GRID_CURRENT]]
    inputs = _mppt(m)
    if inputs:
        f["mppt"] = inputs
        f["dc_power_w"] = sum(i["dc_power_w"] for i in inputs)
        if len(inputs) == 1:
            f["dc_voltage_v"] = inputs[0]["dc_voltage_v"]
            f["dc_current_a"] = inputs[0]["dc_current_a"]


def normalize(
    *,
    state: State | None,
    measures: Mapping[int, float],
    lifetime_wh: int | None,
    identity: Identity | None = None,
) -> Decoded:
    """DESIGN.md's inverter fields from one poll; whatever was not read is absent."""
    f: dict[str, Any] = {"manufacturer": MANUFACTURER}
    raw: dict[str, Any] = {}
    if identity is not None:
        _identity_fields(identity, f, raw)
    if state is not None:
        if state.status is not None:
            f["status"] = state.status
        raw.update(state.names())
    m = {k: v for k, value in measures.items() if (v := _finite(value)) is not None}
    _measure_fields(m, f)
    if lifetime_wh:  # 0 is an unset counter, never a reading
        f["ac_energy_wh"] = int(lifetime_wh)
    if BOOSTER_TEMPERATURE in m:
        raw["booster_temperature_c"] = m[BOOSTER_TEMPERATURE]
    raw["measures"] = {str(k): v for k, v in sorted(m.items())}
    return Decoded(kind="inverter", fields=f, raw=raw)
