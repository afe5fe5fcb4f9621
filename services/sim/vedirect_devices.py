"""Simulated Victron devices: a SmartShunt and a SmartSolar MPPT, as wire blocks. No I/O, no clock.

Both read a DcSystem (the same model and seed give the same installation), keep their own
counters (history, yields) and format them in wire units (mV, mA, W, ‰, 0.01 kWh), with the
labels in the order real devices send them (as in the real captures the tests use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from services.sim.counters import Counters, restore
from services.sim.profile import LoadProfile, unit_noise
from services.sim.vedirect import (
    ChargeState,
    DcSnapshot,
    DcSystem,
    check_field,
    encode_block,
    encode_hex,
)
from services.vedirect.pids import product_name

Aux = Literal["none", "starter", "midpoint"]
_DISCHARGE_FLOOR = 0.5  # TTG counts down to this SOC (Victron's default discharge floor)
_CYCLE_DEPTH = 0.1  # a discharge this deep (fraction of capacity) counts as a charge cycle
_LOAD_OUTPUT_SHARE = 0.3  # part of the DC loads (lights) on the charger's load output
_HEX_ASYNC = 0xA
# Registers a SmartSolar announces on its own: panel voltage (0.01 V), panel power (0.01 W),
# battery voltage (0.01 V); (register, bytes).
_PANEL_V, _PANEL_P, _BATTERY_V = (0xEDBB, 2), (0xEDBC, 4), (0xEDD5, 2)


@dataclass(slots=True)
class _History:
    """A SmartShunt's H fields (mAh, mV, s, Wh), starting from a bank in service for a while."""

    deepest_mah: float = -142_300.0  # H1
    average_mah: float = -41_200.0  # H3
    cycles: int = 87  # H4
    full_discharges: int = 0  # H5
    drawn_mah: float = -8_123_400.0  # H6
    min_mv: int = 11_850  # H7
    max_mv: int = 14_420  # H8
    since_full_s: float = 32_400.0  # H9: last full charge yesterday afternoon
    syncs: int = 93  # H10
    min_aux_mv: int = 0  # H15 (0 unless the aux input watches a starter battery)
    max_aux_mv: int = 0  # H16
    discharged_wh: float = 103_800.0  # H17
    charged_wh: float = 112_400.0  # H18


