"""teleinfo service: read Linky meters on serial ports and publish them on MQTT."""

from __future__ import annotations

import logging
import time
from typing import Any

import serial

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract import EventKind
from services.core.device import DevicePublisher
from services.core.port_reader import PortReader, PortService
from services.core.serial_link import LineSettings
from services.teleinfo.config import MeterConfig, TeleinfoConfig
from services.teleinfo.detect import ModeDetector
from services.teleinfo.fields import FIELDS, normalize, raw_labels
from services.teleinfo.protocol import Decoder, Frame, Mode

log = logging.getLogger(__name__)


def line_settings(mode: Mode) -> LineSettings:
    """Both TIC modes are 7E1; only the speed differs."""
    return LineSettings(mode.baudrate, serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_ONE)


class MeterReader(PortReader):
    """One meter on one port: read, decode, publish; survive unplugging."""

    def __init__(self, meter: MeterConfig, config: Settings[TeleinfoConfig], bus: Bus) -> None:
        self.meter = meter
        self.cfg = config.section
        self.bus = bus
        self.device = meter.id
        self.configured_mode = None if meter.mode == "auto" else Mode(meter.mode)
        self.mode = self.configured_mode
        self.decoder = Decoder(self.mode)
        self.detector: ModeDetector | None = None
        self.switch_at = 0.0
        ha = config.homeassistant
        self.out = DevicePublisher(
            bus, self.device, FIELDS, ha.discovery_prefix if ha.discovery else None
        )
        self.last_valid = 0.0
        self.readings = 0
        self._next_diag = 0.0
        super().__init__(
            f"teleinfo-{meter.id}", meter.port, line_settings(self.mode or Mode.HISTORIQUE),
            self.cfg.reconnect_max_s, f"service=teleinfo device={meter.id} port={meter.port}",
        )

    def run(self) -> None:
        """Start offline (until the first valid frame), then read."""
        self._set_online(False, "starting")
        super().run()

    def stop(self) -> None:
        """Stop reading; the meter goes offline and its availability connection closes."""
        super().stop()
        self._set_online(False, "service stopped")
        self.out.close()

    def on_open(self, now: float) -> None:
        """A fresh port: forget partial frames; detect the mode when it is not set."""
        self.decoder.reset()
        self.last_valid = now
        self._listen(now)

    def on_lost(self, reason: str) -> None:
        """Port gone: offline at once."""
        self._set_online(False, reason)

    def _listen(self, now: float) -> None:
        if self.mode is None:
            self.detector = ModeDetector()
            self.switch_at = now + self.cfg.detect_timeout_s

    def on_data(self, data: bytes, now: float) -> None:
        """Detect the mode if needed, then decode and publish."""
        if self.detector is not None:
            found = self.detector.feed(data)
            if found is None:
                return
            self._mode_found(found)
            data = bytes(self.detector.buffer)  # the bytes that proved the mode are a frame too
            self.detector = None
        for frame in self.decoder.feed(data):
            self._on_frame(frame, now)

    def on_tick(self, now: float) -> None:
        """Speed switching while detecting, the availability timeout, diagnostics."""
        if self.detector is not None and now >= self.switch_at:
            # Wrong speed gives only garbage: try the other one.
            other = 9600 if self.link.settings.baudrate == 1200 else 1200
            self.link.set_baudrate(other)
            self._listen(now)
        if now - self.last_valid > self.cfg.offline_after_s:
            if self.out.online:
                self._set_online(False, f"no valid frame for {self.cfg.offline_after_s:g} s")
            if self.configured_mode is None and self.detector is None:
                # Silent too long in auto mode: Enedis may have switched the meter to the
                # other mode. Listen at both speeds again.
                self.mode = None
                self.decoder = Decoder(None)
                self._listen(now)
                self.last_valid = now
        if now >= self._next_diag:
            self._publish_diagnostics()

    def _mode_found(self, mode: Mode) -> None:
        self.mode = mode
        self.decoder = Decoder(mode)
        if self.link.settings.baudrate != mode.baudrate:
            self.link.set_baudrate(mode.baudrate)
        log.info("service=teleinfo device=%s detected TIC %s", self.device, mode.value)
        self.bus.event(EventKind.MODE_DETECTED, device=self.device, mode=mode.value)

    # -- publishing --------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        if not frame.groups:
            return  # a frame of noise: nothing valid to say, and not a sign of life
        reading = normalize(frame)
        self.last_valid = now
        self.readings += 1
        if self.out.online is not True:
            self._set_online(True, None)
        mode = self.mode.value if self.mode else "?"
        info = {
            "name": self.meter.name or f"Linky {self.device}",
            "manufacturer": "Enedis",
            "model": f"Linky (TIC {mode})",
        }
        if "meter_id" in reading:
            info["serial_number"] = reading["meter_id"]
        self.out.device_info = info
        self.out.publish(reading, raw_labels(frame) if self.cfg.publish_raw else None)

    def on_port_error(self, error: str) -> None:
        """The port cannot be opened: say so once (the link retries)."""
        self.bus.event(EventKind.PORT_ERROR, device=self.device, error=error)
        self._publish_diagnostics()

    def _set_online(self, online: bool, reason: str | None) -> None:
        if self.out.set_online(online, reason, quiet=self.stop_event.is_set()):
            self._publish_diagnostics()

    def diagnostics(self) -> dict[str, Any]:
        """Counters published on .../diagnostics."""
        s = self.decoder.stats
        return {
            "port": self.meter.port,
            "mode": self.mode and self.mode.value,
            "baudrate": self.link.settings.baudrate,
            "readings": self.readings,
            "frames_ok": s.frames_valid,
            "frames_bad": s.frames - s.frames_valid,
            "frames_interrupted": s.frames_interrupted,
            "groups_ok": s.groups_valid,
            "groups_bad_checksum": s.groups_invalid,
            "groups_malformed": s.groups_malformed,
            "bytes_skipped": s.bytes_skipped,
            "reconnects": self.reconnects,
            "last_error": self.link.last_error,
        }

    def _publish_diagnostics(self) -> None:
        self._next_diag = time.monotonic() + self.cfg.diagnostics_interval_s
        self.out.diagnostics(self.diagnostics())

    def rediscover(self) -> None:
        """Home Assistant restarted: send discovery again."""
        self.out.discover(force=True)


class TeleinfoService(PortService[TeleinfoConfig]):
    """Reads every configured meter, one thread per port."""

    name = "teleinfo"

    def __init__(self, config: Settings[TeleinfoConfig], bus: Bus) -> None:
        readers = [MeterReader(x, config, bus) for x in config.section.meters]
        super().__init__(config, bus, readers)
