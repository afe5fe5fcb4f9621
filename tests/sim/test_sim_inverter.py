"""The simulated inverter of `make run`: the home's sun, counters that only go up, nights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from services.sim.home import home_profile
from services.sim.inverter import InverterSim, publish
from services.sim.sunspec_image import SunSpecImage
from services.sim.sunspec_server import SunSpecServer
from tests.conftest import ROOT

# Register addresses in the simulator's images (base 40000, model 1 of 66, then 101/103).
INV = 40000 + 2 + 68  # model 101/103's ID
W, WH, ST = INV + 14, INV + 24, INV + 38
METER = 40000 + 2 + 68  # model 203's ID
METER_W = METER + 2 + 16
DAY_S = 1200.0  # home_profile's day; it starts at 11:30


def _int16(v: int) -> int:
    return v - 0x10000 if v >= 0x8000 else v


def _w(img: SunSpecImage) -> int:
    return _int16(img.at(W))


def _wh(img: SunSpecImage) -> int:
    return img.at(WH) << 16 | img.at(WH + 1)


def _at_hour(hour: float) -> float:
    """Seconds after start at which the home's clock shows ``hour`` (on day 0 or 1)."""
    return ((hour - 11.5) % 24.0) / 24.0 * DAY_S


def test_power_follows_the_home_pv() -> None:
    sim = InverterSim()
    profile = home_profile()
    assert sim.step(0.0).inverter.at(INV) == 101  # the home is single phase
    for hour in (8.0, 11.5, 13.0, 14.55, 16.2, 19.5):
        t = _at_hour(hour)
        snap = sim.step(t)
        pv = sum(profile.at(t).pv_va)
        assert snap.ac_w == round(pv) > 0, hour
        assert _w(snap.inverter) == snap.ac_w and snap.inverter.at(ST) == 4
        # The meter shows the house's net power (no relay followed here).
        assert _int16(snap.meter.at(METER_W)) == snap.grid_w == round(profile.at(t).net_va)
    noon, cloud = sim.step(_at_hour(14.4)).ac_w, sim.step(_at_hour(14.55)).ac_w
    assert cloud < 0.6 * noon  # the 14:30 cloud passes over the inverter as over the Linky


def test_energy_counters_only_go_up_and_integrate_power() -> None:
    sim = InverterSim()
    first = sim.step(0.0)
    start_wh = _wh(first.inverter)
    whs = [start_wh]
    expected = float(start_wh)
    last_w = first.ac_w
    for i in range(1, 1201):  # a whole simulated day, one step a second
        snap = sim.step(float(i))
        expected += snap.ac_w / 3600.0
        whs.append(_wh(snap.inverter))
        last_w = snap.ac_w
    assert whs == sorted(whs) and whs[-1] > whs[0]
    assert abs(whs[-1] - expected) <= 1 + last_w / 3600.0
    before = _wh(sim.step(1200.0).inverter)
    assert _wh(sim.step(1100.0).inverter) == before  # a step back in time adds nothing


@pytest.mark.parametrize("three_phase", [False, True])
def test_night_is_sleeping_at_zero_watts(three_phase: bool) -> None:
    sim = InverterSim(phases=3 if three_phase else 1)
    day = sim.step(_at_hour(12.0))
    night = sim.step(_at_hour(23.0))
    assert night.asleep and night.ac_w == 0
    assert night.inverter.at(INV) == (103 if three_phase else 101)
    assert _w(night.inverter) == 0 and night.inverter.at(ST) == 2
    assert _wh(night.inverter) >= _wh(day.inverter) > 0  # the counter still reads
    assert night.grid_w > 0  # the house imports at night


def test_night_modes_absent_and_silent() -> None:
    absent = InverterSim(night="absent").step(_at_hour(23.0))
    assert absent.inverter.at(W) == 0x8000 and absent.inverter.at(ST) == 0xFFFF
    assert _wh(absent.inverter) > 0
    sim = InverterSim(night="silent")
    with SunSpecServer() as server:
        client = ModbusTcpClient("127.0.0.1", port=server.port, timeout=0.3, retries=0)
        try:
            assert client.connect()  # type: ignore[no-untyped-call]
            publish(server, sim.step(_at_hour(23.0)), sim.night)
            with pytest.raises(ModbusIOException):
                client.read_holding_registers(40000, count=2, device_id=1)
            meter = client.read_holding_registers(40000, count=2, device_id=2)
            assert meter.registers == [0x5375, 0x6E53]
            publish(server, sim.step(_at_hour(9.0) + DAY_S), sim.night)  # sunrise: back
            assert client.read_holding_registers(W, count=1, device_id=1).registers[0] > 0
        finally:
            client.close()  # type: ignore[no-untyped-call]


def test_main_serves_until_sigterm() -> None:
    """`python -m services.sim.inverter --port 0`: the port on its first line, SIGTERM ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.sim.inverter", "--port", "0", "--speed", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # waits on the process, which prints once listening
        assert line.startswith("SunSpec inverter on 127.0.0.1:"), line
        port = int(line.split()[3].rsplit(":", 1)[1])
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            assert client.connect()  # type: ignore[no-untyped-call]
            for unit, model in ((1, 1), (2, 1)):
                r = client.read_holding_registers(40000, count=3, device_id=unit)
                assert r.registers == [0x5375, 0x6E53, model]
            r = client.read_holding_registers(INV, count=40, device_id=1)
            assert r.registers[0] == 101 and r.registers[14] > 0  # 11:30: producing
        finally:
            client.close()  # type: ignore[no-untyped-call]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
