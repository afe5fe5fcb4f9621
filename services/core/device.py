"""What every device service publishes for one device: state, fields, raw, availability,
diagnostics and Home Assistant discovery (DESIGN.md, 'MQTT contract')."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from services.core.bus import Bus, to_json, utc_now_iso
from services.core.discovery import components, device_config
from services.core.fields import FieldSpec, field_payload

log = logging.getLogger(__name__)


class DevicePublisher:
    """Publishes one device's topics; remembers enough to re-send discovery on demand."""

    def __init__(
        self,
        bus: Bus,
        device: str,
        specs: Iterable[FieldSpec],
        discovery_prefix: str | None,
    ) -> None:
        self.bus = bus
        self.device = device
        self.specs = tuple(specs)
        self.discovery_prefix = discovery_prefix  # None: no HA discovery
        self.online: bool | None = None
        self.device_info: dict[str, Any] = {}
        self._fields: dict[str, str] = {}
        self._discovered: tuple[Any, ...] | None = None
        self._last: Mapping[str, Any] = {}
        self._lock = threading.Lock()
        self._service = bus.topics.service

    def publish(self, reading: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> None:
        """State (with ``ts``), changed per-field topics, raw labels, discovery if needed."""
        topics = self.bus.topics
        self.bus.publish_state(topics.state(self.device), {**reading, "ts": utc_now_iso()})
        for key, value in reading.items():
            payload = field_payload(value)
            if self._fields.get(key) != payload:
                self._fields[key] = payload
                self.bus.publish_retained(topics.device(self.device, key), payload)
        if raw is not None:
            self.bus.publish(topics.device(self.device, "raw"), to_json(raw))
        self._last = reading
        self.discover()

    def set_online(self, online: bool, reason: str | None = None, quiet: bool = False) -> bool:
        """Publish availability on a change (and an event); True when it changed."""
        if online == self.online:
            return False
        previous, self.online = self.online, online
        self.bus.publish_retained(
            self.bus.topics.availability(self.device), "online" if online else "offline"
        )
        ctx = f"service={self._service} device={self.device}"
        if online:
            log.info("%s online", ctx)
            self.bus.event("device_found", device=self.device)
        elif previous:
            log.log(logging.INFO if quiet else logging.WARNING, "%s offline: %s", ctx, reason)
            self.bus.event("device_lost", device=self.device, reason=reason)
        return True

    def diagnostics(self, counters: Mapping[str, Any]) -> None:
        """Retained JSON counters."""
        self.bus.publish_retained(
            self.bus.topics.device(self.device, "diagnostics"),
            to_json({**counters, "ts": utc_now_iso()}),
        )

    def discover(self, force: bool = False) -> None:
        """Send HA discovery when the set of fields or the device info changed (or forced)."""
        if self.discovery_prefix is None or not self._last:
            return
        reading = self._last
        shape = tuple(
            (k, tuple(v) if isinstance(v, Mapping) else len(v) if isinstance(v, list) else None)
            for k, v in sorted(reading.items())
        )
        key = (shape, tuple(sorted(self.device_info.items())))
        with self._lock:
            if key == self._discovered and not force:
                return
            self._discovered = key
        comps = components(self.bus.topics, self.device, self.specs, reading)
        topic, payload = device_config(
            topics=self.bus.topics, device=self.device, device_info=self.device_info,
            comps=comps, discovery_prefix=self.discovery_prefix,
        )
        self.bus.publish_retained(topic, to_json(payload))