class BatteryMonitorSim:
    """A SmartShunt on a 12 V bank: a main block and a history block per reading."""

    def __init__(
        self,
        serial: str = "HQ2231SIM01",
        pid: int = 0xA389,
        capacity_ah: float = 200.0,
        *,
        day_length_s: float = 600.0,
        start_soc: float = 0.85,
        aux: Aux = "none",
        synchronised: bool = True,
        send_serial: bool = True,
        seed: int = 1,
        profile: LoadProfile | None = None,
    ) -> None:
        check_field("SER#", serial)
        self.serial, self.pid, self.product_name = serial, pid, product_name(pid)
        self.aux = aux
        # A real SmartShunt sends no SER# (its serial is only readable over HEX); the simulator
        # sends it by default so a service can name the device.
        self.send_serial = send_serial
        self.system = DcSystem(capacity_ah=capacity_ah, day_length_s=day_length_s,
                               start_soc=start_soc, seed=seed, profile=profile)
        self.history = _History()
        if aux == "starter":
            self.history.min_aux_mv, self.history.max_aux_mv = 12_210, 14_050
        self._synchronised = synchronised  # False: SOC and TTG are '---' until the first sync
        self._cycle_min_mah = -(1.0 - start_soc) * capacity_ah * 1000.0  # H2
        self._at_full, self._at_empty = start_soc >= 1.0, start_soc <= 0.0
        self._seed, self._step = seed, 0

    def counters(self) -> Counters:
        """The history's running totals, to carry over a restart (services.sim.counters)."""
        h = self.history
        return {"H4_cycles": h.cycles, "H5_full_discharges": h.full_discharges,
                "H6_drawn_mah": -h.drawn_mah, "H10_syncs": h.syncs,
                "H17_discharged_wh": h.discharged_wh, "H18_charged_wh": h.charged_wh}

    def restore(self, saved: Counters) -> None:
        """Go on from saved totals (none lower than now)."""
        v, h = restore(self.counters(), saved), self.history
        h.cycles, h.full_discharges = int(v["H4_cycles"]), int(v["H5_full_discharges"])
        h.drawn_mah, h.syncs = -v["H6_drawn_mah"], int(v["H10_syncs"])  # H6 counts down
        h.discharged_wh, h.charged_wh = v["H17_discharged_wh"], v["H18_charged_wh"]

    def blocks_at(self, t_s: float) -> list[bytes]:
        """The reading at ``t_s`` seconds after the start: [main block, history block]."""
        s = self.system.advance(t_s)
        self._step = math.floor(t_s)
        self._account(s)
        return [encode_block(self._main(s)), encode_block(self._history_fields())]

    def _account(self, s: DcSnapshot) -> None:
        """Update the history counters with the step that led to ``s``."""
        h = self.history
        ce = -(s.capacity_ah - s.charge_ah) * 1000.0
        self._cycle_min_mah = min(self._cycle_min_mah, ce)
        h.deepest_mah = min(h.deepest_mah, ce)
        power = s.battery_v * s.battery_a
        if s.battery_a < 0.0:
            h.drawn_mah += s.battery_a * 1000.0 * s.dt_h
            h.discharged_wh -= power * s.dt_h
        else:
            h.charged_wh += power * s.dt_h
        h.since_full_s += s.dt_h * 3600.0
        mv = round(s.battery_v * 1000)
        h.min_mv, h.max_mv = min(h.min_mv, mv), max(h.max_mv, mv)
        if self.aux == "starter":
            vs = self._starter_mv(s)
            h.min_aux_mv, h.max_aux_mv = min(h.min_aux_mv, vs), max(h.max_aux_mv, vs)
        if s.soc >= 1.0 and not self._at_full:
            self._sync()
        elif s.soc < 0.99:
            self._at_full = False
        if s.charge_ah <= 0.0 and not self._at_empty:
            h.full_discharges += 1
        self._at_empty = s.charge_ah <= 0.0

    def _sync(self) -> None:
        """Full charge reached: the monitor synchronises and closes the discharge cycle."""
        h = self.history
        self._at_full, self._synchronised = True, True
        h.syncs += 1
        h.since_full_s = 0.0
        if self._cycle_min_mah <= -_CYCLE_DEPTH * self.system.capacity_ah * 1000.0:
            h.average_mah = (h.average_mah * h.cycles + self._cycle_min_mah) / (h.cycles + 1)
            h.cycles += 1
        self._cycle_min_mah = 0.0

    def _starter_mv(self, s: DcSnapshot) -> int:
        """A starter battery on the aux input, topped up while the bank charges (a DC-DC)."""
        noise = unit_noise(self._seed, self._step, 5)
        return round(12_640 + (600 if s.battery_a > 0 else 0) + 15 * noise)

    def _main(self, s: DcSnapshot) -> list[tuple[str, str]]:
        """PID, V, aux voltage, I, P, CE, SOC, TTG, alarm, model, firmware, monitor mode."""
        mv, ma = round(s.battery_v * 1000), round(s.battery_a * 1000)
        fields = [("PID", f"0x{self.pid:04X}"), ("V", str(mv))]
        if self.aux == "starter":
            fields.append(("VS", str(self._starter_mv(s))))
        elif self.aux == "midpoint":
            # Two 6 V halves; the upper one a little weaker, as ageing blocks drift apart.
            vm = round(mv / 2 + 9 + 3 * unit_noise(self._seed, self._step, 6))
            fields += [("VM", str(vm)), ("DM", str(round((vm - mv / 2) * 2000 / mv)))]
        ce = min(0, round(-(s.capacity_ah - s.charge_ah) * 1000))
        if not self._synchronised:
            soc = ttg = "---"
        else:
            soc = str(min(1000, max(0, round(s.soc * 1000))))
            ttg = "-1" if ma >= 0 else str(self._time_to_go_min(s))
        fields += [
            ("I", str(ma)), ("P", str(round(mv * ma / 1e6))), ("CE", str(ce)), ("SOC", soc),
            ("TTG", ttg), ("Alarm", "OFF"), ("AR", "0"),
            # A SmartShunt has no relay, and sends its name as BMV (real FW 4.14 capture).
            ("BMV", self.product_name), ("FW", "0413"), ("MON", "0"),
        ]
        if self.send_serial:
            fields.append(("SER#", self.serial))
        return fields

    def _time_to_go_min(self, s: DcSnapshot) -> int:
        """Minutes until the discharge floor at the present current."""
        left_ah = s.charge_ah - _DISCHARGE_FLOOR * s.capacity_ah
        return max(0, round(left_ah / -s.battery_a * 60))

    def _history_fields(self) -> list[tuple[str, str]]:
        """H1..H12, H15..H18: a SmartShunt leaves out H13/H14 (aux alarms), as real ones do."""
        h = self.history
        values = [
            h.deepest_mah, min(0.0, self._cycle_min_mah), h.average_mah, h.cycles,
            h.full_discharges, h.drawn_mah, h.min_mv, h.max_mv, h.since_full_s, h.syncs, 0, 0,
        ]
        fields = [(f"H{i}", str(round(v))) for i, v in enumerate(values, start=1)]
        fields += [("H15", str(h.min_aux_mv)), ("H16", str(h.max_aux_mv)),
                   ("H17", str(math.floor(h.discharged_wh / 10))),
                   ("H18", str(math.floor(h.charged_wh / 10)))]
        return fields


