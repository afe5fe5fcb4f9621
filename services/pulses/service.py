"""pulses service: count S0 pulse meters' pulses, one reader thread per meter, and publish
each meter's state, fields, availability, diagnostics and Home Assistant discovery.

The index is saved (data_dir/pulses.json, atomically) every ``save_every_s`` and at a clean
stop; a meter is online only once its saved index is read. After an unclean stop the index
last published (the broker's retained state, up to a second old) may be ahead of the last
save: the first state waits up to RETAINED_WAIT_S for it and takes it, so a kill -9 of the
service never rewinds the index (a power cut, which takes the broker's RAM too, costs at most
``save_every_s`` of pulses). ``<p>/pulses/<id>/set`` sets the
index from the meter's display, never downwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.core.bus import Bus, Inbound
from services.core.config import Settings
from services.core.contract import (
    DeviceState,
    EventKind,
    PulseCalibration,
    Rejection,
    RelayReport,
    is_on,
)
from services.core.contract.topics import ha_status_topic
from services.core.device import DevicePublisher
from services.core.service import Service
from services.core.store import load_json, save_json
from services.pulses.config import MeterConfig, PulsesConfig
from services.pulses.counter import NS, CounterSettings, PulseCounter
from services.pulses.edges import EdgeSource, GpiodSource, ReplaySource, SimSource
from services.pulses.fields import FIELDS
from services.pulses.index import MeterIndex

log = logging.getLogger(__name__)
WAIT_S = 0.05  # an edge wait's timeout: how late "active for min_pulse_ms" may be decided
REPUBLISH_S = 30.0  # an unchanged state is re-sent this often (it carries a message expiry)
# The first state waits this long for the broker's retained one (the index last published,
# which a kill -9 may have left ahead of the last save); pulses are counted meanwhile.
RETAINED_WAIT_S = 2.0


def counter_settings(cfg: MeterConfig) -> CounterSettings:
    """The counter's settings from a meter's config."""
    return CounterSettings(
        imp_per_kwh=cfg.imp_per_kwh, max_power_kw=cfg.max_power_kw,
        min_pulse_ns=round(cfg.min_pulse_ms * 1e6), min_gap_ns=round(cfg.min_gap_ms * 1e6),
        zero_after_ns=round(cfg.zero_after_s * NS), stuck_after_ns=round(cfg.stuck_after_s * NS),
    )


class Meter:
    """One meter: its source, counter, index and publisher, read on its own thread."""

    def __init__(self, cfg: MeterConfig, service: PulsesService) -> None:
        self.cfg = cfg
        self.service = service
        self.out = DevicePublisher(service.bus, cfg.id, FIELDS, service.discovery_prefix)
        self.out.device_info = {"name": cfg.name or cfg.id, "manufacturer": "S0 pulse meter",
                                "model": f"{cfg.imp_per_kwh:g} imp/kWh"}
        self.index = MeterIndex(cfg.imp_per_kwh, cfg.initial_index_wh)
        self.lock = threading.Lock()  # index and counter: reader thread vs. calibration
        self.source: EdgeSource | None = None
        self.counter: PulseCounter | None = None
        self.thread = threading.Thread(target=self._run, name=f"pulses-{cfg.id}", daemon=True)
        self.error: str | None = None
        self.caught_up = threading.Event()  # the retained state was seen (or none will be)
        self._counted = 0  # the counter's pulses already in the index

    def open(self) -> EdgeSource:
        """The configured edge source."""
        cfg = self.cfg
        if cfg.source == "gpiod":
            return GpiodSource(cfg.chip, cfg.line, bias=cfg.bias, active_low=cfg.active_low,
                               debounce_us=cfg.debounce_us)
        if cfg.source == "replay":
            assert cfg.replay_file is not None  # the config's validator says so
            return ReplaySource(cfg.replay_file)
        return SimSource(self.service.sim_power(cfg), cfg.imp_per_kwh,
                         width_s=cfg.sim.width_ms / 1000, bounce_s=cfg.sim.bounce_ms / 1000)

    def _run(self) -> None:
        stop = self.service.stop_event
        try:
            source = self.source = self.open()
        except Exception as exc:  # a missing chip or line: say what, stay offline
            self.error = str(exc)
            log.error("service=pulses meter=%s cannot open its line: %s", self.cfg.id, exc)
            self.out.set_online(False, str(exc))
            self.diagnostics()
            stop.wait()
            return
        initial = getattr(source, "initial_active", False)
        self.counter = counter = PulseCounter(counter_settings(self.cfg), source.now_ns(),
                                              initial)
        self.out.set_online(True)
        every = self.service.config.section.publish_interval_s
        started = next_publish = next_save = time.monotonic()
        next_save += self.cfg.save_every_s
        next_diag = next_publish + 1  # first diagnostics a second after start
        last_sent = 0.0
        last_fields: dict[str, Any] = {}
        while not stop.is_set():
            self._count(source, counter)
            now = time.monotonic()
            if now >= next_publish and not self.caught_up.is_set():
                # Not over the retained index with a lower one before it is read.
                if now - started < RETAINED_WAIT_S:
                    continue
                self.caught_up.set()
            if now >= next_publish:
                # Power decays between pulses: compare what would be sent, not the count.
                fields = self.reading()
                if fields != last_fields or now - last_sent >= REPUBLISH_S:
                    self.out.publish(fields)
                    last_fields, last_sent = fields, now
                next_publish = now + every
            if now >= next_save:
                self.service.save()
                next_save = now + self.cfg.save_every_s
            if now >= next_diag:
                self.diagnostics()
                next_diag = now + self.service.config.section.diagnostics_interval_s
        source.close()

    def _count(self, source: EdgeSource, counter: PulseCounter) -> None:
        """Wait for edges (WAIT_S at most), feed them and the time to the counter, and add
        what it accepted to the index."""
        edges = source.read(WAIT_S)
        while True:
            # Time is read before the last look for edges: an edge that came in
            # between is fed, never jumped over by advance().
            now_ns = source.now_ns()
            more = source.read(0)
            if not more:
                break
            edges += more
        with self.lock:
            for edge in edges:
                counter.edge(edge)
            counter.advance(now_ns)
            if counter.diag.pulses != self._counted:
                self.index.add(counter.diag.pulses - self._counted)
                self._counted = counter.diag.pulses

    def reading(self) -> dict[str, Any]:
        """The normalized fields now (power read once per publication: it takes the span)."""
        with self.lock:
            power = None if self.counter is None else self.counter.power_w()
            fields: dict[str, Any] = {"energy_wh": round(self.index.energy_wh, 3)}
            if power is not None:
                fields["power_w"] = round(power, 1)
            fields["pulses_total"] = self.index.pulses_total
            fields["wh_per_pulse"] = round(self.cfg.wh_per_pulse, 6)
        return fields

    def diagnostics(self) -> None:
        """Retained counters: what the filter refused or could not see."""
        c = self.counter
        counters: dict[str, Any] = {"last_error": self.error}
        if c is not None:
            with self.lock:
                counters |= {
                    "pulses": c.diag.pulses, "rejected_short": c.diag.rejected_short,
                    "rejected_fast": c.diag.rejected_fast, "lost_events": c.diag.lost_events,
                    "stuck_s": round(c.stuck_s, 3), "stuck": c.stuck,
                }
        self.out.diagnostics(counters)

    def catch_up(self, state: DeviceState) -> None:
        """The retained state this meter published before a restart: its index, if ahead."""
        if self.caught_up.is_set():
            return
        energy, total = state.fields.get("energy_wh"), state.fields.get("pulses_total")
        if isinstance(energy, int | float) and not isinstance(energy, bool) and energy >= 0:
            with self.lock:
                taken = self.index.catch_up(
                    float(energy), total if isinstance(total, int) and total >= 0 else None)
            if taken:
                log.info("service=pulses meter=%s index %.3f Wh taken from its last published "
                         "state (%.3f Wh past the last save: an unclean stop)", self.cfg.id,
                         self.index.energy_wh, taken)
                self.service.save()
        self.caught_up.set()

    def calibrate(self, energy_wh: float) -> str | None:
        """Set the index from the display; why not, when refused."""
        with self.lock:
            return self.index.calibrate(energy_wh)


class PulsesService(Service[PulsesConfig]):
    """One Meter (and thread) per configured meter."""

    name = "pulses"

    def __init__(self, config: Settings[PulsesConfig], bus: Bus) -> None:
        super().__init__(config, bus)
        ha = config.homeassistant
        self.discovery_prefix = ha.discovery_prefix if ha.discovery else None
        self.stop_event = threading.Event()
        self.state_file = Path(config.general.data_dir) / "pulses.json"
        self.meters = {m.id: Meter(m, self) for m in config.section.meters}
        self._save_lock = threading.Lock()
        self._relay_on: dict[str, bool] = {}
        if not self.meters:
            log.info("service=pulses no meter configured: idle")
        for meter in self.meters.values():
            bus.subscribe(bus.topics.pulses_set(meter.cfg.id), self._calibration)
            bus.subscribe_inbound(bus.topics.state(meter.cfg.id), self._retained_state)
            relay = meter.cfg.sim.follow_relay
            if meter.cfg.source == "sim" and relay:
                bus.subscribe(bus.topics.relay_state(relay), self._relay_state)
        if ha.discovery:
            bus.subscribe(ha_status_topic(ha.discovery_prefix), self._ha_status)

    def start(self) -> None:
        """Read the saved indexes (meters go online only after), then one thread per meter."""
        saved = load_json(self.state_file)
        saved = saved if isinstance(saved, dict) else {}
        for meter in self.meters.values():
            meter.index = MeterIndex.restore(saved.get(meter.cfg.id), meter.cfg.imp_per_kwh,
                                             meter.cfg.initial_index_wh)
            log.info("service=pulses meter=%s index %.3f Wh (%s)", meter.cfg.id,
                     meter.index.energy_wh, "saved" if meter.cfg.id in saved else "initial")
            meter.thread.start()

    def stop(self) -> None:
        """Stop the readers, save the indexes; meters go offline."""
        self.stop_event.set()
        for meter in self.meters.values():
            if meter.thread.is_alive():
                meter.thread.join(5)
        self.save()
        for meter in self.meters.values():
            meter.out.close()

    def healthy(self) -> bool:
        """Every reader thread runs."""
        return self.stop_event.is_set() or all(m.thread.is_alive() for m in self.meters.values())

    def save(self) -> None:
        """Every meter's index, atomically (one file for all)."""
        with self._save_lock:
            state = {}
            for meter in self.meters.values():
                with meter.lock:
                    state[meter.cfg.id] = meter.index.snapshot()
            try:
                save_json(self.state_file, state)
            except OSError as exc:
                log.warning("service=pulses cannot save %s: %s", self.state_file, exc)

    def sim_power(self, cfg: MeterConfig) -> Callable[[], float]:
        """The simulated meter's power: ``sim.power_w`` while its relay is on (or always)."""
        relay = cfg.sim.follow_relay

        def power() -> float:
            on = True if relay is None else self._relay_on.get(relay, False)
            return cfg.sim.power_w if on else 0.0

        return power

    # -- inbound -------------------------------------------------------------------------------

    def _relay_state(self, topic: str, payload: bytes) -> None:
        parsed = self.bus.topics.parse(topic)
        if parsed is None or parsed.device is None:
            return
        report = RelayReport.decode(payload) if payload else None
        self._relay_on[parsed.device] = (report is not None
                                         and not isinstance(report, Rejection)
                                         and is_on(report.output))

    def _calibration(self, topic: str, payload: bytes) -> None:
        parsed = self.bus.topics.parse(topic)
        meter = self.meters.get(parsed.device or "") if parsed else None
        if meter is None:
            return
        command = PulseCalibration.decode(payload)
        if isinstance(command, Rejection):
            why, excerpt = command.reason, command.excerpt
        else:
            refused = meter.calibrate(command.energy_wh)
            if refused is None:
                log.info("service=pulses meter=%s calibrated: index %.3f Wh", meter.cfg.id,
                         command.energy_wh)
                self.bus.event(EventKind.COMMAND, device=meter.cfg.id, topic="pulses_set",
                               energy_wh=command.energy_wh)
                self.save()  # rare and wanted: on disk at once (published within a second)
                return
            why, excerpt = refused, ""
        log.info("service=pulses meter=%s calibration rejected: %s", meter.cfg.id, why)
        self.bus.event(EventKind.REJECTED, device=meter.cfg.id, service="pulses",
                       topic="pulses_set", reason=why, excerpt=excerpt)

    def _retained_state(self, msg: Inbound) -> None:
        # Only the broker's retained copy says what was published before this start; our
        # own states come back live (retain flag 0) and are ignored.
        if not msg.retain or not msg.payload:
            return
        parsed = self.bus.topics.parse(msg.topic)
        meter = self.meters.get(parsed.device or "") if parsed else None
        state = DeviceState.decode(msg.payload)
        if meter is None or isinstance(state, Rejection):
            return
        meter.catch_up(state)

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            for meter in self.meters.values():
                meter.out.discover(force=True)
