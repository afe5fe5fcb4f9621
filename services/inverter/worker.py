"""One thread per bus: poll its devices on their schedules over one long-lived link.

A dead device never stalls the others: short timeout, no library retries, its own backoff
(poller.py). After a timeout on an RS485/RTU link the bus gets a quiet gap before the next
request. The link is reopened only when every device on it failed in a row: one dead
device never causes a reopen while another answers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import serial

from services.inverter import huawei, sunspec
from services.inverter.aurora import AuroraError, AuroraTimeout
from services.inverter.aurora_link import AuroraLink
from services.inverter.config import BusConfig, DeviceConfig, InverterConfig
from services.inverter.modbus_link import (
    ModbusConnectError,
    ModbusError,
    ModbusExceptionError,
    ModbusLink,
    ModbusTimeoutError,
)
from services.inverter.poller import DevicePoller, Outcome, Policy
from services.inverter.sunspec_points import MODELS
from services.inverter.types import Chain, Decoded, Reader

log = logging.getLogger(__name__)

PROBE = 40000  # a register any SunSpec device answers for, or refuses with an exception


class NoAnswerError(Exception):
    """No usable answer: the device may be asleep, unplugged or off."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered  # it did answer, wrongly (no SunSpec marker): not asleep


class StaleChainError(Exception):
    """The device answered, but the cached chain no longer fits it."""


@dataclass
class DeviceStats:
    """Per-device diagnostics counters."""

    requests: int = 0
    timeouts: int = 0
    exceptions: int = 0
    crc_errors: int = 0
    errors: int = 0
    discoveries: int = 0
    last_latency_ms: float | None = None
    last_error: str | None = None


@dataclass
class Device:
    """One device's runtime: its config, decisions, cached chain and counters."""

    cfg: DeviceConfig
    poller: DevicePoller
    chain: Chain | None = None
    stats: DeviceStats = field(default_factory=DeviceStats)


class Sink(Protocol):
    """Where a worker hands its results (the service publishes them)."""

    def outcome(self, bus: BusConfig, device: Device, outcome: Outcome) -> None:
        """Carry out one poll's outcome."""

    def diagnostics(self, bus: BusConfig, device: Device, counters: dict[str, Any]) -> None:
        """Publish a device's counters."""


