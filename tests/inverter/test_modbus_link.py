"""The Modbus link against a pymodbus server on 127.0.0.1, and the pymodbus keywords enerbox
relies on (a pymodbus upgrade that renames one fails here, not on a Pi)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from services.inverter.config import BusConfig
from services.inverter.modbus_link import (
    ModbusConnectError,
    ModbusExceptionError,
    ModbusLink,
    ModbusTimeoutError,
)
from services.sim.sunspec_image import InverterReading, inverter_image
from services.sim.sunspec_server import SunSpecServer
from tests.conftest import free_port


def test_the_pymodbus_keywords_enerbox_calls_exist() -> None:
    tcp = inspect.signature(ModbusTcpClient.__init__).parameters
    serial = inspect.signature(ModbusSerialClient.__init__).parameters
    read = inspect.signature(ModbusTcpClient.read_holding_registers).parameters
    assert {"port", "timeout", "retries", "framer"} <= set(tcp)
    assert {"baudrate", "timeout", "retries", "framer"} <= set(serial)
    assert {"count", "device_id"} <= set(read)
    assert "max_count" in inspect.signature(ModbusTcpClient.set_max_no_responses).parameters


def bus(**over: Any) -> BusConfig:
    fields: dict[str, Any] = {"name": "t", "protocol": "modbus-tcp", "host": "127.0.0.1",
                              "timeout_s": 0.3, "devices": [{"id": "inv", "address": 1}]}
    return BusConfig.model_validate({**fields, **over})


@pytest.fixture
def server() -> Iterator[SunSpecServer]:
    with SunSpecServer() as s:
        s.set_image(1, inverter_image(InverterReading(w=1500, wh=12345)))
        yield s


def test_reads_in_one_request_and_measures_latency(server: SunSpecServer) -> None:
    link = ModbusLink(bus(port=server.port))
    link.open()
    try:
        assert list(link.reader(1)(40000, 2)) == [0x5375, 0x6E53]
        assert link.stats.last_latency_ms is not None and link.stats.last_latency_ms >= 0
        assert len(link.read(1, 40002, 68)) == 68
        assert [(r.address, r.count) for r in server.requests(1)] == [(40000, 2), (40002, 68)]
    finally:
        link.close()


def test_errors_are_mapped_and_the_connection_survives_them(server: SunSpecServer) -> None:
    link = ModbusLink(bus(port=server.port))
    link.open()
    try:
        with pytest.raises(ModbusExceptionError) as refused:
            link.read(1, 100, 2)  # outside the image: illegal address
        assert refused.value.code == 2
        server.set_silent(1)
        with pytest.raises(ModbusTimeoutError):
            link.read(1, 40000, 2)
        with pytest.raises(ModbusTimeoutError):
            link.read(7, 40000, 2)  # no such unit: silence too
        server.set_silent(1, False)
        assert list(link.read(1, 40000, 2)) == [0x5375, 0x6E53]
        assert link.stats.opens == 1 and server.clients() == 1
    finally:
        link.close()


def test_a_closed_port_is_a_connect_error() -> None:
    link = ModbusLink(bus(port=free_port()))
    with pytest.raises(ModbusConnectError):
        link.open()
    with pytest.raises(ModbusConnectError):
        link.read(1, 40000, 2)


@pytest.mark.parametrize("protocol", ["rtu-over-tcp", "modbus-rtu"])
def test_rtu_frames_through_tcp_and_socket_urls(protocol: str) -> None:
    with SunSpecServer(rtu=True) as server:
        server.set_image(3, inverter_image(InverterReading(w=900, wh=1)))
        where: dict[str, Any] = ({"port": server.port} if protocol == "rtu-over-tcp" else
                                 {"host": None, "serial_port": server.url})
        link = ModbusLink(bus(protocol=protocol, **where,
                              devices=[{"id": "inv", "address": 3}]))
        link.open()
        try:
            assert list(link.read(3, 40000, 2)) == [0x5375, 0x6E53]
            with pytest.raises(ModbusTimeoutError):
                link.read(4, 40000, 2)
            assert list(link.read(3, 40000, 2)) == [0x5375, 0x6E53]
        finally:
            link.close()