class SolarChargerSim:
    """A SmartSolar MPPT: two checksummed blocks per reading, async HEX messages now and then."""

    def __init__(
        self,
        serial: str = "HQ2245SIM02",
        pid: int = 0xA060,
        *,
        day_length_s: float = 600.0,
        capacity_ah: float = 200.0,
        start_soc: float = 0.85,
        pv_peak_w: float = 300.0,
        hex_every: int = 7,
        seed: int = 1,
        profile: LoadProfile | None = None,
    ) -> None:
        check_field("SER#", serial)
        self.serial, self.pid, self.product_name = serial, pid, product_name(pid)
        self.hex_every = hex_every  # readings between async HEX messages; 0 for none
        self.system = DcSystem(capacity_ah=capacity_ah, day_length_s=day_length_s,
                               start_soc=start_soc, pv_peak_w=pv_peak_w, seed=seed,
                               profile=profile)
        # Counters of a charger in service for a few months.
        self.yield_total_wh = 241_350.0  # H19
        self.yield_today_wh = 0.0  # H20
        self.yield_yesterday_wh = 1_120.0  # H22
        self.max_power_today_w = 0  # H21
        self.max_power_yesterday_w = 262  # H23
        self.day_sequence = 41  # HSDS
        self._day: int | None = None
        self._readings = 0

    def counters(self) -> Counters:
        """The total yield, to carry over a restart (services.sim.counters)."""
        return {"H19_yield_total_wh": self.yield_total_wh}

    def restore(self, saved: Counters) -> None:
        """Go on from the saved total yield (if not lower than now)."""
        self.yield_total_wh = restore(self.counters(), saved)["H19_yield_total_wh"]

    def blocks_at(self, t_s: float) -> list[bytes]:
        """The reading at ``t_s``: [PID…OR block, HEX messages (sometimes), ERR…HSDS block]."""
        s = self.system.advance(t_s)
        self._count(s)
        mv = round(s.battery_v * 1000)
        load_ma = round(s.load_a * _LOAD_OUTPUT_SHARE * 1000)
        ppv = round(s.pv_w)
        off = s.state is ChargeState.OFF
        first = encode_block([
            ("PID", f"0x{self.pid:04X}"), ("FW", "161"), ("SER#", self.serial), ("V", str(mv)),
            # Battery current: the charge current minus what the load output draws.
            ("I", str(round(s.charger_a * 1000) - load_ma)), ("VPV", str(round(s.pv_v * 1000))),
            ("PPV", str(ppv)), ("CS", str(int(s.state))), ("MPPT", str(s.tracking)),
            ("OR", "0x00000001" if off else "0x00000000"),  # 0x1: no input power
        ])
        second = encode_block([
            ("ERR", "0"), ("LOAD", "ON"), ("IL", str(load_ma)),
            ("H19", str(math.floor(self.yield_total_wh / 10))),
            ("H20", str(math.floor(self.yield_today_wh / 10))),
            ("H21", str(self.max_power_today_w)),
            ("H22", str(math.floor(self.yield_yesterday_wh / 10))),
            ("H23", str(self.max_power_yesterday_w)), ("HSDS", str(self.day_sequence)),
        ])
        blocks = [first]
        if self.hex_every > 0 and self._readings % self.hex_every == 0:
            # Real SmartSolars announce changed registers right after a checksum byte, with
            # no CRLF, several in a row: readers must skip them without losing the block.
            blocks += [_register(_PANEL_V, round(s.pv_v * 100)),
                       _register(_PANEL_P, round(s.pv_w * 100)),
                       _register(_BATTERY_V, round(s.battery_v * 100))]
        self._readings += 1
        return [*blocks, second]

    def _count(self, s: DcSnapshot) -> None:
        """Yields and maxima; at the first reading of a new day, today becomes yesterday."""
        if self._day is None:
            self._day = s.day
        elif s.day > self._day:
            self.yield_yesterday_wh, self.yield_today_wh = self.yield_today_wh, 0.0
            self.max_power_yesterday_w, self.max_power_today_w = self.max_power_today_w, 0
            self.day_sequence = (self.day_sequence + s.day - self._day) % 365
            self._day = s.day
        energy_wh = s.charger_a * s.battery_v * s.dt_h
        self.yield_today_wh += energy_wh
        self.yield_total_wh += energy_wh
        self.max_power_today_w = max(self.max_power_today_w, round(s.pv_w))


def _register(register: tuple[int, int], value: int) -> bytes:
    """Async HEX message announcing a register: id (LE), flags 0, value (LE)."""
    reg, size = register
    payload = reg.to_bytes(2, "little") + b"\x00" + max(0, value).to_bytes(size, "little")
    return encode_hex(_HEX_ASYNC, payload)
