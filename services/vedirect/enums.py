"""VE.Direct enumerations and bitmasks, from Victron's VE.Direct Protocol whitepaper."""

from __future__ import annotations

CHARGE_STATE = {
    0: "off", 1: "low power", 2: "fault", 3: "bulk", 4: "absorption", 5: "float",
    6: "storage", 7: "equalize", 8: "passthru", 9: "inverting", 10: "assisting",
    11: "power supply", 244: "sustain", 245: "starting-up", 246: "repeated absorption",
    247: "auto equalize", 248: "batterysafe", 252: "external control",
}
ERROR = {
    0: "none", 2: "battery voltage too high", 17: "charger temperature too high",
    18: "charger over-current", 19: "charger current reversed",
    20: "bulk time limit exceeded", 21: "current sensor issue", 26: "terminals overheated",
    28: "converter issue", 33: "input voltage too high", 34: "input current too high",
    38: "input shutdown (battery over-voltage)", 39: "input shutdown (current flow while off)",
    65: "lost communication", 66: "synchronised charging config issue",
    67: "bms connection lost", 68: "network misconfigured", 116: "factory calibration lost",
    117: "invalid firmware", 119: "settings invalid",
}
TRACKER = {0: "off", 1: "voltage or current limited", 2: "mpp tracker active"}
MODE = {1: "charger", 2: "inverter", 3: "on", 4: "off", 5: "eco", 253: "hibernate"}
MONITOR = {
    -9: "solar charger", -8: "wind turbine", -7: "shaft generator", -6: "alternator",
    -5: "fuel cell", -4: "water generator", -3: "dc/dc charger", -2: "ac charger",
    -1: "generic source", 0: "battery monitor", 1: "generic load", 2: "electric drive",
    3: "fridge", 4: "water pump", 5: "bilge pump", 6: "dc system", 7: "inverter",
    8: "water heater",
}
# AR (alarm reason) and WARN share one bit table.
ALARM_BITS = (
    "low voltage", "high voltage", "low soc", "low starter voltage", "high starter voltage",
    "low temperature", "high temperature", "mid voltage", "overload", "dc ripple",
    "low ac out voltage", "high ac out voltage", "short circuit", "bms lockout",
)
OFF_REASON_BITS = (
    "no input power", "switched off (power switch)", "switched off (device mode register)",
    "remote input", "protection active", "paygo", "bms", "engine shutdown detection",
    "analysing input voltage", "battery temperature",
)


def name_of(table: dict[int, str], code: int) -> str:
    """Name of an enumeration value; an unknown one keeps its number."""
    return table.get(code) or f"unknown ({code})"


def bit_names(bits: tuple[str, ...], mask: int) -> list[str]:
    """Names of the bits set in a mask; unknown bits as 'bit N'."""
    return [
        bits[i] if i < len(bits) else f"bit {i}" for i in range(mask.bit_length()) if mask >> i & 1
    ]
