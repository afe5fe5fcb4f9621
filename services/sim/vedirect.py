"""VE.Direct wire encoding, and the 12 V battery + PV system behind the simulated Victron devices.

Pure: no I/O and no clock, time is passed in. A whole day plays in ``day_length_s`` seconds
(10 minutes by default, like the TIC simulator). Unlike the TIC meter, which counts energy in
real seconds, charge and energy here integrate over *simulated* time (one ``day_length_s`` is
24 h): a state of charge or a daily yield counted in real seconds would hardly move in a
10-minute day, while the currents and powers on the wire stay those of a real installation.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from services.sim.profile import LoadProfile, unit_noise

BAUDRATE = 19200  # 8N1: 10 bits a character on the wire
# A ':' in text would start a HEX message for a parser; TAB/CR/LF are the block's own syntax.
_FORBIDDEN = frozenset("\t\r\n:")
_CHECKSUM_FIELD = b"\r\nChecksum\t"


def check_field(label: str, value: str) -> None:
    """Raise ValueError unless ``label``/``value`` can go on the wire as one text field."""
    if not label:
        raise ValueError("empty label")
    for text in (label, value):
        if not text.isascii() or _FORBIDDEN.intersection(text):
            raise ValueError(f"{text!r}: VE.Direct text is ASCII without TAB, CR, LF or ':'")


def encode_block(fields: list[tuple[str, str]]) -> bytes:
    """A text block: ``\\r\\n<label>\\t<value>`` per field, then ``Checksum`` and its byte."""
    if not fields:
        raise ValueError("a block needs at least one field")
    out = bytearray()
    for label, value in fields:
        check_field(label, value)
        out += b"\r\n%s\t%s" % (label.encode("ascii"), value.encode("ascii"))
    out += _CHECKSUM_FIELD
    out.append(-sum(out) % 256)  # any byte, TAB/CR/LF/':' included: the block sums to 0
    return bytes(out)


def encode_hex(command: int, payload: bytes) -> bytes:
    """A HEX message: ``:``, command nibble, payload hex pairs, check byte, ``\\n``."""
    if not 0 <= command <= 0xF:
        raise ValueError(f"HEX command is one nibble, not {command:#x}")
    check = (0x55 - command - sum(payload)) % 256
    return b":" + f"{command:X}{payload.hex().upper()}{check:02X}\n".encode("ascii")


class ChargeState(enum.IntEnum):
    """The solar charger's CS values the simulation goes through."""

    OFF = 0
    BULK = 3
    ABSORPTION = 4
    FLOAT = 5


# The installation: 300 W of panels (two 36-cell panels in series) on a 20 A charger, DC loads
# of ~1.1 kWh a day, a 12 V bank. PV beats the loads by ~50 %, so the bank reaches full most
# afternoons (absorption, float, a BMV sync) and drops to ~70 % by dawn.
_CHARGER_MAX_A = 20.0
_EFFICIENCY = 0.97  # panel power to battery side
_CHARGE_EFFICIENCY = 0.98  # Ah stored per Ah charged
_MIN_PV_W = 3.0  # below this the charger stays off (no input power)
_BASE_LOAD_W, _DAILY_LOAD_W = 20.0, 90.0
_EMPTY_V, _SPAN_V = 11.9, 1.4  # rest voltage at 0 % and its rise to 100 %
_RESISTANCE = 0.012  # ohm: voltage sag / rise with the current
_KNEE_V = 0.6  # extra rise while charging the last 10 %
_ABSORPTION_V, _FLOAT_V = 14.2, 13.5
_ABSORPTION_H = 1.0
_TAIL_C = 0.01  # absorption current above the loads, as a fraction of the capacity
_REBULK_SOC = 0.9
_VMP, _VOC = 35.0, 43.0  # panel voltage while tracking / while the charger takes less


@dataclass(frozen=True, slots=True)
class DcSnapshot:
    """The bank, the loads and the charger at one instant (volts, amps, watts)."""

    day: int
    hour: float
    dt_h: float  # simulated hours since the previous instant
    battery_v: float
    battery_a: float  # into the battery: positive while charging
    load_a: float
    charger_a: float  # charger output
    pv_v: float
    pv_w: float  # power the charger takes from the panels
    charge_ah: float
    capacity_ah: float
    state: ChargeState
    tracking: int  # MPPT field: 0 off, 1 voltage or current limited, 2 tracking

    @property
    def soc(self) -> float:
        """State of charge, 0..1."""
        return self.charge_ah / self.capacity_ah


