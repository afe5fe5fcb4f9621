"""A device's availability with a last will of its own.

MQTT gives one will per connection, and the Bus's will is the service's ``status``: after a
kill -9 that alone went offline, while ``<p>/<service>/<device>/availability`` stayed
``online`` (retained) and every consumer of the device believed it. So each device gets a
small connection of its own whose will is ``offline`` on its availability topic, and which
is the only writer of that topic (one connection, so its messages stay in order).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from services.core.bus import Bus, new_client
from services.core.contract import Presence

log = logging.getLogger(__name__)


def _client_id(service: str, device: str) -> str:
    """Unique per process and device; hashed when too long (brokers may cap ids)."""
    text = f"enerbox-{service}-{device}-{socket.gethostname()}-{os.getpid()}"
    if len(text) <= 64:
        return text
    return f"enerbox-{service[:12]}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


class DeviceAvailability:
    """Publishes one device's online/offline (retained, QoS 1) on a connection whose last
    will says ``offline``: a dead process takes its devices offline at once."""

    def __init__(self, bus: Bus, device: str) -> None:
        self.config = bus.config  # the Bus's broker, credentials, keepalive and backoff
        self.topic = bus.topics.availability(device)
        self.context = f"service={bus.topics.service} device={device}"
        self.online: bool | None = None  # what the device is; None until first told
        self._connected = False
        self._started = False
        self._lock = threading.Lock()
        client = new_client(self.config, _client_id(bus.topics.service, device))
        client.will_set(self.topic, Presence(False).encode(), qos=1, retain=True)
        # No subscriptions: the queue only ever holds availability changes.
        client.max_queued_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    def start(self) -> None:
        """Connect in the background; retries like the Bus until the broker answers."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        self._client.loop_start()

    def set(self, online: bool) -> None:
        """Publish the device's availability now (or as soon as connected)."""
        self.start()
        with self._lock:
            self.online = online
            if self._connected:
                self._send(online)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Clean stop: ``offline`` on purpose (no will after a clean disconnect)."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            self.online = False
            info = self._send(False) if self._connected else None
        if info is not None:
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("%s could not publish offline availability", self.context)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected = False

    def _send(self, online: bool) -> mqtt.MQTTMessageInfo:
        return self._client.publish(self.topic, Presence(online).encode(), qos=1, retain=True)

    # -- paho callbacks (its network thread) ---------------------------------------------

    def _on_connect(
        self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags,
        reason: ReasonCode, _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            # The Bus, on the same broker with the same credentials, says why (once).
            log.debug("%s availability connection refused: %s", self.context, reason)
            return
        with self._lock:
            self._connected = True
            # The broker may have lost the retained value (restart without persistence),
            # and our will may have replaced it while we were cut off: say it again.
            if self.online is not None:
                self._send(self.online)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags,
        _reason: ReasonCode, _props: Properties | None,
    ) -> None:
        with self._lock:
            self._connected = False
