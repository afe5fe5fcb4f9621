"""Huawei SUN2000 (own register map, not SunSpec): decoding, the sim image, the worker over
TCP against a pymodbus server serving that image, and the config.

The map is Huawei's public documentation (no captured image exists): these tests check the
decoder against images built from the same documented addresses and gains, with values
written out by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from services.inverter import huawei as hw
from services.inverter.config import BusConfig, InverterConfig
from services.inverter.poller import Outcome
from services.inverter.worker import BusWorker, Device
from services.sim.huawei_image import BASE, HuaweiReading, huawei_registers, night
from services.sim.sunspec_image import InverterReading, inverter_image
from services.sim.sunspec_server import SunSpecServer
from tests.conftest import wait_until


def blocks(reading: HuaweiReading) -> tuple[list[int], list[int]]:
    regs = huawei_registers(reading)
    ident = hw.IDENTITY_BASE - BASE
    run = hw.RUNNING_BASE - BASE
    return (list(regs[ident:ident + hw.IDENTITY_COUNT]),
            list(regs[run:run + hw.RUNNING_COUNT]))


def decode(reading: HuaweiReading) -> tuple[dict[str, Any], dict[str, Any]]:
    ident, run = blocks(reading)
    out = hw.decode_running(run, hw.decode_identity(ident))
    assert out.kind == "inverter"
    return out.fields, out.raw


# -- decoding -------------------------------------------------------------------------------


def test_day_single_phase_two_strings() -> None:
    f, raw = decode(HuaweiReading())
    assert f == {
        "manufacturer": "Huawei", "model": "SUN2000-5KTL-L1", "serial": "HV2150012345",
        "status": "mppt", "ac_power_w": 3300, "ac_energy_wh": 12345670,
        "ac_voltage_v": [230.1], "ac_current_a": [14.3], "ac_frequency_hz": 50.01,
        "temperature_c": 41.5, "dc_power_w": 3400,
        "mppt": [{"dc_voltage_v": 350.0, "dc_current_a": 5.0, "dc_power_w": 1750.0},
                 {"dc_voltage_v": 340.0, "dc_current_a": 4.9, "dc_power_w": 1666.0}],
    }
    assert raw["device_status"] == 0x0200 and raw["device_status_name"] == "On-grid"
    assert raw["state_1"] == ["grid-connected", "grid-connected normally"]
    assert raw["daily_energy_wh"] == 18420 and raw["pv_strings"] == 2 and raw["model_id"] == 348


def test_three_phase_four_strings_negative_temperature() -> None:
    four = ((600.0, 8.5), (598.2, 8.4), (410.0, 0.0), (0.0, 0.0))
    f, _raw = decode(HuaweiReading(model="SUN2000-10KTL-M1", strings=four,
                                   phase_v=(231.0, 229.5, 232.4), phase_a=(14.2, 14.1, 14.3),
                                   temperature_c=-3.2, active_power_w=9800))
    assert f["ac_voltage_v"] == [231.0, 229.5, 232.4]
    assert f["ac_current_a"] == [14.2, 14.1, 14.3]
    assert f["temperature_c"] == -3.2 and f["ac_power_w"] == 9800
    assert [m["dc_voltage_v"] for m in f["mppt"]] == [600.0, 598.2, 410.0, 0.0]
    assert f["mppt"][1] == {"dc_voltage_v": 598.2, "dc_current_a": 8.4, "dc_power_w": 5024.9}
    assert "dc_voltage_v" not in f  # several strings: per-string values only


def test_only_the_reported_strings_are_read() -> None:
    f, _ = decode(HuaweiReading(strings=((350.0, 5.0), (340.0, 4.9)), pv_strings=1))
    assert f["mppt"] == [{"dc_voltage_v": 350.0, "dc_current_a": 5.0, "dc_power_w": 1750.0}]
    assert f["dc_voltage_v"] == 350.0 and f["dc_current_a"] == 5.0


def test_night_standby_no_irradiation_is_sleeping_with_the_counter() -> None:
    f, raw = decode(night())
    assert f["status"] == "sleeping" and f["ac_power_w"] == 0
    assert f["ac_energy_wh"] == 12345670
    assert raw["device_status_name"] == "Standby: no irradiation"


@pytest.mark.parametrize(("code", "status"), [
    (0x0300, "fault"), (0x0301, "off"), (0x0201, "throttled"), (0x0202, "throttled"),
    (0x0100, "starting"), (0x0001, "starting"), (0x0002, "sleeping"), (0xA000, "sleeping"),
    (0x0200, "mppt"),
])
def test_device_status(code: int, status: str) -> None:
    f, raw = decode(HuaweiReading(status=code, fault_code=2032 if status == "fault" else 0))
    assert f["status"] == status
    assert raw.get("fault_code") == (2032 if status == "fault" else None)


def test_unknown_status_is_absent_not_guessed() -> None:
    f, raw = decode(HuaweiReading(status=0x0BEE))
    assert "status" not in f and raw["device_status_name"] == "unknown 0x0BEE"


def test_not_available_patterns_are_absent() -> None:
    f, raw = decode(HuaweiReading(
        strings=((None, 5.0), (340.0, None)), input_power_w=None, phase_v=(None,),
        phase_a=(None,), active_power_w=None, frequency_hz=None, temperature_c=None,
        status=None, state_1=None, energy_kwh=None, daily_kwh=None))
    assert f == {"manufacturer": "Huawei", "model": "SUN2000-5KTL-L1", "serial": "HV2150012345"}
    assert "device_status" not in raw and "daily_energy_wh" not in raw
    _ident, run = blocks(HuaweiReading(active_power_w=None, temperature_c=None))
    assert run[hw.ACTIVE_POWER - hw.RUNNING_BASE:][:2] == [0x7FFF, 0xFFFF]  # I32 pattern
    assert run[hw.INTERNAL_TEMPERATURE - hw.RUNNING_BASE] == 0x7FFF  # I16 pattern


def test_energy_zero_is_absent_and_negative_power_decodes() -> None:
    f, _ = decode(HuaweiReading(energy_kwh=0, active_power_w=-12))
    assert "ac_energy_wh" not in f and f["ac_power_w"] == -12


def test_identity_errors() -> None:
    with pytest.raises(hw.HuaweiError):
        hw.decode_identity([0] * hw.IDENTITY_COUNT)  # no name, no serial: not this map
    with pytest.raises(hw.HuaweiError):
        hw.decode_identity([0x4142] * 10)
    with pytest.raises(hw.HuaweiError):
        hw.decode_running([0] * 10, None)
    ident, _ = blocks(HuaweiReading(pv_strings=0xFFFF))
    assert hw.decode_identity(ident).strings == 0  # not available: no strings read


def test_the_blocks_fit_one_request_each() -> None:
    assert hw.IDENTITY_COUNT <= 125 and hw.RUNNING_COUNT <= 125
    assert hw.RUNNING_BASE + hw.RUNNING_COUNT == hw.DAILY_YIELD + 2
    assert hw.PV1_VOLTAGE + 2 * hw.MAX_STRINGS <= hw.INPUT_POWER


# -- the worker over TCP ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, Outcome]] = []

    def outcome(self, bus: BusConfig, device: Device, outcome: Outcome) -> None:
        with self.lock:
            self.seen.append((device.cfg.id, outcome))

    def diagnostics(self, bus: BusConfig, device: Device, counters: dict[str, Any]) -> None:
        pass

    def states(self, device: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p.fields for d, o in self.seen if d == device for p in o.publish]


@pytest.fixture
def server() -> Iterator[SunSpecServer]:
    with SunSpecServer() as s:
        yield s


@pytest.fixture
def workers() -> Iterator[list[BusWorker]]:
    started: list[BusWorker] = []
    yield started
    for worker in started:
        worker.stop()
        assert not worker.is_alive()


def start(workers: list[BusWorker], server: SunSpecServer, devices: list[dict[str, Any]],
          **bus: Any) -> Recorder:
    cfg = BusConfig.model_validate({"name": "t", "protocol": "modbus-tcp", "host": server.host,
                                    "port": server.port, "timeout_s": 0.3, "devices": devices,
                                    **bus})
    sink = Recorder()
    worker = BusWorker(cfg, InverterConfig(diagnostics_interval_s=3600), sink)
    workers.append(worker)
    worker.start()
    return sink


def test_worker_polls_huawei_and_sunspec_on_one_bus_then_night(
        server: SunSpecServer, workers: list[BusWorker]) -> None:
    server.set_image(1, huawei_registers(HuaweiReading()), base=BASE)
    server.set_image(2, inverter_image(InverterReading(w=1500.0, wh=5e6, phases=1)))
    sink = start(workers, server, [{"id": "sun2000", "address": 1, "kind": "huawei",
                                    "poll_s": 0.05, "night_poll_s": 0.05},
                                   {"id": "sma", "address": 2, "poll_s": 0.05}])
    wait_until(lambda: len(sink.states("sun2000")) >= 2 and sink.states("sma"),
               timeout=5, what="both devices read")
    first = sink.states("sun2000")[0]
    assert first["status"] == "mppt" and first["ac_power_w"] == 3300
    assert first["serial"] == "HV2150012345" and first["ac_energy_wh"] == 12345670
    assert sink.states("sma")[0]["ac_power_w"] == 1500.0
    # identity once, then only the running block, each in one request
    reads = [(r.address, r.count) for r in server.requests(1)]
    assert reads[0] == (hw.IDENTITY_BASE, hw.IDENTITY_COUNT)
    assert set(reads[1:]) == {(hw.RUNNING_BASE, hw.RUNNING_COUNT)}
    # the SunSpec device on the same bus is read its own way: no Huawei block asked of it
    assert not any(30000 <= r.address < 33000 for r in server.requests(2))
    # sunset: the dongle keeps answering, standby no irradiation, 0 W
    server.set_image(1, huawei_registers(night()), base=BASE)
    wait_until(lambda: sink.states("sun2000")[-1].get("status") == "sleeping",
               timeout=5, what="sleeping at night")
    last = sink.states("sun2000")[-1]
    assert last["ac_power_w"] == 0 and last["ac_energy_wh"] == 12345670
    assert last["serial"] == "HV2150012345"
    assert not any(o.online is False for d, o in sink.seen if d == "sun2000")  # not offline


def test_connect_delay_is_honoured(server: SunSpecServer, workers: list[BusWorker]) -> None:
    server.set_image(1, huawei_registers(HuaweiReading()), base=BASE)
    began = time.monotonic()
    start(workers, server, [{"id": "sun2000", "address": 1, "kind": "huawei"}],
          connect_delay_s=0.4)
    wait_until(lambda: server.requests(1), timeout=5, what="a first request")
    assert time.monotonic() - began >= 0.4


def test_not_a_huawei_device_is_never_asleep(server: SunSpecServer,
                                             workers: list[BusWorker]) -> None:
    # a SunSpec device configured as huawei: exception 2 at 30000, it answered
    server.set_image(1, inverter_image(InverterReading(w=1500.0, wh=5e6, phases=1)))
    sink = start(workers, server, [{"id": "x", "address": 1, "kind": "huawei", "poll_s": 0.02}])
    wait_until(lambda: any(o.online is False for _d, o in sink.seen), timeout=5,
               what="offline")
    assert not sink.states("x")


# -- config ---------------------------------------------------------------------------------


def bus(**over: Any) -> dict[str, Any]:
    return {"name": "roof", "protocol": "modbus-tcp", "host": "192.168.1.30", "port": 6607,
            "connect_delay_s": 2, "timeout_s": 3,
            "devices": [{"id": "sun2000", "address": 1, "kind": "huawei"}], **over}


def test_config_accepts_huawei_on_modbus_buses() -> None:
    cfg = InverterConfig.model_validate({"buses": [
        bus(), bus(name="rtu", protocol="modbus-rtu", host=None, port=502,
                   serial_port="/dev/ttyUSB0", devices=[{"id": "h2", "address": 1,
                                                         "kind": "huawei"}])]})
    assert cfg.buses[0].devices[0].kind == "huawei" and cfg.buses[0].port == 6607


def test_config_refuses_huawei_on_an_aurora_bus() -> None:
    with pytest.raises(ValidationError, match="kind must be aurora"):
        InverterConfig.model_validate({"buses": [bus(
            protocol="aurora", host=None, serial_port="/dev/ttyUSB0")]})
    with pytest.raises(ValidationError, match="kind"):
        InverterConfig.model_validate({"buses": [bus(devices=[
            {"id": "x", "address": 1, "kind": "fronius"}])]})
