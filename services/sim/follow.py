"""The simulators follow the relays: what the stack switches on shows on the simulated meter.

A RelayFollower subscribes to ``<p>/relays/+/state`` and keeps, per relay, whether its load
draws power; ``steered_va()`` is the sum of the powers of those that do. Without a broker (the
simulators' own tests, a broker not up yet) it never fails: nothing is followed, and paho
keeps trying to connect in its own thread. A lost connection forgets every relay (an unknown
output draws nothing) until the retained states come back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from services.core.contract import ON_ORDERS, Rejection, RelayReport, TopicKind, Topics

log = logging.getLogger(__name__)

# A relay neither the automation nor shedding gives a power for: a typical 1 kW load.
DEFAULT_RELAY_W = 1000.0


def draws_power(output: str) -> bool:
    """True when a relay's output makes its load draw its rated power in the simulation.

    A switch: "on". A fil pilote zone: confort, confort-1, confort-2 only (the automation's
    "on"); eco heats to a lower set point that a mild simulated day never calls for.
    """
    return output == "on" or output in ON_ORDERS


def relay_powers(config_file: Path | None) -> dict[str, float]:
    """Each relay's power (W): the automation's ``power_w``, else shedding's, else the default.

    An unreadable config gives no powers (every relay then draws DEFAULT_RELAY_W).
    """
    if config_file is None:
        return {}
    from services.app.root_config import load_config  # noqa: PLC0415 (the app imports the sim)
    from services.core.config import ConfigError  # noqa: PLC0415

    try:
        config = load_config(config_file, required=True, env={})
    except ConfigError as exc:
        log.warning("relay powers: %s; every relay counts %s W", exc, DEFAULT_RELAY_W)
        return {}
    powers = {r.id: DEFAULT_RELAY_W for r in config.relays.relays}
    powers.update({load.relay: load.power_w for load in config.shedding.loads
                   if load.power_w is not None})
    powers.update({load.relay: load.power_w for load in config.automation.loads
                   if load.power_w is not None})
    return powers


class RelayFollower:
    """Follows every relay's state on a broker; thread-safe ``steered_va()``."""

    def __init__(self, host: str, port: int, prefix: str = "enerbox",
                 powers: Mapping[str, float] | None = None,
                 default_w: float = DEFAULT_RELAY_W) -> None:
        self.topics = Topics(prefix, "sim")
        self.host, self.port = host, port
        self.powers = dict(powers or {})
        self.default_w = default_w
        self._on: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 5)

    def start(self) -> RelayFollower:
        """Connect in the background (retried until the broker answers)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> RelayFollower:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def on_relays(self) -> dict[str, float]:
        """The relays whose load draws power now, with that power (W)."""
        with self._lock:
            return {r: self.powers.get(r, self.default_w) for r, on in self._on.items() if on}

    def steered_va(self) -> float:
        """Total power of the followed loads that are on (VA, taken as W: resistive loads)."""
        return sum(self.on_relays().values())

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: Any,
                    _p: object = None) -> None:
        if reason.is_failure:
            return
        client.subscribe(self.topics.any_device(TopicKind.STATE, "relays"))
        self.connected.set()
        log.info("following relays on %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _r: object,
                       _p: object = None) -> None:
        self.connected.clear()
        with self._lock:
            self._on.clear()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        topic = self.topics.parse(msg.topic)
        if topic is None or topic.kind != TopicKind.STATE or topic.device is None:
            return
        if not msg.payload:  # a retained state cleared: its output is unknown
            with self._lock:
                self._on.pop(topic.device, None)
            return
        report = RelayReport.decode(bytes(msg.payload))
        output = None if isinstance(report, Rejection) else report.output
        with self._lock:
            if output is None:
                self._on.pop(topic.device, None)
            else:
                self._on[topic.device] = draws_power(output)
