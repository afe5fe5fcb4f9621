"""The fake 1-Wire tree's simulator: kernel formats, the tank's physics, following the relay,
and ``python -m services.sim.onewire`` as make run starts it."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from services.sim.follow import RelayFollower
from services.sim.onewire import TANK_BOTTOM, TANK_TOP, FakeW1Tree, Tank, crc8, run
from services.temperature.reader import BusReader
from services.temperature.w1 import parse_w1_slave
from tests.conftest import Broker, wait_until
from tests.sim.test_follow import publisher, relay_state  # noqa: F401 (the fixture)
from tests.teleinfo.test_service import Proc, procs  # noqa: F401 (the fixture)


def test_crc8_is_the_dallas_one() -> None:
    # A DS18B20 scratchpad as the kernel printed it on a Pi: "... 10 57 : crc=57 YES".
    assert crc8(bytes.fromhex("72014b467fff0e10")) == 0x57
    assert crc8(bytes.fromhex("72014b467fff0e1057")) == 0  # a whole scratchpad checks to 0


def test_the_tank_heats_about_a_degree_a_minute_at_3_kw_and_cools_slowly() -> None:
    tank = Tank(45.0)
    tank.step(60.0, 3000.0)
    assert 0.95 < tank.temp_c - 45.0 < 1.0
    tank = Tank(60.0)
    tank.step(3600.0, 0.0)
    assert -1.5 < tank.temp_c - 60.0 < -0.5  # about a degree an hour
    tank = Tank(Tank.THERMOSTAT_C)
    tank.step(600.0, 3000.0)
    assert tank.temp_c < Tank.THERMOSTAT_C  # the thermostat cut the element
    assert Tank(50).top_c() > Tank(50).bottom_c()


def test_the_probes_follow_the_heater_relay(
    tmp_path: Path, broker: Broker, prefix: str, publisher: mqtt.Client,  # noqa: F811
) -> None:
    tree = FakeW1Tree(tmp_path / "w1")
    tank = Tank(45.0)
    tree.add(TANK_TOP, tank.top_c())
    tree.add(TANK_BOTTOM, tank.bottom_c())
    tree.write()

    def top_c() -> float:
        return parse_w1_slave((tree.root / TANK_TOP / "w1_slave").read_text()).milli_c / 1000

    stop = threading.Event()
    with RelayFollower(broker.host, broker.port, prefix, {"water-heater": 3000.0}) as follower:
        assert follower.connected.wait(10)
        worker = threading.Thread(target=run, args=(tree, tank, stop), kwargs={
            "speed": 600.0, "period_s": 0.05, "follower": follower})
        worker.start()
        try:
            wait_until(lambda: top_c() < 48.99, 10, "cooling while the heater is off")
            relay_state(publisher, prefix, "water-heater", state="on")
            wait_until(lambda: top_c() > 51.0, 10, "heating while the relay is on")
        finally:
            stop.set()
            worker.join()
    reader = BusReader(tree.root, 10)
    reader.rescan()
    assert all(o.value_c is not None for o in reader.cycle())


def test_python_m_services_sim_onewire(tmp_path: Path, procs: list[Proc]) -> None:  # noqa: F811
    root = tmp_path / "w1"
    sim = Proc([sys.executable, "-m", "services.sim.onewire", "--root", str(root), "--no-bulk"],
               tmp_path / "sim.log")
    procs.append(sim.start())
    wait_until(lambda: "1-Wire tree at" in sim.log, 15, "the ready line")
    reader = BusReader(root, 10)
    assert reader.rescan() == ([TANK_TOP, TANK_BOTTOM], [])
    assert reader.bulk_masters() == []
    values = {o.address: o.value_c for o in reader.cycle()}
    assert values == {TANK_TOP: 49.0, TANK_BOTTOM: 39.0}
    assert sim.stop(signal.SIGTERM) == 0
