"""Aurora request/reply over an RS485 port: one transaction at a time, no retries inside.

The port is any pyserial-compatible object, opened elsewhere with
``serial.serial_for_url(url, baudrate=19200, timeout=...)``. The caller owns retries and
backoff; this module only reports what happened, with silence (an unpowered inverter at
night, a wrong address) as its own exception, ``AuroraTimeout``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from services.inverter import aurora
from services.inverter.aurora import (
    AuroraError,
    AuroraTimeout,
    CrcError,
    FrameError,
    Identity,
    Reply,
    TransmissionError,
)
from services.inverter.types import Decoded

__all__ = ["POLL_MEASURES", "AuroraError", "AuroraLink", "AuroraTimeout", "CrcError",
           "FrameError", "LinkStats", "SerialPort", "TransmissionError"]

log = logging.getLogger(__name__)

# Read on every poll (command 59, global values): 11 requests, plus state and energy.
POLL_MEASURES = (
    aurora.GRID_VOLTAGE, aurora.GRID_CURRENT, aurora.GRID_POWER, aurora.FREQUENCY,
    aurora.INVERTER_TEMPERATURE, aurora.BOOSTER_TEMPERATURE, aurora.INPUT1_VOLTAGE,
    aurora.INPUT1_CURRENT, aurora.INPUT2_VOLTAGE, aurora.INPUT2_CURRENT,
)


class SerialPort(Protocol):
    """The part of pyserial's ``Serial`` this module uses."""

    timeout: float | None

    def reset_input_buffer(self) -> None: ...
    def write(self, data: bytes, /) -> int | None: ...
    def read(self, size: int = 1, /) -> bytes: ...


@dataclass(slots=True)
class LinkStats:
    """Counters for the service's diagnostics."""

    requests: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    frame_errors: int = 0
    transmission_errors: int = 0
    last_latency_s: float | None = None  # request written to last reply byte read


class AuroraLink:
    """Transactions with Aurora inverters on one RS485 port."""

    def __init__(
        self,
        port: SerialPort | Any,
        *,
        timeout_s: float = 0.5,
        quiet_gap_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.port = port
        self.timeout_s = timeout_s
        # After a timeout a late reply may still be on the wire: the bus settles before the
        # next request, or that reply would be read as the next one's.
        self.quiet_gap_s = quiet_gap_s
        self.stats = LinkStats()
        self.identities: dict[int, Identity] = {}  # by address, filled by read_inverter
        self._clock = clock
        self._sleep = sleep
        self._quiet_until = 0.0

    def transact(
        self, address: int, command: int, *args: int, timeout_s: float | None = None
    ) -> Reply:
        """Send one request and read its 8-byte reply within ``timeout_s``."""
        frame = aurora.request(address, command, *args)
        wait = self._quiet_until - self._clock()
        if wait > 0:
            self._sleep(wait)
        self.port.reset_input_buffer()  # a stray or late byte would shift the reply
        self.port.write(frame)
        self.stats.requests += 1
        start = self._clock()
        data = self._read_reply(self.timeout_s if timeout_s is None else timeout_s)
        if len(data) < aurora.REPLY_LEN:
            self._quiet_until = self._clock() + self.quiet_gap_s
            if not data:
                self.stats.timeouts += 1
                raise AuroraTimeout(f"no reply from address {address} to command {command}")
            self.stats.frame_errors += 1
            raise FrameError(f"{len(data)} of {aurora.REPLY_LEN} reply bytes from address "
                             f"{address} to command {command}")
        self.stats.last_latency_s = self._clock() - start
        try:
            return aurora.parse_reply(data, command)
        except CrcError:
            self.stats.crc_errors += 1
            raise
        except TransmissionError:
            self.stats.transmission_errors += 1
            raise

    def _read_reply(self, timeout_s: float) -> bytes:
        """Up to 8 bytes within ``timeout_s``."""
        # pyserial reconfigures the line (tcsetattr) on each timeout change: only on change.
        if self.port.timeout != timeout_s:
            self.port.timeout = timeout_s
        deadline = self._clock() + timeout_s
        data = b""
        while len(data) < aurora.REPLY_LEN and self._clock() < deadline:
            chunk = self.port.read(aurora.REPLY_LEN - len(data))
            if not chunk:  # pyserial's read already waited the whole timeout
                break
            data += chunk
        return data

    def read_identity(self, address: int) -> Identity:
        """Serial number, P/N, firmware and version (4 requests); cached for ``address``."""
        identity = Identity(
            serial=aurora.decode_ascii(self.transact(address, aurora.SERIAL_NUMBER)),
            part_number=aurora.decode_ascii(self.transact(address, aurora.PART_NUMBER)),
            firmware=aurora.decode_firmware(self.transact(address, aurora.FIRMWARE)),
            version=aurora.decode_version(self.transact(address, aurora.VERSION)),
        )
        self.identities[address] = identity
        return identity

    def read_measures(self, address: int, kinds: Iterable[int] = POLL_MEASURES) -> dict[int, float]:
        """DSP measures (59, global); one the model lacks (a transmission error) is absent."""
        out: dict[int, float] = {}
        for kind in kinds:
            try:
                out[kind] = aurora.decode_float(self.transact(address, aurora.MEASURE, kind, 0))
            except TransmissionError as exc:
                # A single-input model has no input 2; "not available, retry" is for next poll.
                log.debug("address=%s measure=%s unavailable: %s", address, kind, exc)
        return out

    def read_inverter(self, address: int, *, identity_cached: bool) -> Decoded:
        """State, measures and lifetime energy (identity too unless cached), normalized.

        A timeout or an error on the state request propagates (the caller decides: night,
        backoff); the identity used is the link's last one for this address.
        """
        if not identity_cached or address not in self.identities:
            self.read_identity(address)
        state = aurora.decode_state(self.transact(address, aurora.STATE))
        measures = self.read_measures(address)
        try:
            lifetime: int | None = aurora.decode_uint32(
                self.transact(address, aurora.ENERGY, aurora.ENERGY_LIFETIME))
        except TransmissionError:
            lifetime = None
        return aurora.normalize(state=state, measures=measures, lifetime_wh=lifetime,
                                identity=self.identities.get(address))
