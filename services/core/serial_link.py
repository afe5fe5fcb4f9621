"""A serial port that may vanish: open with retries, read, report loss once.

Shared by the device services (teleinfo, vedirect): the USB cable is the part of the box
users pull most often, so losing and finding a port is a normal state, not an exception.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

log = logging.getLogger(__name__)

PortError = (serial.SerialException, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class LineSettings:
    """Serial line settings: 1200/9600 7E1 for TIC, 19200 8N1 for VE.Direct."""

    baudrate: int
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE


class SerialLink:
    """Open/read/close one port; ``open_with_retry`` waits with backoff until it opens."""

    def __init__(
        self,
        port: str,
        settings: LineSettings,
        stop: threading.Event,
        *,
        reconnect_max_s: float = 30.0,
        context: str = "",
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.port = port
        self.settings = settings
        self.stop = stop
        self.reconnect_max_s = reconnect_max_s
        self.context = context or f"port={port}"
        self.on_error = on_error  # called once per new error, e.g. to publish diagnostics
        self.last_error: str | None = None
        self.opens = 0
        self._serial: Any = None

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return self._serial is not None

    def open_once(self) -> bool:
        """Try to open the port; on failure remember why and return False."""
        try:
            ser = serial.serial_for_url(
                self.port,
                baudrate=self.settings.baudrate,
                bytesize=self.settings.bytesize,
                parity=self.settings.parity,
                stopbits=self.settings.stopbits,
                timeout=0.25,
                exclusive=True,
                do_not_open=True,
            )
            ser.open()
            ser.reset_input_buffer()  # bytes queued while we were away are old news
        except PortError as exc:
            error = f"cannot open {self.port}: {_reason(exc)}"
            if error != self.last_error:
                log.error("%s %s (retrying)", self.context, error)
                self.last_error = error
                if self.on_error is not None:
                    self.on_error(error)
            return False
        self._serial = ser
        self.opens += 1
        log.info("%s opened at %d bd", self.context, self.settings.baudrate)
        return True

    def open_with_retry(self) -> bool:
        """Open, retrying with backoff until it works or ``stop`` is set."""
        delay = 0.5
        while not self.stop.is_set():
            if self.open_once():
                return True
            self.stop.wait(delay)
            delay = min(delay * 2, self.reconnect_max_s)
        return False

    def set_baudrate(self, baudrate: int) -> None:
        """Change speed in place (mode auto-detection)."""
        self.settings = LineSettings(
            baudrate, self.settings.bytesize, self.settings.parity, self.settings.stopbits
        )
        if self._serial is not None:
            self._serial.baudrate = baudrate
            self._serial.reset_input_buffer()

    def read(self) -> bytes:
        """What is waiting, or wait up to 0.25 s for one byte; raises on a lost port."""
        ser = self._serial
        if ser is None:
            raise serial.SerialException("port is closed")
        data: bytes = ser.read(ser.in_waiting or 1)
        return data

    def close(self) -> None:
        """Close quietly (the port may already be gone)."""
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(*PortError):
                ser.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    # pyserial wraps OSError as "[Errno 2] could not open port X: [Errno 2] No such file..."
    return text.rsplit("] ", 1)[-1] if "] " in text else text
