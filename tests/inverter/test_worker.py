"""One bus worker against pymodbus servers on 127.0.0.1: a dead device among live ones, the
night, a scale factor changing between polls, a single-client TCP device."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.inverter.config import BusConfig, InverterConfig
from services.inverter.poller import Outcome
from services.inverter.worker import BusWorker, Device
from services.sim.aurora import AuroraInverterSim
from services.sim.sunspec_image import InverterReading, SunSpecImage, inverter_image
from services.sim.sunspec_server import SunSpecServer
from tests.conftest import wait_until


@dataclass
class Seen:
    device: str
    outcome: Outcome


class Recorder:
    """The worker's Sink, for tests: every outcome, in order."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def outcome(self, bus: BusConfig, device: Device, outcome: Outcome) -> None:
        with self.lock:
            self.seen.append(Seen(device.cfg.id, outcome))

    def diagnostics(self, bus: BusConfig, device: Device, counters: dict[str, Any]) -> None:
        pass

    def of(self, device: str) -> list[Outcome]:
        with self.lock:
            return [s.outcome for s in self.seen if s.device == device]

    def states(self, device: str) -> list[dict[str, Any]]:
        return [p.fields for o in self.of(device) for p in o.publish if not p.group]

    def readings(self, device: str) -> int:
        return sum(1 for f in self.states(device) if f.get("status") != "sleeping")


Start = Callable[..., tuple[BusWorker, Recorder]]


@pytest.fixture
def start() -> Iterator[Start]:
    workers: list[BusWorker] = []

    def make(devices: list[dict[str, Any]], **bus: Any) -> tuple[BusWorker, Recorder]:
        cfg = BusConfig.model_validate({"name": "t", "timeout_s": 0.2, "quiet_gap_s": 0.01,
                                        "devices": devices, **bus})
        sink = Recorder()
        worker = BusWorker(cfg, InverterConfig(diagnostics_interval_s=3600, backoff_max_s=0.4),
                           sink)
        workers.append(worker)
        worker.start()
        return worker, sink

    yield make
    for worker in workers:
        worker.stop()
        assert not worker.is_alive()


def day(w: float, wh: float, **kw: Any) -> SunSpecImage:
    return inverter_image(InverterReading(w=w, wh=wh, phases=1, mppt=((350.0, w),)), **kw)


@contextmanager
def flipping(server: SunSpecServer, unit: int, images: list[SunSpecImage]) -> Iterator[None]:
    """Swap the unit's image among ``images`` as fast as the server takes it."""
    server.set_image(unit, images[0])
    done = threading.Event()

    def flip() -> None:
        i = 0
        while not done.is_set():
            i += 1
            server.set_image(unit, images[i % len(images)])
            done.wait(0.001)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        yield
    finally:
        done.set()
        flipper.join()


def test_one_dead_device_on_an_rtu_bus_never_stalls_the_others_nor_reopens_the_link(
    start: Start,
) -> None:
    with SunSpecServer(rtu=True) as server:
        # no model 160: pymodbus reads socket:// at ~2.5 ms a register whatever the speed
        server.set_image(1, inverter_image(InverterReading(w=1500, wh=1000), serial="A1"))
        server.set_image(2, inverter_image(InverterReading(w=2500, wh=2000), serial="B2"))
        server.set_silent(3)
        worker, sink = start([{"id": "a", "address": 1, "poll_s": 0.1},
                              {"id": "b", "address": 2, "poll_s": 0.1},
                              {"id": "dead", "address": 3, "poll_s": 0.1, "night_poll_s": 0.3}],
                             protocol="modbus-rtu", serial_port=server.url, baudrate=115200,
                             timeout_s=0.5)
        wait_until(lambda: sink.readings("a") >= 3 and sink.readings("b") >= 3
                   and len(sink.of("dead")) >= 2, 30, "both live devices polled 3 times")
        assert worker.reopens == 0 and server.clients() == 1
        assert {f["ac_power_w"] for f in sink.states("a")} == {1500}
        assert {f["serial"] for f in sink.states("b")} == {"B2"}
        # never heard: asleep, available, probed once per try (no 6 timeouts of discovery)
        dead = sink.of("dead")
        assert dead[0].online is True and all(o.publish[0].fields["status"] == "sleeping"
                                              for o in dead)
        probes = server.requests(3)
        assert len(probes) - len(dead) in (0, 1)  # one may be in flight
        assert {(r.address, r.count) for r in probes} == {(40000, 2)}


