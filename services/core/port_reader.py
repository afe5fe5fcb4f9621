"""A thread that owns one serial port: open with retries, read, survive unplugging.

Device services subclass it and fill in ``on_open`` / ``on_data`` / ``on_tick`` /
``on_lost``; the loop, the backoff, the reconnect counting and the clean stop are here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TypeVar

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract.topics import ha_status_topic
from services.core.serial_link import LineSettings, PortError, SerialLink
from services.core.service import Service

log = logging.getLogger(__name__)
S = TypeVar("S")


class PortReader(threading.Thread):
    """Read one port until stopped; call the hooks from this thread only."""

    def __init__(
        self, name: str, port: str, settings: LineSettings, reconnect_max_s: float, context: str
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = threading.Event()
        self.context = context
        self.reconnects = 0
        self.link = SerialLink(
            port, settings, self.stop_event, reconnect_max_s=reconnect_max_s, context=context,
            on_error=self.on_port_error,
        )

    def run(self) -> None:
        """Open, read until the port is lost, repeat until stopped."""
        while not self.stop_event.is_set():
            if not self.link.open_with_retry():
                break
            if self.link.opens > 1:
                self.reconnects += 1
            try:
                self.on_open(time.monotonic())
                while not self.stop_event.is_set():
                    data = self.link.read()
                    now = time.monotonic()
                    if data:
                        self.on_data(data, now)
                    self.on_tick(now)
            except PortError as exc:
                reason = f"port lost: {exc}"
                log.warning("%s %s", self.context, reason)
                self.link.last_error = reason
                self.on_lost(reason)
            finally:
                self.link.close()
            self.stop_event.wait(0.5)  # a replugged adapter needs a moment to settle
        self.link.close()

    def stop(self) -> None:
        """Ask the thread to end and wait for it (reads time out within 0.25 s)."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=3)

    # -- hooks --------------------------------------------------------------------------------

    def on_open(self, now: float) -> None:
        """The port was (re)opened."""

    def on_data(self, data: bytes, now: float) -> None:
        """Bytes arrived."""

    def on_tick(self, now: float) -> None:
        """Called after every read (at least every 0.25 s): timers."""

    def on_lost(self, reason: str) -> None:
        """The port went away (unplugged, I/O error)."""

    def on_port_error(self, error: str) -> None:
        """The port could not be opened (called once per new error)."""

    def rediscover(self) -> None:
        """Home Assistant restarted: send the device's discovery again."""


class PortService(Service[S]):
    """A device service made of one PortReader per port."""

    def __init__(self, config: Settings[S], bus: Bus, readers: Sequence[PortReader]) -> None:
        super().__init__(config, bus)
        self.readers = list(readers)
        if not readers:
            log.info("service=%s no port configured: idle", self.name)
        if config.homeassistant.discovery:
            bus.subscribe(ha_status_topic(config.homeassistant.discovery_prefix),
                          self._ha_status)

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            for reader in self.readers:
                reader.rediscover()

    def start(self) -> None:
        """Start one reader thread per port."""
        for reader in self.readers:
            reader.start()

    def healthy(self) -> bool:
        """Every port's reader thread runs (a dead one would leave its device unread)."""
        return all(r.is_alive() or r.stop_event.is_set() for r in self.readers)

    def stop(self) -> None:
        """Stop every reader (all at once, then wait); their devices go offline."""
        for reader in self.readers:
            reader.stop_event.set()
        for reader in self.readers:
            reader.stop()
