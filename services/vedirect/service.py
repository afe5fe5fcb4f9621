"""vedirect service: read Victron devices on VE.Direct ports and publish them on MQTT.

Read-only: it never writes to a port (any valid HEX message would switch the device to
HEX mode). A device is named by its serial number, so it keeps its topics when its USB
cable moves to another port.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract import EventKind
from services.core.contract.topics import slug
from services.core.device import DevicePublisher
from services.core.port_reader import PortReader, PortService
from services.core.serial_link import LineSettings
from services.vedirect.config import PortConfig, VedirectConfig
from services.vedirect.fields import FIELDS, IMMEDIATE, normalize
from services.vedirect.protocol import Decoder

log = logging.getLogger(__name__)

LINE = LineSettings(19200)  # 8N1


class VedirectReader(PortReader):
    """One VE.Direct port; the device behind it is found from its readings."""

    def __init__(self, port: PortConfig, config: Settings[VedirectConfig], bus: Bus) -> None:
        self.port_cfg = port
        self.cfg = config.section
        self.bus = bus
        ha = config.homeassistant
        self.discovery_prefix = ha.discovery_prefix if ha.discovery else None
        self.decoder = Decoder()
        self.out: DevicePublisher | None = None
        self.last_valid = 0.0
        self.last_sent = 0.0
        self.sent: dict[str, Any] = {}
        self._next_diag = 0.0
        if port.id:
            self._use_device(port.id)
        super().__init__(
            f"vedirect-{port.port}", port.port, LINE, self.cfg.reconnect_max_s,
            f"service=vedirect port={port.port}",
        )

    def _use_device(self, device: str) -> DevicePublisher:
        if self.out is None or self.out.device != device:
            if self.out is not None:  # another device on this cable now
                self.out.set_online(False, f"replaced by {device} on {self.port_cfg.port}")
                self.out.close()
            self.out = DevicePublisher(self.bus, device, FIELDS, self.discovery_prefix)
            self.sent = {}
        return self.out

    def stop(self) -> None:
        """Stop reading; the device goes offline and its availability connection closes."""
        super().stop()
        if self.out is not None:
            self.out.close()

    def on_open(self, now: float) -> None:
        """A fresh port: nothing half-read carries over."""
        self.decoder.silence()
        self.last_valid = now

    def on_lost(self, reason: str) -> None:
        """Cable pulled: the device is offline at once."""
        if self.out is not None and self.out.set_online(False, reason):
            self._publish_diagnostics()

    def on_port_error(self, error: str) -> None:
        """The port cannot be opened: say so once (the link retries)."""
        self.bus.event(EventKind.PORT_ERROR, port=self.port_cfg.port, error=error)

    def on_data(self, data: bytes, now: float) -> None:
        """Decode; publish each reading (rate-limited unless a state changed)."""
        for raw in self.decoder.feed(data, now):
            self.last_valid = now
            reading = normalize(raw)
            out = self._use_device(self._device_id(reading))
            if out.set_online(True):
                self._publish_diagnostics()
            changed = any(reading.get(k) != self.sent.get(k) for k in IMMEDIATE)
            if not changed and now - self.last_sent < self.cfg.min_interval_s:
                continue
            out.device_info = self._device_info(reading)
            out.publish(reading, raw if self.cfg.publish_raw else None)
            self.sent = reading
            self.last_sent = now

    def _device_id(self, reading: dict[str, Any]) -> str:
        """Configured id, else the serial number; BMVs send none, so then the cable's
        /dev/serial/by-id name, which carries the VE.Direct cable's own serial."""
        if self.port_cfg.id:
            return self.port_cfg.id
        if "serial" in reading:
            return slug(reading["serial"])
        return slug(Path(self.port_cfg.port).name)

    def _device_info(self, reading: dict[str, Any]) -> dict[str, Any]:
        product = reading.get("product_name", "Victron device")
        info: dict[str, Any] = {
            "name": self.port_cfg.name or f"{product} {reading.get('serial', '')}".strip(),
            "manufacturer": "Victron Energy",
            "model": product,
        }
        if "serial" in reading:
            info["serial_number"] = reading["serial"]
        if "firmware" in reading:
            info["sw_version"] = reading["firmware"]
        return info

    def on_tick(self, now: float) -> None:
        """Availability timeout and periodic diagnostics."""
        out = self.out
        if out is not None and out.online and now - self.last_valid > self.cfg.offline_after_s:
            out.set_online(False, f"no valid reading for {self.cfg.offline_after_s:g} s")
            self._publish_diagnostics()
        if now >= self._next_diag:
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        self._next_diag = time.monotonic() + self.cfg.diagnostics_interval_s
        if self.out is None:
            return
        s = self.decoder.stats
        self.out.diagnostics({
            "port": self.port_cfg.port,
            "readings": s.readings,
            "blocks_ok": s.blocks_valid,
            "blocks_bad": s.blocks_invalid,
            "hex_messages": s.hex_messages,
            "bytes_skipped": s.bytes_skipped,
            "resets_after_silence": s.resets,
            "reconnects": self.reconnects,
            "last_error": self.link.last_error,
        })

    def rediscover(self) -> None:
        """Home Assistant restarted: send discovery again."""
        if self.out is not None:
            self.out.discover(force=True)


class VedirectService(PortService[VedirectConfig]):
    """Reads every configured VE.Direct port, one thread per port."""

    name = "vedirect"

    def __init__(self, config: Settings[VedirectConfig], bus: Bus) -> None:
        readers = [VedirectReader(x, config, bus) for x in config.section.ports]
        super().__init__(config, bus, readers)
