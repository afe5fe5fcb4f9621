"""A fake 1-Wire sysfs tree, in the kernel's own file formats, and the water heater's probes.

The tree looks like ``/sys/bus/w1/devices`` with w1-gpio and w1_therm loaded::

    ROOT/w1_bus_master1/                 the bus master (a symlink in the real tree)
        w1_master_slaves                 one address a line
        therm_bulk_read                  only with bulk=True (kernels >= 5.9): "0", "1", "-1"
        28-00000a1b2c3d/w1_slave         "<9 bytes> : crc=xx YES|NO" / "<9 bytes> t=NNNNN"
        28-00000a1b2c3d/temperature      m°C, one line
    ROOT/28-00000a1b2c3d -> w1_bus_master1/28-00000a1b2c3d

Scratchpads are real DS18B20 ones (12-bit, with a correct Dallas CRC-8), so what the reader
parses is what a probe sends. Files are replaced by rename: a reader never sees half a file.
The kernel's ~750 ms conversion is not simulated (reads return at once).

``python -m services.sim.onewire --root DIR [--follow HOST:PORT --config FILE]`` keeps two tank
probes (top and bottom of the water heater) up to date until SIGINT/SIGTERM: the tank heats
~1 °C per simulated minute at 3 kW while the heater's relay is on, and cools slowly otherwise.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.sim.follow import RelayFollower
from services.sim.running import start_follower, stop_signals

log = logging.getLogger(__name__)

MASTER = "w1_bus_master1"
Fault = Literal["crc", "reset", "zero", "timing_high", "timing_low", "brownout"]
FAULTS: tuple[Fault, ...] = ("crc", "reset", "zero", "timing_high", "timing_low", "brownout")
_CONFIG_12BIT = 0x7F
TANK_TOP, TANK_BOTTOM = "28-0000075a3f01", "28-0000075a3f02"


def crc8(data: bytes) -> int:
    """Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected, init 0), as the kernel checks it."""
    crc = 0
    for byte in data:
        for bit in range(8):
            mix = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
    return crc


def raw_of(temp_c: float) -> int:
    """The 12-bit register value (1/16 °C steps) of a temperature."""
    return round(temp_c * 16)


def scratchpad(raw: int) -> bytes:
    """A DS18B20's 9-byte scratchpad for a register value: temperature LSB/MSB, TH, TL,
    config (12 bit), reserved 0xFF, count remain, 0x10, CRC."""
    body = (raw & 0xFFFF).to_bytes(2, "little") + bytes([0x4B, 0x46, _CONFIG_12BIT,
                                                         0xFF, 0x0C, 0x10])
    return body + bytes([crc8(body)])


def milli_c(raw: int) -> int:
    """What the kernel prints after ``t=``: raw * 1000 / 16, truncated as C does."""
    return int(raw * 1000 / 16)


def w1_slave_text(pad: bytes, crc_ok: bool | None = None, t_milli: int | None = None) -> str:
    """The two lines the kernel's w1_slave file shows for a scratchpad."""
    hexes = " ".join(f"{b:02x}" for b in pad)
    ok = crc8(pad[:8]) == pad[8] if crc_ok is None else crc_ok
    if t_milli is None:
        t_milli = milli_c(int.from_bytes(pad[:2], "little", signed=True))
    return f"{hexes} : crc={pad[8]:02x} {'YES' if ok else 'NO'}\n{hexes} t={t_milli}\n"


