"""The simulated PV inverter of `make run`: SunSpec over Modbus TCP on 127.0.0.1.

An inverter at unit 1 (model 1, 101 or 103, 120 and 160 with two MPPTs) whose AC power is the
PV of services.sim.home's day, on the same clock as the Linky and Victron simulators (simulated
time = real seconds since start x speed), and a grid meter (model 203) at unit 2 showing the
house's net power. Energy counters integrate over real seconds, like the Linky's indexes, so
the inverter's WH and the meter's export agree with what the Linky counts. Images are replaced
whole once a second.

``python -m services.sim.inverter --port 1502`` runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.sim.counters import CounterFile, Counters, restore
from services.sim.follow import RelayFollower
from services.sim.home import HOME_DAY_LENGTH_S, HOME_PV_KWC, HOME_START_HOUR, home_profile
from services.sim.profile import LoadProfile
from services.sim.running import start_follower, stop_signals
from services.sim.sunspec_image import InverterReading, SunSpecImage, inverter_image, meter_image
from services.sim.sunspec_server import SunSpecServer

log = logging.getLogger(__name__)

INVERTER_UNIT, METER_UNIT = 1, 2
ST_SLEEPING, ST_MPPT = 2, 4
NightMode = Literal["sleeping", "absent", "silent"]
_DC_EFFICIENCY = 0.965  # AC out / DC in
_MPPT_SHARE = (0.55, 0.45)  # two strings of unequal size, as on many roofs
_MPPT_VMP = (360.0, 300.0)
_START_WH = 4_200_000.0  # a few years of production already on the counter
_START_IMP_WH, _START_EXP_WH = 9_870_000.0, 3_100_000.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Both devices' images at one instant, and what they show."""

    inverter: SunSpecImage
    meter: SunSpecImage
    ac_w: float
    grid_w: float  # > 0 imported, < 0 exported
    asleep: bool


class InverterSim:
    """The inverter and the meter, stepped through time. Pure: time is passed in."""

    def __init__(self, profile: LoadProfile | None = None, *, phases: int = 1,
                 pv_kwc: float = HOME_PV_KWC, night: NightMode = "sleeping",
                 serial: str = "SIMINV0001") -> None:
        if phases not in (1, 3):
            raise ValueError(f"phases must be 1 or 3, not {phases}")
        self.profile = profile if profile is not None else home_profile(pv_kwc=pv_kwc)
        self.phases = phases
        self.night = night
        self.serial = serial
        self.w_rtg = max(1000.0, round(self.profile.pv_peak_va, -2))
        self.wh = _START_WH
        self.imp_wh, self.exp_wh = _START_IMP_WH, _START_EXP_WH
        self._last_t: float | None = None

    def counters(self) -> Counters:
        """The energy counters, to carry over a restart (services.sim.counters)."""
        return {"inverter_wh": self.wh, "meter_import_wh": self.imp_wh,
                "meter_export_wh": self.exp_wh}

    def restore(self, saved: Counters) -> None:
        """Go on from saved counters (none lower than now)."""
        v = restore(self.counters(), saved)
        self.wh, self.imp_wh, self.exp_wh = (v["inverter_wh"], v["meter_import_wh"],
                                             v["meter_export_wh"])

    def step(self, t_s: float, steered_va: float = 0.0) -> Snapshot:
        """The images at ``t_s`` seconds after start; counters integrate since the last step."""
        sample = self.profile.at(t_s, steered_va)
        ac_w = float(round(min(sum(sample.pv_va), self.w_rtg)))
        grid_w = float(round(sample.net_va))
        dt = 0.0 if self._last_t is None else max(0.0, t_s - self._last_t)  # never backwards
        self._last_t = max(t_s, self._last_t or t_s)
        self.wh += ac_w * dt / 3600.0
        self.imp_wh += max(grid_w, 0.0) * dt / 3600.0
        self.exp_wh += max(-grid_w, 0.0) * dt / 3600.0
        asleep = ac_w <= 0.0
        dc_w = ac_w / _DC_EFFICIENCY
        mppt = tuple((v if not asleep else 0.0, round(dc_w * share))
                     for v, share in zip(_MPPT_VMP, _MPPT_SHARE, strict=True))
        reading = InverterReading(
            w=ac_w, wh=self.wh, phases=self.phases, st=ST_SLEEPING if asleep else ST_MPPT,
            tmp_cab=25.0 + 20.0 * ac_w / self.w_rtg, mppt=mppt,
        )
        image = inverter_image(reading, serial=self.serial, w_rtg=self.w_rtg,
                               asleep=asleep and self.night == "absent")
        meter = meter_image(w=grid_w, wh_imp=self.imp_wh, wh_exp=self.exp_wh,
                            phases=self.profile.phases)
        return Snapshot(image, meter, ac_w, grid_w, asleep)


