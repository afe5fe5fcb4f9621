"""What every device service publishes for one device: state, fields, raw, availability,
diagnostics and Home Assistant discovery (DESIGN.md, 'MQTT contract')."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from services.core.availability import DeviceAvailability
from services.core.bus import Bus, to_json, utc_now_iso
from services.core.contract import EventKind
from services.core.discovery import announce, components, device_config, diagnostics_component
from services.core.fields import FieldSpec, field_payload

log = logging.getLogger(__name__)


def _shape(reading: Mapping[str, Any]) -> tuple[Any, ...]:
    """What discovery depends on: the keys, list lengths and object keys, not the values."""
    return tuple(
        (k, tuple(v) if isinstance(v, Mapping) else len(v) if isinstance(v, list) else None)
        for k, v in sorted(reading.items())
    )


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
        self.availability = DeviceAvailability(bus, device)
        self._fields: dict[str, str] | None = None  # None until the first reading
        # Every HA component announced since start. A field that leaves a reading keeps its
        # component (its template then renders "unknown"): dropping it would leave HA with
        # the entity's last value. Kept for the life of the process only: announcing the
        # whole field table instead would give every device dozens of entities it never
        # has (EJP on a Tempo meter, MPPT fields on a battery monitor). After a restart,
        # a field absent from the first reading has its retained per-field topic cleared.
        self._comps: dict[str, dict[str, Any]] = {}
        self._shapes: set[tuple[Any, ...]] = set()
        self._version = 0  # bumped when a component is added or changes
        self._discovered: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self._service = bus.topics.service

    def publish(self, reading: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> None:
        """State (with ``ts``), changed per-field topics, raw labels, discovery if needed."""
        topics = self.bus.topics
        self.bus.publish_state(topics.state(self.device), {**reading, "ts": utc_now_iso()})
        self._publish_fields(reading)
        if raw is not None:
            self.bus.publish(topics.raw(self.device), to_json(raw))
        self._learn(reading)
        self.discover()

    def _publish_fields(self, reading: Mapping[str, Any]) -> None:
        topics = self.bus.topics
        if self._fields is None:
            # First reading of this process: a value a previous run left retained for a
            # field this reading lacks is stale. Clear it (once, one message per field).
            self._fields = {}
            gone: Iterable[str] = [s.key for s in self.specs if s.key not in reading]
        else:
            gone = [k for k in self._fields if k not in reading]
        for key in gone:
            self._fields.pop(key, None)
            self.bus.clear_retained(topics.field(self.device, key))
        for key, value in reading.items():
            payload = field_payload(value)
            if self._fields.get(key) != payload:
                self._fields[key] = payload
                self.bus.publish_retained(topics.field(self.device, key), payload)

    def _learn(self, reading: Mapping[str, Any]) -> None:
        """Add the components of a reading of a new shape to those announced."""
        if self.discovery_prefix is None:
            return
        shape = _shape(reading)
        with self._lock:
            if shape in self._shapes:
                return
            self._shapes.add(shape)
            new = components(self.bus.topics, self.device, self.specs, reading)
            if any(self._comps.get(uid) != comp for uid, comp in new.items()):
                self._comps.update(new)
                self._version += 1

    def set_online(self, online: bool, reason: str | None = None, quiet: bool = False) -> bool:
        """Publish availability on a change (and an event); True when it changed."""
        if online == self.online:
            return False
        previous, self.online = self.online, online
        self.availability.set(online)
        ctx = f"service={self._service} device={self.device}"
        if online:
            log.info("%s online", ctx)
            self.bus.event(EventKind.DEVICE_FOUND, device=self.device)
        elif previous:
            log.log(logging.INFO if quiet else logging.WARNING, "%s offline: %s", ctx, reason)
            self.bus.event(EventKind.DEVICE_LOST, device=self.device, reason=reason)
        return True

    def close(self, reason: str = "service stopped") -> None:
        """The device is no longer read here: offline, and its availability connection
        closes cleanly (so its last will is not sent on top)."""
        self.set_online(False, reason, quiet=True)
        self.availability.stop()

    def diagnostics(self, counters: Mapping[str, Any]) -> None:
        """Retained JSON counters."""
        self.bus.publish_retained(
            self.bus.topics.diagnostics(self.device),
            to_json({**counters, "ts": utc_now_iso()}),
        )

    def discover(self, force: bool = False) -> None:
        """Send HA discovery when components were added or the device info changed (or
        forced: Home Assistant restarted)."""
        if self.discovery_prefix is None:
            return
        with self._lock:
            if not self._comps:
                return
            key = (self._version, tuple(sorted(self.device_info.items())))
            if key == self._discovered and not force:
                return
            self._discovered = key
            comps = {**self._comps, **diagnostics_component(self.bus.topics, self.device)}
        topic, payload = device_config(
            topics=self.bus.topics, device=self.device, device_info=self.device_info,
            comps=comps, discovery_prefix=self.discovery_prefix,
        )
        announce(self.bus, self.device, topic, to_json(payload),
                 self.discovery_prefix)