def test_every_device_failing_reopens_the_link(start: Start) -> None:
    with SunSpecServer() as server:
        server.set_image(1, day(1500, 1000))
        worker, sink = start([{"id": "a", "address": 1, "poll_s": 0.05}],
                             protocol="modbus-tcp", host="127.0.0.1", port=server.port)
        wait_until(lambda: sink.readings("a") >= 2, 10)
        server.set_silent(1)
        wait_until(lambda: worker.reopens >= 1, 10, "a reopen once every device failed")
        server.set_silent(1, False)
        count = sink.readings("a")
        wait_until(lambda: sink.readings("a") > count, 10, "readings again after the reopen")


def test_night_sleeping_one_log_line_then_back_at_sunrise(start: Start) -> None:
    with SunSpecServer() as server:
        server.set_image(1, day(2000, 5000))
        _, sink = start([{"id": "roof", "address": 1, "poll_s": 0.05, "night_poll_s": 0.15}],
                        protocol="modbus-tcp", host="127.0.0.1", port=server.port)
        wait_until(lambda: sink.readings("roof") >= 2, 10)
        server.set_image(1, day(20, 5100))  # dusk
        wait_until(lambda: sink.states("roof")[-1]["ac_power_w"] == 20, 10)
        server.set_silent(1)  # sunset: the inverter switches its Modbus off
        wait_until(lambda: sum(1 for f in sink.states("roof") if f["status"] == "sleeping") >= 5,
                   10, "five night polls")
        asleep = [f for f in sink.states("roof") if f["status"] == "sleeping"]
        assert all(f["ac_power_w"] == 0 and f["ac_energy_wh"] == 5100 for f in asleep)
        logs = [o.log for o in sink.of("roof") if o.log]
        assert len(logs) == 1 and "asleep" in logs[0]
        assert all(o.online is None for o in sink.of("roof")[1:])  # stays available
        server.set_silent(1, False)
        server.set_image(1, day(150, 5101))  # sunrise
        wait_until(lambda: sink.states("roof")[-1].get("status") == "mppt", 10, "awake")
        assert sink.states("roof")[-1]["ac_power_w"] == 150


def test_a_scale_factor_changing_between_polls_never_tears_a_value(start: Start) -> None:
    with SunSpecServer() as server:
        images = [day(1234, 98760, sf={"W_SF": 0, "WH_SF": 0}),
                  day(1234, 98760, sf={"W_SF": 1, "WH_SF": 1}),
                  day(1234, 98760, sf={"W_SF": -1, "WH_SF": 1})]
        with flipping(server, 1, images):
            _, sink = start([{"id": "sf", "address": 1, "poll_s": 0.01}],
                            protocol="modbus-tcp", host="127.0.0.1", port=server.port)
            # Both scale factors read (polls meet every image), however the threads run.
            wait_until(lambda: {f["ac_power_w"] for f in sink.states("sf")} >= {1230, 1234}
                       and sink.readings("sf") >= 30, 20, "30 readings of both scales")
        states = sink.states("sf")
        assert {f["ac_power_w"] for f in states} == {1230, 1234}  # W_SF 1 rounds to tens
        assert {f["ac_energy_wh"] for f in states} == {98760}


