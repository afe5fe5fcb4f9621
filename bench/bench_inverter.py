"""The inverter service's figures: a three-device RS485 bus with one dead device (the others'
poll period), SunSpec discovery time over TCP, and the service's memory.

The bus is Modbus RTU framing through a pymodbus server on 127.0.0.1 (RTU over TCP, as an
RS485 gateway gives it), so the quiet gap after a timeout applies as on a real RS485 bus.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from typing import Any

from bench.net import free_port
from bench.rss import measure
from services.inverter.config import BusConfig, InverterConfig
from services.inverter.poller import Outcome
from services.inverter.worker import BusWorker, Device, ModbusTransport
from services.sim.sunspec_image import InverterReading, inverter_image, meter_image
from services.sim.sunspec_server import SunSpecServer

POLL_S = 2.0  # shorter than the design's 5 s so the run is short; the gap matters, not it
RUN_S = 24.0
TIMEOUT_S = 1.0  # the service's default per-request timeout


class _Times:
    """The worker's sink: when each device's reading came."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def outcome(self, _bus: BusConfig, device: Device, outcome: Outcome) -> None:
        if any(p.fields.get("status") not in (None, "sleeping") for p in outcome.publish):
            with self.lock:
                self.at.setdefault(device.cfg.id, []).append(time.monotonic())

    def diagnostics(self, _bus: BusConfig, _device: Device, _counters: dict[str, Any]) -> None:
        pass


def _periods(dead: bool) -> dict[str, list[float]]:
    with SunSpecServer(rtu=True) as server:
        for unit, serial in ((1, "A"), (2, "B"), (3, "C")):
            reading = InverterReading(w=1000.0 * unit, wh=5000.0 * unit, phases=1)
            server.set_image(unit, inverter_image(reading, serial=serial))
        if dead:
            server.set_silent(3)
        devices = [{"id": f"d{u}", "address": u, "poll_s": POLL_S,
                    "night_poll_s": POLL_S}  # the dead one tried every cycle: the worst case
                   for u in (1, 2, 3)]
        bus = BusConfig.model_validate({"name": "rs485", "protocol": "rtu-over-tcp",
                                        "host": "127.0.0.1", "port": server.port,
                                        "timeout_s": TIMEOUT_S, "devices": devices})
        times = _Times()
        worker = BusWorker(bus, InverterConfig(diagnostics_interval_s=3600), times)
        worker.start()
        time.sleep(RUN_S)  # a measurement window, not a synchronisation
        worker.stop()
        reopens = worker.reopens
    out = {d: [b - a for a, b in itertools.pairwise(ts[1:])]  # ts[0]: after discovery
           for d, ts in times.at.items()}
    out["reopens"] = [float(reopens)]
    return out


def _bus() -> None:
    print(f"Inverter bus: 3 devices, RTU over TCP, poll {POLL_S:g} s, timeout {TIMEOUT_S:g} s, "
          f"{RUN_S:g} s:")
    for dead in (False, True):
        got = _periods(dead)
        reopens = int(got.pop("reopens")[0])
        for device in ("d1", "d2"):
            p = got.get(device, [])
            if not p:
                print(f"  {device}: no readings")
                continue
            worst = max(abs(x - POLL_S) for x in p) / POLL_S * 100
            print(f"  {'one dead' if dead else 'all live'}: {device} period mean "
                  f"{statistics.mean(p):.3f} s, worst {worst:.1f} % off {POLL_S:g} s "
                  f"({len(p)} periods)  aim: within 10 %")
        print(f"  {'one dead' if dead else 'all live'}: link reopened {reopens} times "
              f"(aim: 0 while one answers)")


def _discovery() -> None:
    print("SunSpec discovery over Modbus TCP (pymodbus server on 127.0.0.1):")
    for base, label in ((40000, "marker at 40000"), (50000, "marker at 50000"),
                        (40001, "marker at 40001 (SMA-style offset)")):
        with SunSpecServer() as server:
            reading = InverterReading(w=3000.0, wh=1e6, phases=3,
                                      mppt=((350.0, 1600.0), (330.0, 1500.0)))
            server.set_image(1, inverter_image(reading, base=base))
            server.set_image(2, meter_image(w=-800.0, wh_imp=1e6, wh_exp=2e6))
            bus = BusConfig.model_validate({
                "name": "tcp", "protocol": "modbus-tcp", "host": "127.0.0.1",
                "port": server.port, "devices": [{"id": "inv", "address": 1}]})
            transport = ModbusTransport(bus, threading.Event())
            worker = BusWorker(bus, InverterConfig(), _Times())  # for its Device objects
            device = worker.devices[0]
            transport.open()
            try:
                t0 = time.perf_counter()
                transport.poll(device)  # discovers, then reads every model
                first = time.perf_counter() - t0
                polls = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    transport.poll(device)
                    polls.append(time.perf_counter() - t0)
            finally:
                transport.close()
        print(f"  {label}: discovery + first poll {first * 1000:.1f} ms, later polls "
              f"median {statistics.median(polls) * 1000:.1f} ms  aim: discovery < 10 s")


def main() -> None:
    """Print the inverter figures."""
    _bus()
    _discovery()
    print("Inverter service memory:")
    port = free_port()
    bus = {"name": "sim", "protocol": "modbus-tcp", "host": "127.0.0.1", "port": port,
           "devices": [{"id": "inverter", "address": 1, "kind": "sunspec"},
                       {"id": "meter", "address": 2, "kind": "sunspec"}]}
    measure("inverter, a SunSpec inverter and a meter over Modbus TCP", ["inverter"],
            [["inverter", "--port", str(port)]], {"inverter": {"buses": [bus]}}, seconds=15.0)


if __name__ == "__main__":
    main()
