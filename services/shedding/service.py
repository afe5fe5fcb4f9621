"""shedding service: follow the Linky, shed loads before its breaker trips.

Decisions are taken in the MQTT callback of the teleinfo state that shows the excess and
published at once on <p>/relays/<id>/shed (retained), so the shed goes out on that very
frame. A timer thread watches for stale data and restores.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from pathlib import Path

from services.core.bus import Bus, to_json
from services.core.config import Settings
from services.core.contract import EventKind, MeterState, Presence, Rejection, ShedFlag
from services.core.contract.topics import ha_status_topic
from services.core.discovery import announce
from services.core.service import Service
from services.core.store import load_json, save_json
from services.shedding.config import SheddingConfig
from services.shedding.discovery import shedding_discovery
from services.shedding.logic import Decision, Shedder

log = logging.getLogger(__name__)
STALE_CHECK_S = 0.25  # how late a meter that stopped talking is noticed, past stale_after_s
HEARTBEAT_S = 2.0  # relays take over after 3 missed beats (and at once on the last will)


class SheddingService(Service[SheddingConfig]):
    """One meter, its sheddable loads."""

    name = "shedding"

    def __init__(self, config: Settings[SheddingConfig], bus: Bus) -> None:
        super().__init__(config, bus)
        self.cfg = config.section
        self.state_file = self.cfg.state_file or Path(config.general.data_dir) / "shedding.json"
        self.lock = threading.Lock()
        self.shedder = Shedder(self.cfg)
        saved = load_json(self.state_file) or {}
        known = {load.relay for load in self.cfg.loads}
        # A restart never un-sheds: what was shed stays shed until a restore decides.
        self.shedder.shed = {r: float(t) for r, t in saved.get("shed", {}).items() if r in known}
        if self.shedder.shed:
            self.shedder.last_change = time.time()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._timer, name="shedding", daemon=True)
        # The meter's availability, and teleinfo's status: a dead teleinfo process leaves no
        # fresh frame, and its last will says so at once.
        self._presence = {"meter availability": True, "teleinfo status": True}
        topics = bus.topics
        bus.subscribe(topics.state_of("teleinfo", self.cfg.meter), self._on_state)
        bus.subscribe(topics.availability_of("teleinfo", self.cfg.meter),
                      partial(self._on_presence, "meter availability"))
        bus.subscribe(topics.status_of("teleinfo"), partial(self._on_presence, "teleinfo status"))
        ha = config.homeassistant
        self.discovery_prefix = ha.discovery_prefix if ha.discovery else None
        self._phases: int | None = None  # announced to HA: the meter's phase count
        if self.discovery_prefix is not None:
            bus.subscribe(ha_status_topic(self.discovery_prefix), self._ha_status)

    def start(self) -> None:
        """Publish the current decision for every load, then watch the timers."""
        for load in self.cfg.loads:
            shed = load.relay in self.shedder.shed
            self._publish_shed(load.relay, shed, "state at start" if shed else "not shed")
        self.thread.start()
        self.bus.start_heartbeat(HEARTBEAT_S, self.healthy)

    def healthy(self) -> bool:
        """The timer thread (stale detection, restores) must be running."""
        return self.thread.is_alive() or self.stop_event.is_set()

    def stop(self) -> None:
        """Stop the timer; decisions stay retained (relays keep shed loads shed)."""
        self.stop_event.set()
        self.thread.join(timeout=3)
        self._persist()

    # -- inputs -------------------------------------------------------------------------------

    def _on_state(self, _topic: str, payload: bytes) -> None:
        reading = MeterState.decode(payload)
        if isinstance(reading, Rejection):
            self._rejected("meter state", reading)
            return
        now = time.time()
        with self.lock:
            was_stale = self.shedder.is_stale(now) and self.shedder.last_reading is not None
            decisions = self.shedder.reading(reading, now)
            state = self.shedder.state(now)
        if was_stale:
            self.bus.event(EventKind.FRESH, meter=self.cfg.meter)
        self._apply(decisions)
        self.bus.publish_state(self.bus.topics.state(self.cfg.meter), state)
        if len(state["load_va"]) != self._phases:
            self._discover(len(state["load_va"]))

    def _ha_status(self, _topic: str, payload: bytes) -> None:
        """Home Assistant restarted: send discovery again."""
        if payload == b"online" and self._phases is not None:
            self._discover(self._phases)

    def _discover(self, phases: int) -> None:
        if self.discovery_prefix is None or not phases:
            return
        self._phases = phases
        relays = {load.relay: load.name or load.relay for load in self.cfg.loads}
        topic, payload = shedding_discovery(self.bus.topics, self.cfg.meter, relays, phases,
                                            self.discovery_prefix)
        announce(self.bus, self.cfg.meter, topic, to_json(payload), self.discovery_prefix)

    def _rejected(self, what: str, rejection: Rejection) -> None:
        log.warning("service=shedding %s ignored: %s", what, rejection.reason)
        self.bus.event(EventKind.REJECTED, what=what, reason=rejection.reason,
                       excerpt=rejection.excerpt)

    def _on_presence(self, what: str, _topic: str, payload: bytes) -> None:
        presence = Presence.decode(payload)
        if isinstance(presence, Rejection):
            self._rejected(what, presence)
            return
        self._presence[what] = presence.online
        with self.lock:
            self.shedder.availability(all(self._presence.values()))
        self._check_stale()  # a meter that went offline is stale now, not at the next tick

    def _timer(self) -> None:
        while not self.stop_event.wait(STALE_CHECK_S):
            self._check_stale()

    def _check_stale(self) -> None:
        """Say once, at once, that the meter data went stale: relays' grace period starts
        from the published ``stale: true``."""
        now = time.time()
        with self.lock:
            stale = self.shedder.is_stale(now)
            report = stale and not self.shedder.stale_reported
            if report:
                self.shedder.stale_reported = True
            state = self.shedder.state(now)
        if report:
            held = state["shed"]
            log.warning("service=shedding meter data stale: holding %s", held or "nothing")
            self.bus.event(EventKind.STALE, meter=self.cfg.meter, held=held,
                           reason="no valid meter data: shed loads stay shed, nothing is "
                           "restored, and relays put every sheddable load in its safe "
                           "state after their grace period")
            self.bus.publish_state(self.bus.topics.state(self.cfg.meter), state)

    # -- outputs ------------------------------------------------------------------------------

    def _apply(self, decisions: list[Decision]) -> None:
        for d in decisions:
            self._publish_shed(d.relay, d.shed, d.reason)
            kind = EventKind.SHED if d.shed else EventKind.RESTORE
            log.info("service=shedding %s relay=%s %s", kind, d.relay, d.reason)
            self.bus.event(kind, relay=d.relay, phase=d.phase, load_va=d.load_va,
                           limit_va=d.limit_va, reason=d.reason)
        if decisions:
            self._persist()

    def _publish_shed(self, relay: str, shed: bool, reason: str) -> None:
        self.bus.publish_retained(self.bus.topics.relay_shed(relay),
                                  ShedFlag(shed, reason).encode())

    def _persist(self) -> None:
        with self.lock:
            snap = {"shed": dict(self.shedder.shed)}
        save_json(self.state_file, snap)
