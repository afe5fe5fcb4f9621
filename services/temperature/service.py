"""temperature service: read 1-Wire DS18B20 probes in one thread and publish each probe's
state, field, raw scratchpad, availability, diagnostics and Home Assistant discovery.

Each probe is a device of its own: one that fails (CRC, 85 °C, all zero, a jump) publishes
nothing and counts it, and only its own availability goes offline; the others carry on
(emonhub drops every sensor's reading when one fails its CRC).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract.topics import ha_status_topic
from services.core.device import DevicePublisher
from services.core.service import Service
from services.temperature.config import TemperatureConfig
from services.temperature.fields import FIELDS
from services.temperature.reader import BusReader, Outcome
from services.temperature.w1 import FAMILIES

log = logging.getLogger(__name__)


class TemperatureService(Service[TemperatureConfig]):
    """One reader thread for the whole 1-Wire tree; one DevicePublisher per probe."""

    name = "temperature"

    def __init__(self, config: Settings[TemperatureConfig], bus: Bus) -> None:
        super().__init__(config, bus)
        section = config.section
        ha = config.homeassistant
        self.discovery_prefix = ha.discovery_prefix if ha.discovery else None
        self.reader = BusReader(section.root, section.max_step_c)
        self.named = {p.address: p for p in section.probes}
        self._out: dict[str, DevicePublisher] = {}  # address -> its topics
        self._failures: dict[str, int] = {}  # address -> cycles in a row without a value
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="temperature", daemon=True)
        self.cycle_s: float | None = None  # how long the last read cycle took
        self._empty = False  # the last rescan found no probe
        if ha.discovery:
            bus.subscribe(ha_status_topic(ha.discovery_prefix), self._ha_status)

    def start(self) -> None:
        """Start the reader thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop reading (a conversion under way finishes first); probes go offline."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join()
        with self._lock:
            publishers = list(self._out.values())
        for out in publishers:
            out.close()

    def healthy(self) -> bool:
        """The reader thread runs."""
        return self.thread.is_alive() or self.stop_event.is_set()

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            with self._lock:
                publishers = list(self._out.values())
            for out in publishers:
                out.discover(force=True)

    # -- the reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        section = self.config.section
        for address in self.named:  # named probes are known offline until found
            self._publisher(address).set_online(False, "not found on the 1-Wire bus")
        now = time.monotonic()
        due = rescan_at = diag_at = now
        while not self.stop_event.is_set():
            if time.monotonic() >= rescan_at:
                self._rescan()
                rescan_at = time.monotonic() + section.rescan_s
            start = time.monotonic()
            for outcome in self.reader.cycle():
                self._outcome(outcome)
            self.cycle_s = time.monotonic() - start
            if time.monotonic() >= diag_at:
                self._diagnostics()
                diag_at = time.monotonic() + section.diagnostics_interval_s
            # The period runs from when the cycle was due; a late cycle skips, never bursts.
            due += section.interval_s
            due = max(due, time.monotonic())
            self.stop_event.wait(due - time.monotonic())

    def _rescan(self) -> None:
        appeared, vanished = self.reader.rescan()
        for address in appeared:
            log.info("service=temperature probe %s found", address)
        for address in vanished:
            self._publisher(address).set_online(False, "gone from the 1-Wire bus")
        empty = not self.reader.probes
        if empty != self._empty:  # said once per change, not every rescan
            self._empty = empty
            if empty:
                log.warning("service=temperature no probe under %s (is the w1-gpio overlay "
                            "loaded?)", self.reader.root)

    def _outcome(self, outcome: Outcome) -> None:
        out = self._publisher(outcome.address)
        if outcome.gone:
            out.set_online(False, "gone from the 1-Wire bus")
            return
        if outcome.value_c is None:
            failures = self._failures.get(outcome.address, 0) + 1
            self._failures[outcome.address] = failures
            if failures >= self.config.section.offline_after_failures:
                out.set_online(False, f"no good read in {failures} cycles: {outcome.error}")
            return
        self._failures[outcome.address] = 0
        raw = None
        if outcome.raw is not None:
            raw = {"scratchpad": outcome.raw.scratchpad.hex(" "),
                   "crc": "YES" if outcome.raw.crc_ok else "NO", "t": outcome.raw.milli_c}
        out.set_online(True)
        out.publish({"temperature_c": round(outcome.value_c, 3)}, raw)

    def _diagnostics(self) -> None:
        for address, filt in list(self.reader.filters.items()):
            out = self._publisher(address)
            present = self.reader.probes.get(address)
            bulk = present is not None and present.master is not None \
                and present.master in self.reader.bulk_masters()
            out.diagnostics({**filt.counters.as_dict(), "address": address,
                             "present": present is not None, "bulk_read": bulk,
                             "cycle_ms": None if self.cycle_s is None
                             else round(self.cycle_s * 1000, 1)})

    def _publisher(self, address: str) -> DevicePublisher:
        with self._lock:
            out = self._out.get(address)
            if out is None:
                named = self.named.get(address)
                device = named.id if named else address
                out = DevicePublisher(self.bus, device, FIELDS, self.discovery_prefix)
                out.device_info = self._device_info(address)
                self._out[address] = out
            return out

    def _device_info(self, address: str) -> dict[str, Any]:
        named = self.named.get(address)
        return {
            "name": (named.name or named.id) if named else f"Probe {address}",
            "manufacturer": "Maxim Integrated",
            "model": FAMILIES.get(address[:2], "1-Wire thermometer"),
            "serial_number": address,
        }