class DcSystem:
    """A 12 V bank with DC loads and a solar charger, integrated over simulated time."""

    def __init__(
        self,
        *,
        capacity_ah: float = 200.0,
        day_length_s: float = 600.0,
        start_soc: float = 0.85,
        pv_peak_w: float = 300.0,
        seed: int = 1,
        profile: LoadProfile | None = None,
    ) -> None:
        if capacity_ah <= 0 or not 0.0 <= start_soc <= 1.0:
            raise ValueError("capacity_ah must be > 0 and start_soc within 0..1")
        # The TIC profile's clock and daily shapes (household load, PV with its clouds): the
        # home's own when given (the same sun as the meter's), else a clear day from 0 h.
        self.profile = profile or LoadProfile(day_length_s=day_length_s, peak=None, seed=seed)
        self.capacity_ah = capacity_ah
        self.pv_peak_w = pv_peak_w
        self._charge_ah = capacity_ah * start_soc
        self._volts = _EMPTY_V + _SPAN_V * start_soc
        self._state = ChargeState.OFF
        self._absorption_left_h = 0.0
        self._last_t: float | None = None

    def advance(self, t_s: float) -> DcSnapshot:
        """Integrate up to ``t_s`` seconds after the start (time never runs back) and measure."""
        if self._last_t is None:
            self._last_t, dt_h = t_s, 0.0
        else:
            dt_h = max(0.0, t_s - self._last_t) * 24.0 / self.profile.day_length_s
            self._last_t = max(self._last_t, t_s)
        t = self._last_t
        hour, step, seed = self.profile.hour_at(t), math.floor(t), self.profile.seed
        load_w = _BASE_LOAD_W + _DAILY_LOAD_W * self.profile.shape(hour)
        load_a = load_w * (1.0 + 0.08 * unit_noise(seed, step, 0)) / self._volts
        sun = self.profile.pv_shape(hour)
        available_w = max(0.0, self.pv_peak_w * sun * (1.0 + 0.04 * unit_noise(seed, step, 1)))
        state = self._next_state(available_w, dt_h)
        available_a = available_w * _EFFICIENCY / self._volts
        charger_a, tracking = self._output(state, available_a, load_a)
        battery_a = charger_a - load_a
        gain = battery_a * dt_h * (_CHARGE_EFFICIENCY if battery_a > 0 else 1.0)
        self._charge_ah = min(self.capacity_ah, max(0.0, self._charge_ah + gain))
        pv_w = charger_a * self._volts / _EFFICIENCY
        self._volts = self._voltage(state, battery_a) + 0.003 * unit_noise(seed, step, 2)
        if sun <= 0.0:
            pv_v = 0.01  # a dark panel still shows a few mV
        else:
            pv_v = (_VMP if tracking == 2 else _VOC) * (0.9 + 0.1 * math.sqrt(sun))
        return DcSnapshot(
            day=self.profile.day_at(t), hour=hour, dt_h=dt_h, battery_v=self._volts,
            battery_a=battery_a, load_a=load_a, charger_a=charger_a, pv_v=pv_v, pv_w=pv_w,
            charge_ah=self._charge_ah, capacity_ah=self.capacity_ah, state=state,
            tracking=tracking,
        )

    def _next_state(self, available_w: float, dt_h: float) -> ChargeState:
        """Charger state machine: off at night, bulk each morning, absorption, then float."""
        s = self._state
        if available_w < _MIN_PV_W:
            s = ChargeState.OFF
        elif s is ChargeState.OFF:
            s = ChargeState.BULK
        elif s is ChargeState.BULK and self._charge_ah >= self.capacity_ah:
            s, self._absorption_left_h = ChargeState.ABSORPTION, _ABSORPTION_H
        elif s is ChargeState.ABSORPTION:
            self._absorption_left_h -= dt_h
            if self._absorption_left_h <= 0.0:
                s = ChargeState.FLOAT
        elif s is ChargeState.FLOAT and self._charge_ah < _REBULK_SOC * self.capacity_ah:
            s = ChargeState.BULK
        self._state = s
        return s

    def _output(self, state: ChargeState, available_a: float, load_a: float) -> tuple[float, int]:
        """Charger output current and MPPT mode for the state."""
        if state is ChargeState.OFF:
            return 0.0, 0
        limit = min(available_a, _CHARGER_MAX_A)
        if state is ChargeState.BULK:
            wanted = limit
        elif state is ChargeState.ABSORPTION:
            wanted = load_a + _TAIL_C * self.capacity_ah
        else:
            wanted = load_a
        out = min(limit, wanted)
        return out, 2 if out >= available_a else 1

    def _voltage(self, state: ChargeState, battery_a: float) -> float:
        """Battery voltage: rest voltage of the charge, plus the current's rise or sag."""
        soc = self._charge_ah / self.capacity_ah
        if state is ChargeState.ABSORPTION:
            return _ABSORPTION_V
        if state is ChargeState.FLOAT and battery_a >= 0.0:
            return _FLOAT_V
        volts = _EMPTY_V + _SPAN_V * soc + battery_a * _RESISTANCE
        if battery_a > 0.0:
            volts += _KNEE_V * max(0.0, (soc - 0.9) / 0.1) ** 2
        return min(volts, _ABSORPTION_V)
