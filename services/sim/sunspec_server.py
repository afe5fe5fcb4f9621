"""A Modbus device (or a gateway of several) on 127.0.0.1 for tests and `make run`.

A pymodbus ``ModbusTcpServer`` on its own asyncio loop in a background thread serves one
register image per unit id (device_id). Addresses here are the protocol's: an image set at base
40000 answers a read of address 40000 (no +1, unlike pymodbus's own datastore blocks), and a
read outside every image of a unit gets exception 2 (illegal address), as a real device's would.
A unit made silent, or one that has no image, gets no reply at all: the client times out, as
on a dead RS485 device. ``framer=FramerType.RTU`` gives RTU-over-TCP, which pymodbus serial
clients reach through a ``socket://127.0.0.1:PORT`` URL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.transport import ModbusProtocol

from services.sim.sunspec_image import SunSpecImage

log = logging.getLogger(__name__)
_HOLDING = 3  # function codes served: read holding registers
_INPUT = 4
REQUEST_LOG = 10_000  # reads remembered for tests' requests()


@dataclass(frozen=True, slots=True)
class Request:
    """One read a unit received (answered or not)."""

    unit: int
    address: int
    count: int


class _Images(ModbusServerContext):
    """The server's datastore: an immutable tuple per unit, swapped whole by ``set``."""

    def __init__(self) -> None:  # pylint: disable=super-init-not-called
        # ModbusServerContext's own init wants pymodbus datastore blocks (with their +1);
        # "old_simulator" makes the server call our async_getValues as it is.
        self.old_simulator = True
        self.simdevices = []
        self._lock = threading.Lock()
        self._images: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._silent: set[int] = set()
        self._delays: dict[int, float] = {}
        # Bounded: `make run` serves for days.
        self.requests: deque[Request] = deque(maxlen=REQUEST_LOG)

    def set(self, unit: int, base: int, registers: tuple[int, ...]) -> None:
        with self._lock:
            self._images[unit] = (base, registers)

    def silence(self, unit: int, silent: bool) -> None:
        with self._lock:
            (self._silent.add if silent else self._silent.discard)(unit)

    def delay(self, unit: int, seconds: float) -> None:
        with self._lock:
            self._delays[unit] = seconds

    def _image(self, unit: int, address: int, count: int
               ) -> tuple[tuple[int, tuple[int, ...]] | None, float]:
        with self._lock:  # one lock for the log and the image: a read sees one whole image
            self.requests.append(Request(unit, address, count))
            if unit in self._silent or unit not in self._images:
                return None, 0.0
            return self._images[unit], self._delays.get(unit, 0.0)

    async def async_getValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        found, delay = self._image(device_id, address, count)
        if found is None:
            # With ignore_missing_devices the request handler sends nothing back.
            raise NoSuchIdException(f"unit {device_id} is silent")
        if delay > 0:
            await asyncio.sleep(delay)
        base, regs = found
        if func_code not in (_HOLDING, _INPUT):
            return ExcCodes.ILLEGAL_FUNCTION
        if address < base or address + count > base + len(regs):
            return ExcCodes.ILLEGAL_ADDRESS
        return list(regs[address - base:address - base + count])

    async def async_setValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        found, _delay = self._image(device_id, address, len(values))
        if found is None:
            raise NoSuchIdException(f"unit {device_id} is silent")
        return ExcCodes.ILLEGAL_FUNCTION  # a read-only device

    def device_ids(self) -> list[int]:
        with self._lock:
            return list(self._images)


class _Refused(asyncio.Protocol):
    """A connection over a single-client device's limit: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _TcpServer(ModbusTcpServer):
    """pymodbus's server, with an optional limit of simultaneous clients (SolarEdge: one)."""

    max_clients: int | None = None

    def handle_new_connection(self) -> ModbusProtocol:
        if self.max_clients is not None and len(self.active_connections) >= self.max_clients:
            log.info("client refused: %d connected already", len(self.active_connections))
            return _Refused()  # type: ignore[return-value]
        return super().handle_new_connection()


class SunSpecServer:
    """Modbus TCP (or RTU-over-TCP) server on 127.0.0.1 serving one image per unit id.

    ``with SunSpecServer() as s: s.set_image(1, img)``; ``s.port`` is the bound port.
    """

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", rtu: bool = False,
                 max_clients: int | None = None) -> None:
        self.host = host
        self.port = port
        self.framer = FramerType.RTU if rtu else FramerType.SOCKET
        self.max_clients = max_clients
        self._images = _Images()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: _TcpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``socket://host:port``: the serial URL pymodbus RTU clients open (rtu=True)."""
        return f"socket://{self.host}:{self.port}"

    def set_image(self, unit: int, image: SunSpecImage | Sequence[int], base: int = 40000
                  ) -> None:
        """Serve ``image`` at ``unit`` from now on, whole: a read sees the old or the new one.
        A bare register list goes at ``base``; a SunSpecImage carries its own."""
        if isinstance(image, SunSpecImage):
            base, regs = image.base, image.registers
        else:
            regs = tuple(image)
        if not all(0 <= r <= 0xFFFF for r in regs) or base + len(regs) > 0x10000:
            raise ValueError("registers are uint16 within addresses 0..65535")
        self._images.set(unit, base, regs)

    def set_silent(self, unit: int, silent: bool = True) -> None:
        """Make ``unit`` answer nothing at all (True) or answer again (False)."""
        self._images.silence(unit, silent)

    def set_delay(self, unit: int, seconds: float) -> None:
        """Answer ``unit``'s requests ``seconds`` late (a slow device or gateway)."""
        self._images.delay(unit, seconds)

    def requests(self, unit: int | None = None) -> list[Request]:
        """The last REQUEST_LOG reads received (of ``unit``, or all), in order, answered or
        not."""
        with self._images._lock:
            return [r for r in self._images.requests if unit is None or r.unit == unit]

    def clients(self) -> int:
        """Connections open now."""
        return 0 if self._server is None else len(self._server.active_connections)

    def start(self) -> SunSpecServer:
        """Listen (on a free port when ``port`` is 0) and serve from a background thread."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop, ready, failure),
                                        name=f"modbus-sim-{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            loop.close()
            raise RuntimeError(f"Modbus server on {self.host}:{self.port}") from failure[0]
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event,
             failure: list[BaseException]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())

    async def _listen(self) -> None:
        server = _TcpServer(self._images, framer=self.framer, address=(self.host, self.port),
                            ignore_missing_devices=True)
        server.max_clients = self.max_clients
        await server.serve_forever(background=True)
        listener: Any = server.transport
        self.port = listener.sockets[0].getsockname()[1]
        self._server = server

    def stop(self) -> None:
        """Close the listener and every connection, end the thread; no-op when not started."""
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None:
            return
        if server is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None

    @staticmethod
    async def _shutdown(server: _TcpServer) -> None:
        listener: Any = server.transport
        await server.shutdown()  # type: ignore[no-untyped-call]
        if listener is not None and hasattr(listener, "wait_closed"):
            await listener.wait_closed()
        # Let the closed connections' transports run their close callbacks.
        await asyncio.sleep(0)

    def __enter__(self) -> SunSpecServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