class Transport(Protocol):
    """One bus's link, as the worker drives it."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def poll(self, device: Device) -> list[Decoded]: ...


def counted_reader(link: ModbusLink, device: Device) -> Reader:
    """Reads of one device on ``link``, each counted in its diagnostics."""
    stats = device.stats
    unit = device.cfg.address

    def read(address: int, count: int) -> Sequence[int]:
        stats.requests += 1
        try:
            regs = link.read(unit, address, count)
        except ModbusTimeoutError:
            stats.timeouts += 1
            raise
        except ModbusExceptionError:
            stats.exceptions += 1
            raise
        except ModbusError:
            stats.errors += 1
            raise
        stats.last_latency_ms = link.stats.last_latency_ms
        return regs

    return read


class HuaweiTransport:
    """Huawei SUN2000 devices (their own map, not SunSpec) on a Modbus link it shares with
    SunSpec devices: identity once per device (again when the poller asks), then one read
    of the running block per poll."""

    def __init__(self, link: ModbusLink) -> None:
        self.link = link
        self.identities: dict[str, huawei.Identity] = {}  # device id -> its identity block

    def poll(self, device: Device) -> list[Decoded]:
        """Identity when needed, then the running block."""
        read = counted_reader(self.link, device)
        try:
            identity = self.identities.get(device.cfg.id)
            if identity is None or device.poller.need_discovery:
                identity = huawei.decode_identity(
                    read(huawei.IDENTITY_BASE, huawei.IDENTITY_COUNT))
                self.identities[device.cfg.id] = identity
                device.poller.discovered()
                device.stats.discoveries += 1
            decoded = huawei.decode_running(
                read(huawei.RUNNING_BASE, huawei.RUNNING_COUNT), identity)
        except (ModbusTimeoutError, ModbusConnectError) as exc:
            raise NoAnswerError(str(exc)) from exc
        except ModbusExceptionError as exc:
            # it answered: not asleep, but not this map either (or a dongle refusing)
            raise NoAnswerError(str(exc), answered=True) from exc
        except ModbusError as exc:
            raise NoAnswerError(str(exc)) from exc
        except huawei.HuaweiError as exc:
            self.identities.pop(device.cfg.id, None)
            raise StaleChainError(str(exc)) from exc
        return [decoded]


class ModbusTransport:
    """SunSpec (and Huawei) devices over one Modbus link: each device read its own way."""

    def __init__(self, bus: BusConfig, stop: threading.Event) -> None:
        self.link = ModbusLink(bus, stop)
        self.huawei = HuaweiTransport(self.link)

    def open(self) -> None:
        """Connect (raises ModbusConnectError)."""
        self.link.open()

    def close(self) -> None:
        """Disconnect."""
        self.link.close()

    def poll(self, device: Device) -> list[Decoded]:
        """Discover when needed, then read every known model in one request each."""
        if device.cfg.kind == "huawei":
            return self.huawei.poll(device)
        stats = device.stats
        read = counted_reader(self.link, device)
        try:
            if device.poller.need_discovery or device.chain is None:
                device.chain = self._discover(read)
                device.poller.discovered()
                stats.discoveries += 1
            models: list[tuple[int, dict[str, Any]]] = []
            for model in device.chain.models:
                if model.model_id not in MODELS:
                    continue  # listed in the chain, never read: nothing here decodes it
                regs: list[int] = []
                for address, count in sunspec.requests_for(model):
                    regs.extend(read(address, count))
                decoded = sunspec.decode_model(model.model_id, regs)
                if decoded is not None:
                    models.append((model.model_id, decoded))
            groups = sunspec.normalize(models)
        except (ModbusTimeoutError, ModbusConnectError) as exc:
            raise NoAnswerError(str(exc)) from exc
        except ModbusExceptionError as exc:
            raise StaleChainError(str(exc)) from exc  # the chain moved (illegal address)
        except ModbusError as exc:
            raise NoAnswerError(str(exc)) from exc
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise StaleChainError(f"{type(exc).__name__}: {exc}") from exc
        if not groups:
            raise StaleChainError("no inverter or meter model in the chain")
        return groups

    def _discover(self, read: Reader) -> Chain:
        # A silent device would cost a timeout per base tried (6): one probe says first
        # whether anything answers at all. An exception response is an answer.
        with contextlib.suppress(ModbusExceptionError):
            read(PROBE, 2)
        try:
            return sunspec.discover(read)
        except sunspec.DiscoveryError as exc:
            raise NoAnswerError(str(exc), answered=True) from exc


class AuroraTransport:
    """ABB/Power-One Aurora inverters on one RS485 port."""

    def __init__(self, bus: BusConfig) -> None:
        self.bus = bus
        self.link: AuroraLink | None = None
        self._port: Any = None  # a pyserial port

    def open(self) -> None:
        """Open the serial port (pyserial URL: a device path or socket://host:port)."""
        self.close()
        try:
            port = serial.serial_for_url(self.bus.serial_port, baudrate=self.bus.speed,
                                         timeout=self.bus.timeout_s)
        except (OSError, ValueError) as exc:
            raise ModbusConnectError(f"cannot open {self.bus.serial_port}: {exc}") from exc
        self._port = port
        self.link = AuroraLink(port, timeout_s=self.bus.timeout_s,
                               quiet_gap_s=self.bus.quiet_gap_s)

    def close(self) -> None:
        """Close the port."""
        port, self._port, self.link = self._port, None, None
        if port is not None:
            port.close()

    def poll(self, device: Device) -> list[Decoded]:
        """State, measures and lifetime energy (identity once)."""
        if self.link is None:
            raise NoAnswerError(f"{self.bus.serial_port} is not open")
        stats = self.link.stats
        try:
            decoded = self.link.read_inverter(device.cfg.address, identity_cached=True)
        except AuroraTimeout as exc:
            raise NoAnswerError(str(exc)) from exc
        except AuroraError as exc:
            device.stats.errors += 1
            raise NoAnswerError(str(exc)) from exc
        finally:
            device.stats.requests = stats.requests
            device.stats.timeouts = stats.timeouts
            device.stats.crc_errors = stats.crc_errors
            if stats.last_latency_s is not None:
                device.stats.last_latency_ms = round(stats.last_latency_s * 1000, 1)
        return [decoded]


def policy_for(device: DeviceConfig, section: InverterConfig) -> Policy:
    """The poller's settings for one device."""
    return Policy(poll_s=device.poll_s, night_poll_s=device.night_poll_s,
                  producing_above_w=section.producing_above_w,
                  offline_after=section.offline_after_failures,
                  backoff_max_s=section.backoff_max_s)


class BusWorker(threading.Thread):
    """Polls one bus's devices until stopped."""

    def __init__(self, bus: BusConfig, section: InverterConfig, sink: Sink,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name=f"inverter-{bus.name}", daemon=True)
        self.bus = bus
        self.section = section
        self.sink = sink
        self.clock = clock
        self.stop_event = threading.Event()
        now = clock()
        self.devices = [Device(d, DevicePoller(policy_for(d, section), now)) for d in bus.devices]
        self.transport: Transport = (AuroraTransport(bus) if bus.protocol == "aurora"
                                     else ModbusTransport(bus, self.stop_event))
        self.reopens = 0
        self.open_errors = 0
        self._failed: set[str] = set()  # devices failed since the last answer on this link
        self._next_diag = now
        # RS485, or RTU frames through a gateway: a late answer must not meet the next request
        self._quiet = bus.serial or bus.protocol == "rtu-over-tcp"
        self.context = f"service=inverter bus={bus.name}"

    def run(self) -> None:
        """Open, then poll what is due, until stopped."""
        self._open()
        try:
            while not self.stop_event.is_set():
                now = self.clock()
                # Answering devices first: a silent one holds the bus for a whole timeout.
                due = sorted((d for d in self.devices if d.poller.due(now)),
                             key=lambda d: (d.poller.failures > 0, d.poller.next_at))
                deferred: dict[int, float] = {}  # id(device) -> when it goes anyway
                for device in due:
                    if self.stop_event.is_set():
                        break
                    if self._defer(device):
                        deferred[id(device)] = device.poller.next_at + device.cfg.poll_s
                        continue
                    self._poll(device)
                self._diagnostics()
                wake = min(deferred.get(id(d), d.poller.next_at) for d in self.devices)
                self.stop_event.wait(max(0.0, min(wake, self._next_diag) - self.clock()))
        finally:
            self.transport.close()

    def stop(self) -> None:
        """End the thread and wait for it (a request in flight ends within its timeout)."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=self.bus.timeout_s + 3)

    def _defer(self, device: Device) -> bool:
        """Whether a failing device waits: its timeout would delay an answering device due
        before it ends. Never longer than one of its own periods (it must get its turn)."""
        if device.poller.failures == 0:
            return False
        now = self.clock()
        if now - device.poller.next_at >= device.cfg.poll_s:
            return False
        ends = now + self.bus.timeout_s + (self.bus.quiet_gap_s if self._quiet else 0.0)
        return any(other is not device and other.poller.failures == 0
                   and other.poller.next_at < ends for other in self.devices)

    def _open(self) -> bool:
        try:
            self.transport.open()
        except ModbusError as exc:
            self.open_errors += 1
            log.warning("%s cannot open %s: %s", self.context, self.bus.where, exc)
            return False
        return True

    def _poll(self, device: Device) -> None:
        try:
            groups = self.transport.poll(device)
        except NoAnswerError as exc:
            device.stats.last_error = str(exc)
            out = device.poller.on_silence(self.clock(), str(exc), answered=exc.answered)
            self.sink.outcome(self.bus, device, out)
            self._failed.add(device.cfg.id)
            if self._quiet:
                self.stop_event.wait(self.bus.quiet_gap_s)
            if self._failed >= {d.cfg.id for d in self.devices}:
                self._reopen()
            return
        except StaleChainError as exc:
            device.stats.last_error = str(exc)
            out = device.poller.on_decode_failure(self.clock(), str(exc))
        else:
            out = device.poller.on_reading(self.clock(), groups)
        self._failed.clear()  # the link works: whoever failed, it is not the link
        self.sink.outcome(self.bus, device, out)

    def _reopen(self) -> None:
        """Every device failed in a row: the link itself may be the problem."""
        self._failed.clear()
        self.reopens += 1
        log.debug("%s every device failed: reopening %s", self.context, self.bus.where)
        self.transport.close()
        self._open()

    def _diagnostics(self) -> None:
        now = self.clock()
        if now < self._next_diag:
            return
        self._next_diag = now + self.section.diagnostics_interval_s
        for device in self.devices:
            self.sink.diagnostics(self.bus, device, self.counters(device))

    def counters(self, device: Device) -> dict[str, Any]:
        """A device's diagnostics: its own counters and its bus's."""
        return {
            "bus": self.bus.name,
            "where": self.bus.where,
            **asdict(device.stats),
            "mode": device.poller.mode.value,
            "failures_in_a_row": device.poller.failures,
            "reopens": self.reopens,
            "open_errors": self.open_errors,
        }
