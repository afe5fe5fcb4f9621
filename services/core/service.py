"""Service lifecycle: start, run until SIGTERM/SIGINT, stop cleanly.

Each service owns one Bus (its own connection, status topic and last will), so in
``enerbox run all`` one crashed or stopped service still shows as ``offline`` on its own.
Which services exist and how their settings are built is the composition root's business
(services/app): ``run`` is given a loader and a builder.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from services.core.bus import Bus
from services.core.config import ConfigError, GeneralConfig, Settings
from services.core.discovery import resolve_identity
from services.core.logs import setup_logging

log = logging.getLogger(__name__)

S = TypeVar("S")
WATCHDOG_S = 1.0  # how often the runner checks its services' workers


class Service(Generic[S]):
    """Base of every service: ``start`` returns quickly, ``stop`` undoes it.

    ``S`` is the type of the service's own section (``config.section``).
    """

    name: ClassVar[str]
    announces: ClassVar[bool] = True  # sends HA discovery (its unique id base is resolved)

    @classmethod
    def session_expiry_s(cls, config: Settings[S]) -> int | None:
        """A durable MQTT session for this service (None: a clean one each time)."""
        return None

    def __init__(self, config: Settings[S], bus: Bus) -> None:
        self.config = config
        self.bus = bus
        ha = config.homeassistant
        if ha.discovery and self.announces:  # unique id base, kept when mqtt.prefix changes
            resolve_identity(ha.unique_id_base, bus.topics.prefix, bus.topics.service,
                             config.general.data_dir)

    def start(self) -> None:
        """Start worker threads; must not block."""

    def stop(self) -> None:
        """Stop worker threads and leave devices in their safe state."""

    def healthy(self) -> bool:
        """False once a worker the service cannot do without has died: the runner then
        stops the process with a non-zero code (systemd/compose restart it) rather than
        leaving it ``online`` and deaf."""
        return True


class RootConfig(Protocol):
    """What ``run`` needs of the whole configuration: the log level."""

    @property
    def general(self) -> GeneralConfig:
        """The shared settings."""
        ...


R = TypeVar("R", bound=RootConfig)


def run(
    names: list[str], config_file: str | None = None, *,
    load_config: Callable[[str | None], R], build: Callable[[str, R], Service[Any]],
) -> int:
    """Run services until SIGTERM/SIGINT; returns the process exit code.

    ``load_config`` reads the whole configuration (ConfigError when it cannot be used);
    ``build`` makes one service, with its own bus, from it.
    """
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
    started: list[Service[Any]] = []
    code = 0
    for service in services:
        service.bus.start()
        try:
            service.start()
        except Exception as exc:  # e.g. the api's port taken: say so, undo, exit 1
            log.critical("service=%s cannot start: %s", service.name, exc)
            service.bus.stop()
            code = 1
            break
        started.append(service)
    if code == 0:
        log.info("running: %s", ", ".join(names))
    while code == 0 and not stop.wait(WATCHDOG_S):
        dead = [s.name for s in services if not s.healthy()]
        if dead:
            log.critical("service(s) %s lost a worker thread: exiting so they restart",
                         ", ".join(dead))
            code = 1
            break
    for service in reversed(started):
        try:
            service.stop()
        finally:
            service.bus.stop()
    log.info("stopped: %s", ", ".join(names))
    return code
