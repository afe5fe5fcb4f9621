"""An ABB/Power-One PVI inverter answering the Aurora protocol on a pty.

Answers its own address only (2 by default) and, like a real device, stays silent on a bad
CRC, another address or at night (an unpowered inverter). Power follows the profile's sun
(the home's when given), and the lifetime energy integrates it over simulated time, as the
VE.Direct simulators do. Tests can force ``night`` and a transmission-state ``error``.
"""

from __future__ import annotations

import argparse
import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.inverter import aurora
from services.sim.counters import CounterFile, Counters, restore
from services.sim.home import home_profile
from services.sim.profile import LoadProfile, unit_noise
from services.sim.pty_port import PtyPort
from services.sim.running import stop_signals

log = logging.getLogger(__name__)

# Below this share of the peak the inverter's DC side is unpowered (silent); just above it
# answers "Wait Sun / Grid" at 0 W, as a PVI does at dawn and dusk.
_ASLEEP_SUN = 0.01
_RUN_SUN = 0.03
_FRAME_GAP_S = 0.02  # silence that ends a partial request: a device resyncs on line gaps
_EFFICIENCY = 0.96  # DC to AC
_GRID_V = 232.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inverter at one instant."""

    awake: bool
    running: bool
    ac_w: float
    dc1_w: float
    dc2_w: float
    lifetime_wh: int
    daily_wh: int


class AuroraInverterSim:
    """A PVI-3.0-OUTD on a pty at ``link``; ``start()``, then open ``link`` at 19200 8N1."""

    def __init__(
        self,
        link: Path,
        *,
        address: int = aurora.DEFAULT_ADDRESS,
        profile: LoadProfile | None = None,
        peak_w: float = 3000.0,
        lifetime_wh: int = 12_345_678,
        serial: str = "123456",
        clock: Callable[[], float] | None = None,
        seed: int = 1,
    ) -> None:
        # The home's clock and sun when given, else a clear day starting at noon.
        self.profile = profile or LoadProfile(day_length_s=600.0, start_hour=12.0, peak=None,
                                              seed=seed)
        self.address = address
        self.peak_w = peak_w
        self.serial = serial
        self.night: bool | None = None  # True: silent, False: awake whatever the sun
        self.error: int | None = None  # a transmission state to answer every request with
        self.requests = 0  # requests addressed to us with a good CRC
        self.ignored = 0  # frames dropped: other address, bad CRC, partial
        self.port = PtyPort(Path(link), aurora.BAUDRATE)
        self._start = time.monotonic()
        self._clock = clock or (lambda: time.monotonic() - self._start)
        self._lifetime_wh = float(lifetime_wh)
        self._daily_wh = 0.0
        self._day = 0
        self._last_t: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def link(self) -> Path:
        """The symlink a reader opens."""
        return self.port.link

    def start(self) -> AuroraInverterSim:
        """Answer requests on a thread until ``stop()``."""
        self._thread = threading.Thread(target=self._run, name="aurora-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and remove the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.port.close()

    def __enter__(self) -> AuroraInverterSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counters(self) -> Counters:
        """The lifetime energy, to carry over a restart (services.sim.counters)."""
        with self._lock:
            return {"lifetime_wh": self._lifetime_wh}

    def restore(self, saved: Counters) -> None:
        """Go on from the saved lifetime energy (if not lower than now)."""
        value = restore(self.counters(), saved)["lifetime_wh"]
        with self._lock:
            self._lifetime_wh = value

    def snapshot(self) -> Snapshot:
        """Advance the energy counters to the clock's time and measure."""
        t = self._clock()
        with self._lock:
            sun = self.profile.pv_shape(self.profile.hour_at(t))
            awake = sun > _ASLEEP_SUN if self.night is None else not self.night
            running = awake and sun > _RUN_SUN
            noise = 1.0 + 0.02 * unit_noise(self.profile.seed, math.floor(t), 7)
            ac_w = self.peak_w * sun * noise if running else 0.0
            if self._last_t is not None and t > self._last_t:
                # Simulated hours: a day of energy in one day_length_s, as the Victron sims.
                wh = ac_w * (t - self._last_t) * 24.0 / self.profile.day_length_s
                self._lifetime_wh += wh
                self._daily_wh += wh
            day = self.profile.day_at(t)
            if day != self._day:
                self._day, self._daily_wh = day, 0.0
            self._last_t = t if self._last_t is None else max(t, self._last_t)
            dc_w = ac_w / _EFFICIENCY
            # Two strings, the second a little shaded.
            return Snapshot(awake, running, ac_w, dc_w * 0.55, dc_w * 0.45,
                            int(self._lifetime_wh), int(self._daily_wh))

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            if not self.port.plugged:
                self._stop.wait(0.05)
                continue
            chunk = self.port.read(64, _FRAME_GAP_S)
            if not chunk:
                if buf:
                    self.ignored += 1
                buf = b""  # a gap ends a frame: resync on the next request
                continue
            buf += chunk
            while len(buf) >= aurora.REQUEST_LEN:
                frame, buf = buf[: aurora.REQUEST_LEN], buf[aurora.REQUEST_LEN :]
                answer = self.answer(frame)
                if answer is None:
                    self.ignored += 1
                else:
                    self.port.write_paced(answer, self._stop)

    def answer(self, frame: bytes) -> bytes | None:
        """The reply to one 10-byte request, or None for silence."""
        body, crc = frame[:8], int.from_bytes(frame[8:10], "little")
        if len(frame) != aurora.REQUEST_LEN or crc != aurora.crc16_x25(body):
            return None
        if body[0] != self.address:
            return None
        s = self.snapshot()
        if not s.awake:
            return None
        self.requests += 1
        if self.error is not None:
            return aurora.encode_reply(bytes([self.error, self._global(s)]))
        return aurora.encode_reply(self._payload(body[1], body[2], s))

    @staticmethod
    def _global(s: Snapshot) -> int:
        return 6 if s.running else 1  # Run / Wait Sun-Grid

    def _payload(self, command: int, arg: int, s: Snapshot) -> bytes:
        g = self._global(s)
        if command == aurora.STATE:
            inverter, dcdc, alarm = (2, 2, 0) if s.running else (0, 0, 1)
            return bytes([0, g, inverter, dcdc, dcdc, alarm])
        if command == aurora.ENERGY:
            wh = {aurora.ENERGY_LIFETIME: s.lifetime_wh, aurora.ENERGY_DAILY: s.daily_wh}
            # Other periods are not simulated: "variable does not exist".
            return bytes([0, g]) + wh[arg].to_bytes(4, "big") if arg in wh else bytes([52, g])
        if command == aurora.MEASURE:
            value = self._measure(arg, s)
            return bytes([52, g]) if value is None else bytes([0, g]) + struct.pack(">f", value)
        identity = {
            aurora.SERIAL_NUMBER: self.serial.encode("ascii")[:6].ljust(6),
            aurora.PART_NUMBER: b"-3G96-",
            aurora.VERSION: bytes([0, g]) + b"1ENN",  # PVI-3.0-OUTD, VDE0126, no trafo, PV
            aurora.FIRMWARE: bytes([0, g]) + b"C025",
        }
        return identity.get(command, bytes([51, g]))  # 51: not implemented (68 among them)

    def _measure(self, kind: int, s: Snapshot) -> float | None:
        v1, v2 = (330.0, 310.0) if s.running else (180.0, 170.0)
        values = {
            aurora.GRID_VOLTAGE: _GRID_V,
            aurora.GRID_CURRENT: s.ac_w / _GRID_V,
            aurora.GRID_POWER: s.ac_w,
            aurora.FREQUENCY: 50.0,
            aurora.INPUT1_POWER: s.dc1_w,
            aurora.INPUT2_POWER: s.dc2_w,
            aurora.INVERTER_TEMPERATURE: 25.0 + s.ac_w / 150.0,
            aurora.BOOSTER_TEMPERATURE: 24.0 + s.ac_w / 160.0,
            aurora.INPUT1_VOLTAGE: v1,
            aurora.INPUT1_CURRENT: s.dc1_w / v1,
            aurora.INPUT2_VOLTAGE: v2,
            aurora.INPUT2_CURRENT: s.dc2_w / v2,
        }
        return values.get(kind)


def main(argv: Sequence[str] | None = None) -> int:
    """``enerbox sim aurora``: serve until SIGINT/SIGTERM; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="enerbox sim aurora",
        description="An ABB/Power-One PVI inverter speaking Aurora on a pseudo-terminal "
        "(19200 8N1), under the simulated home's sun.")
    parser.add_argument("--link", type=Path, default=Path("run/sim/aurora0"),
                        help="symlink to create, pointing at the pty (default ./run/sim/aurora0)")
    parser.add_argument("--address", type=int, default=aurora.DEFAULT_ADDRESS,
                        help=f"inverter address (default {aurora.DEFAULT_ADDRESS})")
    parser.add_argument("--peak-w", type=float, default=3000.0, help="AC power at full sun")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="keep the lifetime energy in this JSON file across restarts "
                        "(saved at stop)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    state = CounterFile(args.state)
    with stop_signals() as wait_for_stop, AuroraInverterSim(
            args.link, address=args.address, profile=home_profile(), peak_w=args.peak_w) as sim:
        sim.restore(state.load())
        print(f"Aurora inverter (address {args.address}) on {sim.link.absolute()}", flush=True)
        wait_for_stop()
    state.save(sim.counters())
    return 0