def publish(server: SunSpecServer, snap: Snapshot, night: NightMode) -> None:
    """Put a snapshot on the server (silent at night in ``silent`` mode)."""
    server.set_image(INVERTER_UNIT, snap.inverter)
    server.set_image(METER_UNIT, snap.meter)
    server.set_silent(INVERTER_UNIT, snap.asleep and night == "silent")


def run(server: SunSpecServer, sim: InverterSim, stop: threading.Event, *, speed: float = 1.0,
        follower: RelayFollower | None = None, period_s: float = 1.0,
        state: CounterFile | None = None) -> None:
    """Update the server every ``period_s`` real seconds until ``stop`` is set."""
    start = time.monotonic()
    slot = 0
    while True:
        steered = 0.0 if follower is None else follower.steered_va()
        publish(server, sim.step((time.monotonic() - start) * speed, steered), sim.night)
        if state is not None:
            state.tick(sim.counters)
        # On the next whole period; after a stall the missed ones are skipped, not burst out.
        slot = max(slot + 1, int((time.monotonic() - start) / period_s))
        if stop.wait(max(0.0, start + slot * period_s - time.monotonic())):
            return


def build_parser() -> argparse.ArgumentParser:
    """``enerbox sim inverter``'s arguments."""
    p = argparse.ArgumentParser(
        prog="enerbox sim inverter",
        description="A SunSpec PV inverter (unit 1) and grid meter (unit 2) over Modbus TCP on "
        "127.0.0.1, under the sun of `make run`'s home. Stops on SIGINT/SIGTERM.")
    p.add_argument("--port", type=int, default=1502, help="TCP port (default 1502; 0: any)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--phases", type=int, choices=[1, 3], default=1,
                   help="1: model 101, 3: model 103 (default 1, like the home's Linky)")
    p.add_argument("--rtu", action="store_true",
                   help="RTU framing over TCP (clients open socket://HOST:PORT)")
    p.add_argument("--night", choices=["sleeping", "absent", "silent"], default="sleeping",
                   help="at night: 0 W and St 2 (sleeping), SMA's not-implemented values "
                   "(absent), or no reply at all (silent); default sleeping")
    p.add_argument("--pv-kwc", type=float, default=HOME_PV_KWC,
                   help=f"PV power in kWc (default {HOME_PV_KWC:g}, the home's)")
    p.add_argument("--day-length-s", type=float, default=HOME_DAY_LENGTH_S,
                   help=f"seconds of simulated time a day lasts (default {HOME_DAY_LENGTH_S:g})")
    p.add_argument("--start-hour", type=float, default=HOME_START_HOUR,
                   help=f"simulated time of day at start (default {HOME_START_HOUR:g})")
    p.add_argument("--speed", type=float, default=1.0, help="simulated time multiplier")
    p.add_argument("--follow", metavar="HOST:PORT",
                   help="add the power of the relays that are on (as the Linky simulator does)")
    p.add_argument("--prefix", default="enerbox", help="topic prefix to follow")
    p.add_argument("--config", type=Path,
                   help="with --follow: the relays' powers (automation power_w, else 1000 W)")
    p.add_argument("--state", type=Path, metavar="FILE",
                   help="keep the energy counters in this JSON file across restarts")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    profile = home_profile(pv_kwc=args.pv_kwc, day_length_s=args.day_length_s,
                           start_hour=args.start_hour)
    sim = InverterSim(profile, phases=args.phases, night=args.night)
    state = CounterFile(args.state)
    sim.restore(state.load())
    follower: RelayFollower | None = None
    with stop_signals() as wait_for_stop:
        try:
            follower = start_follower(args.follow, args.prefix, args.config)
            with SunSpecServer(args.port, host=args.host, rtu=args.rtu) as server:
                publish(server, sim.step(0.0), sim.night)  # served from the first request on
                stop = threading.Event()
                worker = threading.Thread(target=run, args=(server, sim, stop),
                                          kwargs={"speed": args.speed, "follower": follower,
                                                  "state": state},
                                          name="inverter-sim", daemon=True)
                worker.start()
                # The one line a test or `make run` waits for.
                print(f"SunSpec inverter on {args.host}:{server.port} (unit {INVERTER_UNIT}, "
                      f"meter unit {METER_UNIT})", flush=True)
                wait_for_stop()
                stop.set()
                worker.join()
                state.save(sim.counters())
        finally:
            if follower is not None:
                follower.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