def fault_text(fault: Fault, temp_c: float) -> str:
    """w1_slave as the kernel shows it when the bus or the probe fails in one known way."""
    if fault == "crc":  # a bit flipped on the wire: the CRC byte no longer matches
        pad = bytearray(scratchpad(raw_of(temp_c)))
        pad[0] ^= 0x04
        return w1_slave_text(bytes(pad), crc_ok=False)
    if fault == "reset":  # the power-on value: a probe that reset and never converted
        return w1_slave_text(scratchpad(raw_of(85.0)))
    if fault == "zero":  # all zeros: CRC-8 of zeros is 0, so the kernel says YES
        return w1_slave_text(bytes(9))
    if fault == "timing_high":  # 0x07FF: 127.94 °C, the read slots came too late
        return w1_slave_text(scratchpad(0x07FF))
    if fault == "timing_low":  # -127 °C, the classic "device lost" value
        return w1_slave_text(scratchpad(raw_of(-127.0)))
    # brownout: a good CRC around a wrong conversion (the probe's supply sagged)
    return w1_slave_text(scratchpad(raw_of(temp_c + 40.0)))


@dataclass
class FakeProbe:
    """One probe of the fake tree: its temperature and a fault, if any."""

    address: str
    temp_c: float
    fault: Fault | None = None


def _write(path: Path, text: str) -> None:
    """Replace a file whole (a reader never sees a half-written one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="ascii")
    tmp.replace(path)


class FakeW1Tree:
    """A sysfs tree in a folder: add, change, fault and remove probes, then ``write()``."""

    def __init__(self, root: Path, *, bulk: bool = True, ghost: bool = True) -> None:
        self.root = root
        self.master = root / MASTER
        self.bulk = bulk
        self.ghost = ghost  # a family-00 ghost, as w1-gpio shows with nothing wired
        self.probes: dict[str, FakeProbe] = {}
        self.master.mkdir(parents=True, exist_ok=True)

    def add(self, address: str, temp_c: float) -> FakeProbe:
        """A probe plugged in (written at the next ``write``)."""
        probe = self.probes[address] = FakeProbe(address, temp_c)
        return probe

    def remove(self, address: str) -> None:
        """A probe unplugged: its folder and link vanish now."""
        self.probes.pop(address, None)
        (self.root / address).unlink(missing_ok=True)
        folder = self.master / address
        if folder.is_dir():
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
        self._write_master()

    def set(self, address: str, temp_c: float, fault: Fault | None = None) -> None:
        """A probe's temperature and fault, written now."""
        probe = self.probes[address]
        probe.temp_c, probe.fault = temp_c, fault
        self._write_probe(probe)

    def set_bulk(self, bulk: bool) -> None:
        """The master offers therm_bulk_read (newer kernels) or not."""
        self.bulk = bulk
        self._write_master()

    def bulk_triggered(self) -> bool:
        """True when a reader wrote "trigger" since the last ``write``."""
        path = self.master / "therm_bulk_read"
        return path.exists() and path.read_text(encoding="ascii").strip() == "trigger"

    def write(self) -> None:
        """Every file, as the kernel would show it now."""
        for probe in self.probes.values():
            self._write_probe(probe)
        self._write_master()

    def _write_probe(self, probe: FakeProbe) -> None:
        folder = self.master / probe.address
        folder.mkdir(exist_ok=True)
        if probe.fault is None:
            raw = raw_of(probe.temp_c)
            text = w1_slave_text(scratchpad(raw))
        else:
            text = fault_text(probe.fault, probe.temp_c)
        _write(folder / "w1_slave", text)
        _write(folder / "temperature", text.rsplit("t=", 1)[1])
        link = self.root / probe.address
        if not link.is_symlink():
            link.symlink_to(Path(MASTER) / probe.address)

    def _write_master(self) -> None:
        slaves = list(self.probes)
        ghost = self.root / "00-400000000000"
        if self.ghost:
            slaves.append(ghost.name)
            ghost.mkdir(exist_ok=True)
        _write(self.master / "w1_master_slaves", "".join(f"{s}\n" for s in slaves))
        bulk = self.master / "therm_bulk_read"
        if self.bulk:
            _write(bulk, "0\n")
        else:
            bulk.unlink(missing_ok=True)


