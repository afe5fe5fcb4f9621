"""Service lifecycle: build from config, start, run until SIGTERM/SIGINT, stop cleanly.

Each service owns one Bus (its own connection, status topic and last will), so in
``enerbox run all`` one crashed or stopped service still shows as ``offline`` on its own.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any, ClassVar

from services.core.bus import Bus
from services.core.config import ConfigError, load_config
from services.core.logs import setup_logging
from services.core.registry import SERVICES, load

log = logging.getLogger(__name__)


class Service:
    """Base of every service: ``start`` returns quickly, ``stop`` undoes it."""

    name: ClassVar[str]

    @classmethod
    def session_expiry_s(cls, config: Any) -> int | None:
        """A durable MQTT session for this service (None: a clean one each time)."""
        return None

    def __init__(self, config: Any, bus: Bus) -> None:
        self.config = config
        self.bus = bus

    def start(self) -> None:
        """Start worker threads; must not block."""

    def stop(self) -> None:
        """Stop worker threads and leave devices in their safe state."""


def build(name: str, config: Any) -> Service:
    """Instantiate a registered service with its own bus."""
    entry = SERVICES.get(name)
    if entry is None:
        raise KeyError(f"unknown service {name!r} (known: {', '.join(sorted(SERVICES))})")
    cls = load(entry.service)
    bus = Bus(config.mqtt, name, durable_session_s=cls.session_expiry_s(config))
    service: Service = cls(config, bus)
    return service


def run(names: list[str], config_file: str | None = None) -> int:
    """Run services until SIGTERM/SIGINT; returns the process exit code."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        setup_logging()
        log.error("%s", exc.report())
        return 2
    setup_logging(config.general.log_level)
    services = [build(name, config) for name in names]
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for service in services:
        service.bus.start()
        service.start()
    log.info("running: %s", ", ".join(names))
    while not stop.wait(3600):
        pass
    for service in reversed(services):
        try:
            service.stop()
        finally:
            service.bus.stop()
    log.info("stopped: %s", ", ".join(names))
    return 0
