"""teleinfo service: read Linky meters on serial ports and publish them on MQTT."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import serial

from services.core.bus import Bus
from services.core.device import DevicePublisher
from services.core.serial_link import LineSettings, PortError, SerialLink
from services.core.service import Service
from services.teleinfo.config import MeterConfig, TeleinfoConfig
from services.teleinfo.detect import ModeDetector
from services.teleinfo.fields import FIELDS, normalize, raw_labels
from services.teleinfo.protocol import Decoder, Frame, Mode

log = logging.getLogger(__name__)


def line_settings(mode: Mode) -> LineSettings:
    """Both TIC modes are 7E1; only the speed differs."""
    return LineSettings(mode.baudrate, serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_ONE)


class MeterReader(threading.Thread):
    """One meter on one port: read, decode, publish; survive unplugging."""

    def __init__(self, meter: MeterConfig, config: Any, bus: Bus) -> None:
        super().__init__(name=f"teleinfo-{meter.id}", daemon=True)
        self.meter = meter
        self.cfg: TeleinfoConfig = config.teleinfo
        self.ha = config.homeassistant
        self.bus = bus
        self.device = meter.id
        self.stop_event = threading.Event()
        self.configured_mode = None if meter.mode == "auto" else Mode(meter.mode)
        self.mode = self.configured_mode
        first = self.mode or Mode.HISTORIQUE
        self.link = SerialLink(
            meter.port, line_settings(first), self.stop_event,
            reconnect_max_s=self.cfg.reconnect_max_s,
            context=f"service=teleinfo device={meter.id} port={meter.port}",
            on_error=self._port_error,
        )
        self.decoder = Decoder(self.mode)
        self.out = DevicePublisher(
            bus, self.device, FIELDS,
            self.ha.discovery_prefix if self.ha.discovery else None,
        )
        self.last_valid = 0.0
        self.reconnects = 0
        self.readings = 0
        self._next_diag = 0.0

    # -- thread ------------------------------------------------------------------------------

    def run(self) -> None:
        """Open, read until the port is lost, repeat until stopped."""
        self._set_online(False, "starting")
        while not self.stop_event.is_set():
            if not self.link.open_with_retry():
                break
            if self.link.opens > 1:
                self.reconnects += 1
            try:
                self._read_loop()
            except PortError as exc:
                reason = f"port lost: {exc}"
                log.warning("service=teleinfo device=%s %s", self.device, reason)
                self.link.last_error = reason
                self._set_online(False, reason)
            finally:
                self.link.close()
            self.stop_event.wait(0.5)
        self.link.close()

    def stop(self) -> None:
        """Ask the thread to end and wait for it."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=3)
        self._set_online(False, "service stopped")

    def _read_loop(self) -> None:
        self.decoder.reset()
        now = time.monotonic()
        self.last_valid = now
        detector = None if self.mode else ModeDetector()
        switch_at = now + self.cfg.detect_timeout_s
        while not self.stop_event.is_set():
            data = self.link.read()
            now = time.monotonic()
            if detector is not None:
                found = detector.feed(data)
                if found is None:
                    if now >= switch_at:  # wrong speed gives only garbage: try the other one
                        other = 9600 if self.link.settings.baudrate == 1200 else 1200
                        self.link.set_baudrate(other)
                        detector = ModeDetector()
                        switch_at = now + self.cfg.detect_timeout_s
                    self._tick(now)
                    continue
                self._mode_found(found)
                data = bytes(detector.buffer)  # the bytes that proved the mode are a frame too
                detector = None
            for frame in self.decoder.feed(data):
                self._on_frame(frame, now)
            silent = self._tick(now)
            if silent and self.configured_mode is None:
                # Silent too long in auto mode: Enedis may have switched the meter to the
                # other mode. Listen at both speeds again.
                self.mode = None
                self.decoder = Decoder(None)
                detector = ModeDetector()
                switch_at = now + self.cfg.detect_timeout_s
                self.last_valid = now

    def _mode_found(self, mode: Mode) -> None:
        self.mode = mode
        self.decoder = Decoder(mode)
        if self.link.settings.baudrate != mode.baudrate:
            self.link.set_baudrate(mode.baudrate)
        log.info("service=teleinfo device=%s detected TIC %s", self.device, mode.value)
        self.bus.event("mode_detected", device=self.device, mode=mode.value)

    def _tick(self, now: float) -> bool:
        """Availability timeout and periodic diagnostics; True when silent for too long."""
        silent = now - self.last_valid > self.cfg.offline_after_s
        if silent and self.out.online:
            self._set_online(False, f"no valid frame for {self.cfg.offline_after_s:g} s")
        if now >= self._next_diag:
            self._publish_diagnostics()
        return silent

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

    def _port_error(self, error: str) -> None:
        self.bus.event("port_error", device=self.device, error=error)
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


class TeleinfoService(Service):
    """Reads every configured meter, one thread per port."""

    name = "teleinfo"

    def __init__(self, config: Any, bus: Bus) -> None:
        super().__init__(config, bus)
        self.readers = [MeterReader(m, config, bus) for m in config.teleinfo.meters]
        if config.homeassistant.discovery:
            bus.subscribe(f"{config.homeassistant.discovery_prefix}/status", self._ha_status)

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            for reader in self.readers:
                reader.rediscover()

    def start(self) -> None:
        """Start one reader thread per meter."""
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        """Stop readers; their devices go offline."""
        for reader in self.readers:
            reader.stop_event.set()
        for reader in self.readers:
            reader.stop()
