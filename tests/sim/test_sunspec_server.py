"""The simulated Modbus device: pymodbus clients read it over TCP and RTU-over-TCP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from services.sim import sunspec_image as si
from services.sim.sunspec_server import Request, SunSpecServer
from tests.conftest import SHARED

TIMEOUT_S = 0.3  # the silent unit's reads wait this long: kept short
MARKER = [0x5375, 0x6E53]


def _inverter(w: float = 1000.0, *, base: int = 40000, serial: str = "SIM1") -> si.SunSpecImage:
    return si.inverter_image(si.InverterReading(w=w, wh=1000.0), base=base, serial=serial)


@pytest.fixture
def server() -> Iterator[SunSpecServer]:
    with SunSpecServer() as s:
        yield s


@pytest.fixture
def client(server: SunSpecServer) -> Iterator[ModbusTcpClient]:
    c = ModbusTcpClient("127.0.0.1", port=server.port, timeout=TIMEOUT_S, retries=0)
    assert c.connect()  # type: ignore[no-untyped-call]
    yield c
    c.close()  # type: ignore[no-untyped-call]


def _read(c: ModbusTcpClient | ModbusSerialClient, address: int, count: int, unit: int
          ) -> list[int]:
    r = c.read_holding_registers(address, count=count, device_id=unit)
    assert not r.isError(), r
    return list(r.registers)


def test_marker_at_every_base(server: SunSpecServer, client: ModbusTcpClient) -> None:
    """A gateway: one unit per base; each reads SunS at its own base, nothing elsewhere."""
    for unit, base in enumerate(si.BASES, start=1):
        server.set_image(unit, _inverter(base=base))
    for unit, base in enumerate(si.BASES, start=1):
        assert _read(client, base, 4, unit) == [*MARKER, 1, 66]
    # Outside the image: exception 2, as a real device answers a wrong base.
    r = client.read_holding_registers(40000, count=2, device_id=2)  # unit 2 is at base 0
    assert r.isError() and r.exception_code == 2
    r = client.read_holding_registers(39999, count=4, device_id=4)  # SMA style: SunS at 40001
    assert r.isError() and r.exception_code == 2


def test_a_real_fixture_image_reads_as_stored(server: SunSpecServer,
                                               client: ModbusTcpClient) -> None:
    if SHARED is None:
        pytest.skip("../shared/fixtures not found")
    data = json.loads((SHARED / "fixtures/sunspec/sma_sunnyboy36_20230810.json").read_text())
    server.set_image(126, data["registers"], base=data["base"])
    assert _read(client, 40185, 52, 126) == data["registers"][185:237]  # model 101, whole


def test_set_image_between_two_reads(server: SunSpecServer, client: ModbusTcpClient) -> None:
    server.set_image(1, _inverter(1000.0))
    w_at = 40000 + 2 + 68 + 14  # model 103's W, right after model 1
    assert _read(client, w_at, 1, 1) == [1000]
    server.set_image(1, _inverter(2500.0))
    assert _read(client, w_at, 1, 1) == [2500]
    assert server.requests(1) == [Request(1, w_at, 1), Request(1, w_at, 1)]


def test_a_read_sees_one_whole_image(server: SunSpecServer, client: ModbusTcpClient) -> None:
    """Images swapped while a client reads: every read is all of one image, never a mix."""
    a, b = _inverter(1000.0, serial="AAAA"), _inverter(3000.0, serial="BBBB")
    server.set_image(1, a)
    done = threading.Event()

    def swap() -> None:
        while not done.is_set():
            for img in (a, b):
                server.set_image(1, img)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        seen = {tuple(_read(client, 40000, 125, 1)) for _ in range(60)}
    finally:
        done.set()
        swapper.join()
    assert seen <= {a.registers[:125], b.registers[:125]}


def test_silent_unit_times_out_while_the_other_answers(server: SunSpecServer,
                                                      client: ModbusTcpClient) -> None:
    server.set_image(1, _inverter())
    server.set_image(2, si.meter_image(w=500.0, wh_imp=1.0, wh_exp=1.0))
    server.set_silent(1)
    with pytest.raises(ModbusIOException):
        client.read_holding_registers(40000, count=2, device_id=1)
    assert _read(client, 40000, 2, 2) == MARKER
    with pytest.raises(ModbusIOException):  # no image at all: silent too
        client.read_holding_registers(40000, count=2, device_id=9)
    server.set_silent(1, False)
    assert _read(client, 40000, 2, 1) == MARKER
    assert [r.unit for r in server.requests()] == [1, 2, 9, 1]


def test_rtu_bus_over_socket_url() -> None:
    """Three devices on one RS485 'bus' (RTU framing over TCP), the middle one dead."""
    with SunSpecServer(rtu=True) as s:
        for unit in (1, 2, 3):
            s.set_image(unit, _inverter(100.0 * unit, serial=f"RTU{unit}"))
        s.set_silent(2)
        assert s.url == f"socket://127.0.0.1:{s.port}"
        c = ModbusSerialClient(s.url, framer=FramerType.RTU, baudrate=19200,
                               timeout=TIMEOUT_S, retries=0)
        assert c.connect()
        try:
            for unit in (1, 2, 3):
                if unit == 2:
                    with pytest.raises(ModbusIOException):
                        c.read_holding_registers(40000, count=2, device_id=unit)
                else:
                    assert _read(c, 40000, 2, unit) == MARKER
            # SN (model 1's 5th point), one CRC-checked frame of 8 registers
            sn = _read(c, 40000 + 4 + 48, 8, 3)
            assert b"".join(w.to_bytes(2, "big") for w in sn).rstrip(b"\0") == b"RTU3"
        finally:
            c.close()  # type: ignore[no-untyped-call]


def test_single_client_device_refuses_a_second_connection() -> None:
    with SunSpecServer(max_clients=1) as s:
        s.set_image(1, _inverter())
        first = ModbusTcpClient("127.0.0.1", port=s.port, timeout=TIMEOUT_S, retries=0)
        second = ModbusTcpClient("127.0.0.1", port=s.port, timeout=TIMEOUT_S, retries=0)
        try:
            assert first.connect()  # type: ignore[no-untyped-call]
            assert _read(first, 40000, 2, 1) == MARKER
            # accepted by the kernel, then closed by the device
            second.connect()  # type: ignore[no-untyped-call]
            with pytest.raises((ModbusException, OSError)):  # closed, or reset if it wrote
                second.read_holding_registers(40000, count=2, device_id=1)
            assert _read(first, 40000, 2, 1) == MARKER
        finally:
            first.close()  # type: ignore[no-untyped-call]
            second.close()  # type: ignore[no-untyped-call]


def test_stop_leaves_no_thread_or_socket() -> None:
    before = set(threading.enumerate())
    s = SunSpecServer().start()
    s.set_image(1, _inverter())
    c = ModbusTcpClient("127.0.0.1", port=s.port, timeout=TIMEOUT_S, retries=0)
    assert c.connect() and _read(c, 40000, 2, 1) == MARKER  # type: ignore[no-untyped-call]
    s.stop()
    try:
        assert set(threading.enumerate()) == before
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        # The open connection was closed by the server too: the next read fails.
        with pytest.raises((ModbusException, OSError)):
            c.read_holding_registers(40000, count=2, device_id=1)
    finally:
        c.close()  # type: ignore[no-untyped-call]
    s.stop()  # twice: harmless


def test_given_port_and_busy_port() -> None:
    with SunSpecServer() as a:
        with pytest.raises(RuntimeError):
            SunSpecServer(a.port).start()
        port = a.port
    with SunSpecServer(port) as b:  # freed by stop: can be bound again at once
        assert b.port == port
