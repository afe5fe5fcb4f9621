"""Huawei SUN2000 register images for tests and the simulators: values in, uint16 out.

Pure: no I/O, no clock. The addresses and gains are services/inverter/huawei.py's (Huawei's
"Solar Inverter Modbus Interface Definitions"). One image spans 30000..32115: the identity
block, then the running block, so SunSpecServer serves both as one image (the registers
between them, which enerbox never reads, hold 0). A value left None holds its "not
available" pattern (0xFFFF, 0x7FFF, 0xFFFFFFFF, 0x7FFFFFFF).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from services.inverter import huawei as hw

BASE = hw.IDENTITY_BASE
END = hw.RUNNING_BASE + hw.RUNNING_COUNT  # one past the last register served


@dataclass(frozen=True)
class HuaweiReading:
    """One moment of a simulated SUN2000 (physical units; None: not available)."""

    model: str | None = "SUN2000-5KTL-L1"
    serial: str | None = "HV2150012345"
    model_id: int | None = 348
    strings: tuple[tuple[float | None, float | None], ...] = ((350.0, 5.0), (340.0, 4.9))
    pv_strings: int | None = None  # the reported count; None: len(strings)
    input_power_w: int | None = 3400
    phase_v: tuple[float | None, ...] = (230.1,)  # 1 (single-phase) or 3 values
    phase_a: tuple[float | None, ...] = (14.3,)
    active_power_w: int | None = 3300
    frequency_hz: float | None = 50.01
    temperature_c: float | None = 41.5
    status: int | None = 0x0200  # on-grid
    state_1: int | None = 0b110  # grid-connected, normally
    fault_code: int | None = 0
    energy_kwh: float | None = 12345.67
    daily_kwh: float | None = 18.42


def night(**kw: Any) -> HuaweiReading:
    """The dongle still answers at night: standby, no irradiation, 0 W, counters kept."""
    dark = HuaweiReading(strings=((0.0, 0.0), (0.0, 0.0)), input_power_w=0, phase_v=(0.0,),
                         phase_a=(0.0,), active_power_w=0, frequency_hz=0.0,
                         temperature_c=12.0, status=hw.STANDBY_NO_IRRADIATION, state_1=0b1,
                         daily_kwh=0.0)
    return replace(dark, **kw)


class _Image:
    def __init__(self) -> None:
        self.regs = [0] * (END - BASE)

    def put(self, address: int, words: list[int]) -> None:
        self.regs[address - BASE:address - BASE + len(words)] = words

    def string(self, address: int, count: int, text: str | None) -> None:
        data = (text or "").encode("ascii")[:count * 2].ljust(count * 2, b"\0")
        self.put(address, [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)])

    def u16(self, address: int, value: float | None, gain: int = 1) -> None:
        self.put(address, [hw.U16_NA if value is None else round(value * gain) & 0xFFFF])

    def i16(self, address: int, value: float | None, gain: int = 1) -> None:
        self.put(address, [hw.I16_NA if value is None else round(value * gain) & 0xFFFF])

    def _32(self, address: int, raw: int) -> None:
        self.put(address, [raw >> 16 & 0xFFFF, raw & 0xFFFF])

    def u32(self, address: int, value: float | None, gain: int = 1) -> None:
        self._32(address, hw.U32_NA if value is None else round(value * gain))

    def i32(self, address: int, value: float | None, gain: int = 1) -> None:
        self._32(address, hw.I32_NA if value is None else round(value * gain) & 0xFFFFFFFF)


def huawei_registers(r: HuaweiReading) -> tuple[int, ...]:
    """The image of ``r``, from BASE (30000) to 32115."""
    img = _Image()
    img.string(hw.IDENTITY_BASE, 15, r.model)
    img.string(hw.IDENTITY_BASE + 15, 10, r.serial)
    img.u16(hw.IDENTITY_BASE + 70, r.model_id)
    img.u16(hw.IDENTITY_BASE + 71, len(r.strings) if r.pv_strings is None else r.pv_strings)
    img.u16(hw.STATE_1, r.state_1)
    for n, (volts, amps) in enumerate(r.strings):
        img.i16(hw.PV1_VOLTAGE + 2 * n, volts, 10)
        img.i16(hw.PV1_VOLTAGE + 2 * n + 1, amps, 100)
    img.i32(hw.INPUT_POWER, r.input_power_w)
    for n, address in enumerate(hw.PHASE_VOLTAGES):
        # single-phase models: B and C read 0
        img.u16(address, r.phase_v[n] if n < len(r.phase_v) else 0.0, 10)
    for n, address in enumerate(hw.PHASE_CURRENTS):
        img.i32(address, r.phase_a[n] if n < len(r.phase_a) else 0.0, 1000)
    img.i32(hw.ACTIVE_POWER, r.active_power_w)
    img.u16(hw.GRID_FREQUENCY, r.frequency_hz, 100)
    img.i16(hw.INTERNAL_TEMPERATURE, r.temperature_c, 10)
    img.u16(hw.DEVICE_STATUS, r.status)
    img.u16(hw.FAULT_CODE, r.fault_code)
    img.u32(hw.ACCUMULATED_YIELD, r.energy_kwh, 100)
    img.u32(hw.DAILY_YIELD, r.daily_kwh, 100)
    return tuple(img.regs)
