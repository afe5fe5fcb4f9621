"""A pseudo-terminal standing in for a serial adapter, written at the real line pace.

Services open ``link`` (a symlink to the pty slave, like /dev/serial/by-id/...) as if it were
the USB adapter of a meter. ``unplug``/``replug`` mimic pulling and plugging the cable back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
import threading
import time
import tty
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

# Behind the schedule by more than this (a paused process, a slow machine): start afresh
# instead of bursting bytes out to catch up, which a real line never does.
_MAX_LAG_S = 0.25
# Linux ptys force CS8 without parity, so a reader asking for 7E1 never gets exactly what it
# asked for, and glibc's tcsetattr then fails with EINVAL unless some other setting did change:
# a reader reopening the pty with the same settings as last time would fail. Between readers
# the slave is put back to a speed nobody asks for, so every reader's setup changes it.
_IDLE_SPEED = termios.B50


class PtyPort:
    """A pty whose slave is reachable through a symlink, fed at ``baudrate`` pace."""

    def __init__(
        self,
        link: Path,
        baudrate: int,
        bits_per_char: int = 10,
        *,
        speed: float = 1.0,
        chunk_s: float = 0.03,
    ) -> None:
        self.link = Path(link)
        self.baudrate = baudrate
        self.bits_per_char = bits_per_char  # 7E1: start + 7 data + parity + stop
        self.speed = speed
        self.chunk_s = chunk_s
        self.bytes_written = 0  # accepted by the kernel
        self.bytes_dropped = 0  # refused: unplugged, or nobody reading and the queue full
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._deadline = 0.0
        self.replug()

    @property
    def bytes_per_s(self) -> float:
        """Line rate at speed 1.0 (bytes per second)."""
        return self.baudrate / self.bits_per_char

    @property
    def slave_name(self) -> str:
        """Device of the current pty slave (``/dev/pts/N``), empty while unplugged."""
        return self._slave_name

    @property
    def plugged(self) -> bool:
        """True while the pty exists and the symlink points to it."""
        return self._master is not None

    def replug(self) -> None:
        """Open a new pty and point the symlink at it (no-op when already plugged)."""
        if self.plugged:
            return
        if self.link.exists() and not self.link.is_symlink():
            raise FileExistsError(f"{self.link} exists and is not a symlink: not replacing it")
        self.link.parent.mkdir(parents=True, exist_ok=True)
        master, slave = os.openpty()
        try:
            # Raw: no CR/LF translation, no echo; the reader sets its own 7E1 settings anyway.
            tty.setraw(slave)
            _reset_speed(slave)
            # A real meter never waits for its reader: writes must not block.
            os.set_blocking(master, False)
            name = os.ttyname(slave)
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(name)
            tmp.replace(self.link)  # atomic: a reader never sees a missing link
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        with self._lock:
            # We keep the slave open too: while the reader is between close and reopen the
            # pty stays alive, so writes neither fail with EIO nor hang the line up.
            self._master, self._slave, self._slave_name = master, slave, name
        log.info("pty %s plugged at %s", name, self.link)

    def unplug(self) -> None:
        """Close the pty and remove the symlink: a reader gets an error, as on a pulled cable."""
        with self._lock:
            master, slave, name = self._master, self._slave, self._slave_name
            self._master = self._slave = None
            self._slave_name = ""
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        # Only remove our own link (another simulator may have taken the path since).
        with contextlib.suppress(OSError):
            if name and str(self.link.readlink()) == name:
                self.link.unlink()
        if name:
            log.info("pty %s unplugged from %s", name, self.link)

    def close(self) -> None:
        """Close the pty and remove the symlink."""
        self.unplug()

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write_paced(
        self, data: bytes, stop_event: threading.Event, speed: float | None = None
    ) -> int:
        """Write ``data`` at the line pace times ``speed``; return the bytes the kernel took.

        Returns early when ``stop_event`` is set. While unplugged the bytes are dropped, as
        a real meter keeps talking to a missing cable.
        """
        rate = self.bytes_per_s * (self.speed if speed is None else speed)
        chunk = max(1, round(rate * self.chunk_s))
        # The deadline carries over between calls so frames sent back to back keep the pace.
        now = time.monotonic()
        if self._deadline < now - _MAX_LAG_S:
            self._deadline = now
        view = memoryview(data)
        taken = 0
        for start in range(0, len(data), chunk):
            if stop_event.wait(max(0.0, self._deadline - time.monotonic())):
                return taken
            piece = view[start : start + chunk]
            taken += self._write(piece)
            self._deadline += len(piece) / rate
        # Return when the last byte would be off the wire, so "write then build the next
        # frame" behaves like the meter.
        stop_event.wait(max(0.0, self._deadline - time.monotonic()))
        return taken

    def read(self, size: int, timeout_s: float) -> bytes:
        """Up to ``size`` bytes the reader wrote (a request to a simulated device), waiting
        at most ``timeout_s``; b"" on silence. Returns at once while unplugged."""
        master = self._master
        if master is None:
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout_s)
            return os.read(master, size) if ready else b""
        except (OSError, ValueError):  # unplugged meanwhile: the descriptor is gone
            return b""

    def _write(self, piece: memoryview) -> int:
        """Non-blocking write of one chunk; what does not fit is dropped."""
        with self._lock:
            master, slave = self._master, self._slave
            written = 0
            if master is not None and slave is not None:
                _reset_speed(slave)
                try:
                    written = os.write(master, piece)
                except BlockingIOError:
                    # Nobody has read for a long while and the pty queue is full: discard the
                    # stale bytes (a real line does not store them) and send the fresh ones.
                    termios.tcflush(slave, termios.TCIFLUSH)
                    with contextlib.suppress(BlockingIOError):
                        written = os.write(master, piece)
                except OSError as exc:
                    log.debug("pty write failed: %s", exc)
            self.bytes_written += written
            self.bytes_dropped += len(piece) - written
            return written


def _reset_speed(fd: int) -> None:
    """Put the pty back to _IDLE_SPEED once a reader has set its own (see _IDLE_SPEED)."""
    with contextlib.suppress(termios.error):
        attrs = termios.tcgetattr(fd)
        if attrs[4] != _IDLE_SPEED or attrs[5] != _IDLE_SPEED:
            attrs[4] = attrs[5] = _IDLE_SPEED
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