class Tank:
    """The water heater's tank: one mixed temperature, a warmer top and a cooler bottom."""

    HEAT_C_PER_S_AT_3KW = 1.0 / 60.0  # ~1 °C per minute at 3 kW (200 l: 3 kW / 0.23 kWh/°C)
    LOSS_PER_S = 1.0 / (36.0 * 3600.0)  # cools with a 36 h time constant towards ambient
    AMBIENT_C = 18.0
    THERMOSTAT_C = 70.0  # the heater's own thermostat opens here

    def __init__(self, temp_c: float = 45.0) -> None:
        self.temp_c = temp_c

    def step(self, dt_s: float, heater_w: float) -> None:
        """Advance ``dt_s`` simulated seconds with the heater drawing ``heater_w``."""
        if self.temp_c < self.THERMOSTAT_C:
            self.temp_c += heater_w / 3000.0 * self.HEAT_C_PER_S_AT_3KW * dt_s
        self.temp_c -= (self.temp_c - self.AMBIENT_C) * self.LOSS_PER_S * dt_s

    def top_c(self) -> float:
        """Top probe: hot water rises."""
        return self.temp_c + 4.0

    def bottom_c(self) -> float:
        """Bottom probe, near the cold inlet."""
        return self.temp_c - 6.0


def run(tree: FakeW1Tree, tank: Tank, stop: threading.Event, *, speed: float = 1.0,
        period_s: float = 1.0, follower: RelayFollower | None = None,
        heater_relay: str = "water-heater") -> None:
    """Write the tank's temperatures every ``period_s`` until ``stop`` is set."""
    last = time.monotonic()
    while not stop.wait(period_s):
        now = time.monotonic()
        heater_w = 0.0 if follower is None else follower.on_relays().get(heater_relay, 0.0)
        tank.step((now - last) * speed, heater_w)
        last = now
        tree.set(TANK_TOP, tank.top_c())
        tree.set(TANK_BOTTOM, tank.bottom_c())


def build_parser() -> argparse.ArgumentParser:
    """``enerbox sim onewire``'s arguments."""
    p = argparse.ArgumentParser(
        prog="enerbox sim onewire",
        description="A fake /sys/bus/w1/devices tree with two DS18B20 probes at the top and "
        "bottom of the water heater's tank. Stops on SIGINT/SIGTERM.")
    p.add_argument("--root", type=Path, required=True, help="folder to write the tree in")
    p.add_argument("--no-bulk", action="store_true",
                   help="no therm_bulk_read on the master (kernels before 5.9)")
    p.add_argument("--start-c", type=float, default=45.0, help="tank temperature at start")
    p.add_argument("--speed", type=float, default=1.0, help="simulated time multiplier")
    p.add_argument("--follow", metavar="HOST:PORT",
                   help="heat while the heater's relay is on (its power from --config)")
    p.add_argument("--prefix", default="enerbox", help="topic prefix to follow")
    p.add_argument("--config", type=Path, help="with --follow: the relays' powers")
    p.add_argument("--relay", default="water-heater", help="the water heater's relay id")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Keep the tree up to date until SIGINT/SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    follower: RelayFollower | None = None
    created = not Path(args.root).exists()  # ours to remove at the end, like a pty link
    with stop_signals() as wait_for_stop:
        try:
            follower = start_follower(args.follow, args.prefix, args.config)
            tank = Tank(args.start_c)
            tree = FakeW1Tree(args.root, bulk=not args.no_bulk)
            tree.add(TANK_TOP, tank.top_c())
            tree.add(TANK_BOTTOM, tank.bottom_c())
            tree.write()
            stop = threading.Event()
            worker = threading.Thread(target=run, args=(tree, tank, stop), daemon=True,
                                      kwargs={"speed": args.speed, "follower": follower,
                                              "heater_relay": args.relay}, name="onewire-sim")
            worker.start()
            print(f"1-Wire tree at {args.root} ({TANK_TOP} top, {TANK_BOTTOM} bottom"
                  f"{'' if tree.bulk else ', no bulk read'})", flush=True)
            wait_for_stop()
            stop.set()
            worker.join()
        finally:
            if follower is not None:
                follower.stop()
            if created:
                shutil.rmtree(args.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