def test_a_32_bit_counter_crossing_a_16_bit_carry_never_spikes(start: Start) -> None:
    # WH 0x0001FFFF -> 0x00020000: halves from two reads would give 0x0002FFFF (a 65 kWh
    # spike) or 0x00010000; one request per model reads both halves together.
    with SunSpecServer() as server:
        images = [day(500, 0x0001FFFF, sf={"WH_SF": 0}), day(500, 0x00020000, sf={"WH_SF": 0})]
        with flipping(server, 1, images):
            _, sink = start([{"id": "wh", "address": 1, "poll_s": 0.01}],
                            protocol="modbus-tcp", host="127.0.0.1", port=server.port)
            wait_until(lambda: len({o.publish[0].raw.get("101.WH") for o in sink.of("wh")
                                    if o.publish}) >= 2 and sink.readings("wh") >= 30, 20,
                       "30 readings across the carry")
        raw = {o.publish[0].raw.get("101.WH") for o in sink.of("wh") if o.publish}
        assert raw <= {0x0001FFFF, 0x00020000}
        assert {f["ac_energy_wh"] for f in sink.states("wh")} <= {0x0001FFFF, 0x00020000}


def test_a_single_client_tcp_device_gets_one_connection_for_many_polls(start: Start) -> None:
    with SunSpecServer(max_clients=1) as server:
        server.set_image(1, day(3000, 1))
        server.set_image(2, day(100, 1, serial="M2"))
        worker, sink = start([{"id": "se", "address": 1, "poll_s": 0.02},
                              {"id": "se2", "address": 2, "poll_s": 0.02}],
                             protocol="modbus-tcp", host="127.0.0.1", port=server.port)
        wait_until(lambda: sink.readings("se") >= 20 and sink.readings("se2") >= 20, 20)
        assert worker.transport.link.stats.opens == 1  # type: ignore[attr-defined]
        assert server.clients() == 1 and worker.reopens == 0
        assert worker.devices[0].stats.discoveries == 1


def test_an_aurora_bus_holds_the_identity_read_once(start: Start, tmp_path: Path) -> None:
    with AuroraInverterSim(tmp_path / "aurora", serial="PV0042") as sim:
        sim.night = False
        _, sink = start([{"id": "pvi", "address": 2, "kind": "aurora", "poll_s": 0.05}],
                        protocol="aurora", serial_port=str(sim.link), timeout_s=0.3)
        wait_until(lambda: sink.readings("pvi") >= 3, 20, "three Aurora readings")
        states = sink.states("pvi")
        assert {f["serial"] for f in states} == {"PV0042"}
        assert all(f["ac_energy_wh"] >= 12_345_678 for f in states)
        sim.night = True  # by day, right after producing: a fault, not the night
        wait_until(lambda: any(o.online is False for o in sink.of("pvi")), 20, "offline")


def test_a_failing_device_waits_for_an_answering_one_due_before_its_timeout_ends() -> None:
    # Its timeout would delay the answering device's poll; it goes right after it instead,
    # and never waits longer than one of its own periods.
    now = [100.0]
    bus = BusConfig.model_validate({
        "name": "t", "protocol": "rtu-over-tcp", "host": "127.0.0.1", "timeout_s": 1.0,
        "devices": [{"id": "live", "address": 1, "poll_s": 5},
                    {"id": "dead", "address": 2, "poll_s": 5}]})
    worker = BusWorker(bus, InverterConfig(), Recorder(), clock=lambda: now[0])
    live, dead = worker.devices
    dead.poller.failures = 2
    dead.poller.next_at, live.poller.next_at = 100.0, 100.5
    assert worker._defer(dead)  # live is due at 100.5, before 100 + 1 s timeout + gap
    assert not worker._defer(live)
    live.poller.next_at = 101.5
    assert not worker._defer(dead)  # live due after the timeout would end
    live.poller.next_at, now[0] = 100.5, 105.0
    dead.poller.next_at = 100.0
    assert not worker._defer(dead)  # waited a whole period already: its turn
