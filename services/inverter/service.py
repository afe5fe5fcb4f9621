"""inverter service: poll SunSpec (Modbus TCP/RTU) and Aurora inverters and meters, one
thread per bus, and publish each device's state, fields, raw labels, availability,
diagnostics and Home Assistant discovery."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract.topics import ha_status_topic
from services.core.device import DevicePublisher
from services.core.service import Service
from services.core.store import load_json, save_json
from services.inverter.config import BusConfig, InverterConfig
from services.inverter.fields import FIELDS
from services.inverter.poller import Outcome, Publish
from services.inverter.worker import BusWorker, Device

log = logging.getLogger(__name__)
SAVE_EVERY_S = 300.0  # the counters on disk lag at most this (and a clean stop saves them)


class InverterService(Service[InverterConfig]):
    """One BusWorker per configured bus; this object is their Sink."""

    name = "inverter"

    def __init__(self, config: Settings[InverterConfig], bus: Bus) -> None:
        super().__init__(config, bus)
        ha = config.homeassistant
        self.discovery_prefix = ha.discovery_prefix if ha.discovery else None
        self.workers = [BusWorker(b, config.section, self) for b in config.section.buses]
        self._out: dict[str, DevicePublisher] = {}  # published device id -> its topics
        self._of: dict[str, list[DevicePublisher]] = {}  # configured device id -> its groups
        self._online: dict[str, bool] = {}  # configured device id -> availability
        self._lock = threading.Lock()
        self.state_file = Path(config.general.data_dir) / "inverter.json"
        self._saved: dict[str, Any] = {}  # as on disk
        self._snaps: dict[str, Any] = {}  # each device's latest, taken on its bus's thread
        self._save_at = 0.0
        self._restore()
        if not self.workers:
            log.info("service=inverter no bus configured: idle")
        if ha.discovery:
            bus.subscribe(ha_status_topic(ha.discovery_prefix), self._ha_status)

    def start(self) -> None:
        """Start one thread per bus."""
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        """Stop every bus (all at once, then wait); devices go offline."""
        for worker in self.workers:
            worker.stop_event.set()
        for worker in self.workers:
            worker.stop()
        with self._lock:
            publishers = list(self._out.values())
        for out in publishers:
            out.close()
        self._save(force=True)

    def _restore(self) -> None:
        saved = load_json(self.state_file)
        if not isinstance(saved, dict):
            return
        for worker in self.workers:
            for device in worker.devices:
                device.poller.restore(saved.get(device.cfg.id))
        self._saved = saved

    def _save(self, *, force: bool = False) -> None:
        """The pollers' counters and identities, when they changed (at most every
        SAVE_EVERY_S: an SD card, not a database)."""
        now = time.monotonic()
        with self._lock:
            if not force and now < self._save_at:
                return
            state = {**self._saved, **self._snaps}
            if state == self._saved:
                return
            self._save_at = now + SAVE_EVERY_S
            self._saved = state
        try:
            save_json(self.state_file, state)
        except OSError as exc:
            log.warning("service=inverter cannot save %s: %s", self.state_file, exc)

    def healthy(self) -> bool:
        """Every bus thread runs."""
        return all(w.is_alive() or w.stop_event.is_set() for w in self.workers)

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            with self._lock:
                publishers = list(self._out.values())
            for out in publishers:
                out.discover(force=True)

    # -- Sink ----------------------------------------------------------------------------------

    def outcome(self, bus: BusConfig, device: Device, outcome: Outcome) -> None:
        """Publish what one poll decided."""
        ctx = f"service=inverter bus={bus.name} device={device.cfg.id}"
        if outcome.log and outcome.online is not False:  # offline: set_online says it
            log.info("%s %s", ctx, outcome.log)
        for item in outcome.publish:
            out = self._publisher(device, item)
            out.device_info = self._device_info(device, item)
            raw = item.raw if self.config.section.publish_raw and item.raw else None
            out.publish(item.fields, raw)
        if outcome.online is not None:
            self._online[device.cfg.id] = outcome.online
            for out in self._publishers_of(device):
                out.set_online(outcome.online, outcome.log or outcome.reason)
        for kind, data in outcome.events:
            self.bus.event(kind, device=device.cfg.id, **data)
        if outcome.publish:
            # Taken here, on the bus's own thread: the one that changes this poller.
            with self._lock:
                self._snaps[device.cfg.id] = device.poller.snapshot()
            self._save()

    def diagnostics(self, bus: BusConfig, device: Device, counters: dict[str, Any]) -> None:
        """Retained counters on each of the device's topics."""
        for out in self._publishers_of(device):
            out.diagnostics(counters)

    # -- publishers ----------------------------------------------------------------------------

    def _publisher(self, device: Device, item: Publish) -> DevicePublisher:
        topic_id = f"{device.cfg.id}-{item.group}" if item.group else device.cfg.id
        with self._lock:
            out = self._out.get(topic_id)
            if out is None:
                out = DevicePublisher(self.bus, topic_id, FIELDS, self.discovery_prefix)
                self._out[topic_id] = out
                self._of.setdefault(device.cfg.id, []).append(out)
        if device.cfg.id in self._online:
            out.set_online(self._online[device.cfg.id], quiet=True)
        return out

    def _publishers_of(self, device: Device) -> list[DevicePublisher]:
        with self._lock:
            return list(self._of.get(device.cfg.id, ()))

    def _device_info(self, device: Device, item: Publish) -> dict[str, Any]:
        f = item.fields
        made = " ".join(str(f[k]) for k in ("manufacturer", "model") if k in f)
        name = device.cfg.name or made or device.cfg.id
        info: dict[str, Any] = {
            "name": f"{name} {item.group}" if item.group else name,
            "manufacturer": f.get("manufacturer", "SunSpec device"),
            "model": f.get("model", item.kind),
        }
        if "serial" in f:
            info["serial_number"] = str(f["serial"])
        if "firmware" in f:
            info["sw_version"] = str(f["firmware"])
        return info
