"""shedding service: follow the Linky, shed loads before its breaker trips.

Decisions are taken in the MQTT callback of the teleinfo state that shows the excess and
published at once on <p>/relays/<id>/shed (retained), so the shed goes out on that very
frame. A timer thread watches for stale data and restores.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from services.core.bus import Bus, to_json, utc_now_iso
from services.core.service import Service
from services.core.store import load_json, save_json
from services.shedding.config import SheddingConfig
from services.shedding.logic import Decision, Shedder

log = logging.getLogger(__name__)


class SheddingService(Service):
    """One meter, its sheddable loads."""

    name = "shedding"

    def __init__(self, config: Any, bus: Bus) -> None:
        super().__init__(config, bus)
        self.cfg: SheddingConfig = config.shedding
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
        p = bus.topics.prefix
        self.meter_topic = f"{p}/teleinfo/{self.cfg.meter}"
        bus.subscribe(f"{self.meter_topic}/state", self._on_state)
        bus.subscribe(f"{self.meter_topic}/availability", self._on_availability)

    def start(self) -> None:
        """Publish the current decision for every load, then watch the timers."""
        for load in self.cfg.loads:
            shed = load.relay in self.shedder.shed
            self._publish_shed(load.relay, shed, "state at start" if shed else "not shed")
        self.thread.start()

    def stop(self) -> None:
        """Stop the timer; decisions stay retained (relays keep shed loads shed)."""
        self.stop_event.set()
        self.thread.join(timeout=3)
        self._persist()

    # -- inputs -------------------------------------------------------------------------------

    def _on_state(self, _topic: str, payload: bytes) -> None:
        try:
            reading = json.loads(payload)
        except json.JSONDecodeError:
            log.warning("service=shedding unreadable meter state ignored")
            return
        if not isinstance(reading, dict):
            return
        now = time.time()
        with self.lock:
            was_stale = self.shedder.is_stale(now) and self.shedder.last_reading is not None
            decisions = self.shedder.reading(reading, now)
            state = self.shedder.state(now)
        if was_stale:
            self.bus.event("fresh", meter=self.cfg.meter)
        self._apply(decisions)
        self.bus.publish_state(f"{self.bus.topics.base}/{self.cfg.meter}/state", state)

    def _on_availability(self, _topic: str, payload: bytes) -> None:
        with self.lock:
            self.shedder.availability(payload.strip() == b"online")

    def _timer(self) -> None:
        while not self.stop_event.wait(1.0):
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
                self.bus.event("stale", meter=self.cfg.meter, held=held,
                               reason="no valid meter data: shed loads stay shed, "
                               "nothing is restored")
                self.bus.publish_state(f"{self.bus.topics.base}/{self.cfg.meter}/state", state)

    # -- outputs ------------------------------------------------------------------------------

    def _apply(self, decisions: list[Decision]) -> None:
        for d in decisions:
            self._publish_shed(d.relay, d.shed, d.reason)
            kind = "shed" if d.shed else "restore"
            log.info("service=shedding %s relay=%s %s", kind, d.relay, d.reason)
            self.bus.event(kind, relay=d.relay, phase=d.phase, load_va=d.load_va,
                           limit_va=d.limit_va, reason=d.reason)
        if decisions:
            self._persist()

    def _publish_shed(self, relay: str, shed: bool, reason: str) -> None:
        self.bus.publish_retained(
            f"{self.bus.topics.prefix}/relays/{relay}/shed",
            to_json({"shed": shed, "reason": reason, "ts": utc_now_iso()}),
        )

    def _persist(self) -> None:
        with self.lock:
            snap = {"shed": dict(self.shedder.shed)}
        save_json(self.state_file, snap)
