"""One long-lived Modbus connection per bus (pymodbus 3.16 sync clients), and a Reader per
device on it.

enerbox owns retries (pymodbus retries 0, and pymodbus never drops the connection on its
own): the worker decides when to reopen. A single-client TCP device (SolarEdge) accepts one
connection, so the link is never opened per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from services.inverter.config import BusConfig
from services.inverter.types import Reader

log = logging.getLogger(__name__)

# pymodbus logs an ERROR per unanswered request: a sleeping inverter would write one line
# per poll all night. enerbox counts timeouts in diagnostics and logs state changes instead.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)

NEVER_DISCONNECT = 1 << 30  # pymodbus closes after retries+3 silent requests by default


class ModbusError(Exception):
    """A request failed; ``kind`` names the diagnostics counter it adds to."""

    kind = "errors"


class ModbusTimeoutError(ModbusError):
    """No answer within the bus timeout (device silent, asleep, or a wrong unit id)."""

    kind = "timeouts"


class ModbusExceptionError(ModbusError):
    """The device answered with a Modbus exception (2: illegal address, 11: gateway target
    failed to respond...)."""

    kind = "exceptions"

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class ModbusConnectError(ModbusError):
    """The link cannot be opened, or was lost."""

    kind = "connect_errors"


ILLEGAL_ADDRESS = 2
GATEWAY_NO_RESPONSE = 11  # a gateway's way of saying "timeout"


@dataclass
class LinkStats:
    """Counters of one link, for diagnostics."""

    opens: int = 0
    requests: int = 0
    last_latency_ms: float | None = None


Client = ModbusTcpClient | ModbusSerialClient


def make_client(bus: BusConfig) -> Client:
    """The pymodbus client for a bus: these keyword names are checked by a test against the
    pinned pymodbus (its 3.10 rename of ``slave`` broke many integrations)."""
    if bus.protocol == "modbus-tcp":
        client: Client = ModbusTcpClient(bus.host or "", port=bus.port, timeout=bus.timeout_s,
                                         retries=0)
    elif bus.protocol == "rtu-over-tcp":
        client = ModbusTcpClient(bus.host or "", port=bus.port, timeout=bus.timeout_s,
                                 retries=0, framer=FramerType.RTU)
    elif bus.protocol == "modbus-rtu":
        # serial_port may be a socket://host:port URL (pyserial's), for tests
        client = ModbusSerialClient(bus.serial_port or "", baudrate=bus.speed,
                                    timeout=bus.timeout_s, retries=0, framer=FramerType.RTU)
    else:
        raise ValueError(f"{bus.protocol} is not a Modbus protocol")
    client.set_max_no_responses(NEVER_DISCONNECT)
    return client


class ModbusLink:
    """One bus's connection: open once, read many times, reopen when the worker says so."""

    def __init__(self, bus: BusConfig, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = LinkStats()
        self._client: Client | None = None

    @property
    def is_open(self) -> bool:
        """A client exists and its connection is up."""
        return self._client is not None and bool(self._client.connected)

    def open(self) -> None:
        """Connect, then wait ``connect_delay_s`` (Huawei dongles ignore the first seconds)."""
        self.close()
        client = make_client(self.bus)
        if not client.connect():
            client.close()  # type: ignore[no-untyped-call]
            raise ModbusConnectError(f"cannot connect to {self.bus.where}")
        self._client = client
        self.stats.opens += 1
        if self.bus.connect_delay_s:
            self.stop.wait(self.bus.connect_delay_s)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    def read(self, unit: int, address: int, count: int) -> list[int]:
        """``count`` holding registers from ``address`` of ``unit``, in one request."""
        client = self._client
        if client is None:
            raise ModbusConnectError(f"{self.bus.where} is not open")
        self.stats.requests += 1
        start = self.clock()
        try:
            response = client.read_holding_registers(address, count=count, device_id=unit)
        except ConnectionException as exc:
            raise ModbusConnectError(f"connection lost: {exc}") from exc
        except ModbusIOException as exc:
            # pymodbus raises this for "no response received" (retries 0) and for a reply
            # that is not the one asked (another unit id, another transaction)
            raise ModbusTimeoutError(f"no answer from unit {unit} at {address}") from exc
        except ModbusException as exc:
            raise ModbusError(f"unit {unit} at {address}: {exc}") from exc
        self.stats.last_latency_ms = round((self.clock() - start) * 1000, 1)
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            if code == GATEWAY_NO_RESPONSE:
                raise ModbusTimeoutError(f"gateway: unit {unit} did not answer")
            raise ModbusExceptionError(
                code, f"unit {unit} at {address}+{count}: Modbus exception {code}")
        registers = list(response.registers)
        if len(registers) < count:
            raise ModbusError(f"unit {unit} at {address}: {len(registers)} of {count} registers")
        return registers[:count]

    def reader(self, unit: int) -> Reader:
        """The protocol layer's view of one device on this link."""

        def read(address: int, count: int) -> Sequence[int]:
            return self.read(unit, address, count)

        return read
