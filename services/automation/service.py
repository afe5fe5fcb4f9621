"""automation service: thin glue between MQTT and the pure engine.

MQTT callbacks only feed the input tracker (under a lock); a tick thread asks the engine for
every load's decision every ``tick_s`` and publishes the wish on ``relays/<id>/auto``
(retained, with a message expiry of 3 ticks, at least 30 s, so a dead automation stops
counting by itself), the load's state on ``automation/<relay>/state`` and an event per
decision change. A load whose switch (``automation/<relay>/set``) is off gets its wish
cleared, once: its relay goes to its default.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.automation.config import AutomationConfig
from services.automation.discovery import automation_discovery
from services.automation.engine import Decision, Engine
from services.automation.inputs import InputTracker
from services.core.bus import Bus, to_json
from services.core.config import Settings
from services.core.contract import (
    AutomationSwitch,
    AutoWish,
    EventKind,
    Presence,
    Rejection,
    TopicKind,
)
from services.core.contract.messages import utc_now_iso
from services.core.contract.topics import ha_status_topic
from services.core.discovery import announce
from services.core.service import Service
from services.core.store import load_json, save_json

log = logging.getLogger(__name__)
HEARTBEAT_S = 5.0
SAVE_EVERY_S = 60.0  # counters to disk at least this often while nothing else changes
MIN_WISH_EXPIRY_S = 30  # DESIGN.md: a wish lives 3 ticks, at least 30 s
STATE_EVERY_S = 30.0  # an unchanged state is re-sent this often (on-time for HA)


def wish_expiry_s(tick_s: float) -> int:
    """The message expiry of a wish: 3 ticks, at least 30 s."""
    return max(MIN_WISH_EXPIRY_S, int(3 * tick_s + 0.999))


class AutomationService(Service[AutomationConfig]):
    """Every load of the `automation` section, one tick thread."""

    name = "automation"

    def __init__(self, config: Settings[AutomationConfig], bus: Bus,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, bus)
        self.cfg = config.section
        self.clock = clock
        self.tz = ZoneInfo(self.cfg.timezone)
        self.state_file = self.cfg.state_file or Path(config.general.data_dir) / "automation.json"
        self.discovery_prefix = (
            config.homeassistant.discovery_prefix if config.homeassistant.discovery else None)
        self.engine = Engine(self.cfg)
        self.tracker = InputTracker(self.cfg)
        self.lock = threading.Lock()
        self.relays = tuple(load.relay for load in self.cfg.loads)
        self.engine_state, self.disabled = self._load()
        self.cleared: set[str] = set()  # disabled loads whose wish is already cleared
        self.expiry_s = wish_expiry_s(self.cfg.tick_s)
        self._sent: dict[str, tuple[Any, ...]] = {}  # relay -> what its last state said
        self._sent_at: dict[str, float] = {}
        self._outputs: dict[str, tuple[str, str]] = {}  # relay -> (output, source) last tick
        self._dirty = False
        self._saved_at = time.monotonic()
        self._failure: str | None = None
        self._wake = threading.Event()  # a switch turned: tick now, not at the next tick_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="automation", daemon=True)
        self._started = False
        topics = bus.topics
        for topic_filter in self.tracker.filters(topics):
            bus.subscribe(topic_filter, self._on_input)
        bus.subscribe(topics.any_automation_set, self._on_switch)
        self._ha_status = ha_status_topic(self.discovery_prefix) if self.discovery_prefix else None
        if self._ha_status:
            bus.subscribe(self._ha_status, self._on_ha_status)
        bus.on_connected(self._discover)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Tick from now on; the first tick waits one ``tick_s`` so that the retained inputs
        (states, relays' outputs) are in: a restart then decides what it decided before."""
        self._started = True
        self.thread.start()
        self.bus.start_heartbeat(HEARTBEAT_S, self.healthy)

    def healthy(self) -> bool:
        """The tick thread must be running."""
        return not self._started or self.stop_event.is_set() or self.thread.is_alive()

    def stop(self) -> None:
        """Stop ticking and save. The wishes stay retained until they expire: the relays
        drop them at once anyway, on our ``offline`` status."""
        self.stop_event.set()
        if self._started:
            self.thread.join(timeout=5)
        self._save()

    # -- persistence -------------------------------------------------------------------------

    def _load(self) -> tuple[dict[str, Any] | None, set[str]]:
        saved = load_json(self.state_file)
        if not isinstance(saved, Mapping):
            return None, set()
        self.tracker.load(saved.get("tracker"))
        engine = saved.get("engine")
        raw = saved.get("disabled")
        disabled = {r for r in raw if r in self.relays} if isinstance(raw, list) else set()
        return (dict(engine) if isinstance(engine, Mapping) else None), disabled

    def _save(self) -> None:
        with self.lock:
            snap = {"version": 1, "engine": self.engine_state, "tracker": self.tracker.to_dict(),
                    "disabled": sorted(self.disabled)}
        try:
            save_json(self.state_file, snap)
        except OSError as exc:  # a full or read-only disk must not stop the decisions
            log.error("service=automation cannot save %s: %s", self.state_file, exc)
        self._saved_at = time.monotonic()
        self._dirty = False

    # -- inputs (paho's thread) --------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.tz)

    def _on_input(self, topic_name: str, payload: bytes) -> None:
        topic = self.bus.topics.parse(topic_name)
        if topic is None:
            return
        with self.lock:
            rejection = self.tracker.feed(topic, payload, self._now())
        if rejection is not None:
            self._rejected(topic_name, rejection)

    def _on_switch(self, topic_name: str, payload: bytes) -> None:
        topic = self.bus.topics.parse(topic_name)
        if topic is None or topic.kind != TopicKind.AUTOMATION_SET:
            return
        relay = topic.device or ""
        if relay not in self.relays:
            self._rejected(topic_name, Rejection(f"no load on relay {relay[:64]!r}"))
            return
        switch = AutomationSwitch.decode(payload)
        if isinstance(switch, Rejection):
            self._rejected(topic_name, switch)
            return
        with self.lock:
            changed = (relay in self.disabled) == switch.enabled
            if switch.enabled:
                self.disabled.discard(relay)
                self.cleared.discard(relay)
            else:
                self.disabled.add(relay)
        if changed:
            log.info("service=automation relay=%s automation %s", relay,
                     "enabled" if switch.enabled else "disabled")
            self._save()
            self._wake.set()

    def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        if Presence.decode(payload) == Presence(True):
            self._discover()

    def _rejected(self, topic: str, rejection: Rejection) -> None:
        log.warning("service=automation %s ignored: %s", topic[:120], rejection.reason)
        self.bus.event(EventKind.REJECTED, topic=topic[:200], reason=rejection.reason,
                       excerpt=rejection.excerpt)

    # -- the tick ----------------------------------------------------------------------------

    def _run(self) -> None:
        if self.stop_event.wait(self.cfg.tick_s):
            return
        while not self.stop_event.is_set():
            try:
                self.tick()
            except Exception as exc:  # a bug in one tick must not stop the next ones
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.exception("service=automation tick failed")
                if error != self._failure:
                    self._failure = error
                    self.bus.event(EventKind.HANDLER_FAILED, what="tick", error=error)
            self._wake.wait(self.cfg.tick_s)
            self._wake.clear()

    def tick(self) -> None:
        """One engine pass: decide, publish, persist when something changed."""
        now = self._now()
        with self.lock:
            disabled = frozenset(self.disabled)
            inputs = replace(self.tracker.inputs(), disabled=disabled)
            decisions, self.engine_state = self.engine.tick(now, inputs, self.engine_state)
            outputs = {r: (ri.output, str(ri.source)) for r, ri in inputs.relays.items()}
        changed = outputs != self._outputs
        self._outputs = outputs
        for relay in self.relays:
            decision = decisions.get(relay)
            if decision is None:
                continue
            if relay in disabled:
                changed |= self._disabled(decision)
            else:
                changed |= self._publish(decision)
        if changed or self._dirty or time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    def _publish(self, d: Decision) -> bool:
        """The wish (every tick: its expiry is its freshness), the state when it changed or
        is due, and the decision's events. True when it changed something to remember."""
        topics = self.bus.topics
        self.bus.publish_retained(topics.relay_auto(d.relay),
                                  AutoWish(d.wish, d.reason).encode(), self.expiry_s)
        self._state(d, enabled=True)
        self._events(d)
        return bool(d.events)

    def _events(self, d: Decision) -> None:
        for ev in d.events:
            log.info("service=automation %s relay=%s wish=%s status=%s %s", ev.kind, ev.relay,
                     ev.wish, ev.status, ev.reason_en)
            # As the state: the page shows `reason`, an English reader `reason_en`.
            self.bus.event(EventKind(ev.kind), relay=ev.relay, wish=ev.wish, status=ev.status,
                           reason=ev.reason, reason_en=ev.reason_en)

    def _disabled(self, d: Decision) -> bool:
        """A disabled load (the engine says so, status disabled): its wish cleared once,
        whatever the engine would wish for it."""
        first = d.relay not in self.cleared
        if first:
            self.cleared.add(d.relay)
            self.bus.clear_retained(self.bus.topics.relay_auto(d.relay))
        self._state(d, enabled=False)
        self._events(d)
        return first or bool(d.events)

    def _state(self, d: Decision, *, enabled: bool) -> None:
        payload = state_payload(d, enabled)
        key = tuple(v for k, v in payload.items() if k not in ("on_today_s", "ts"))
        mono = time.monotonic()
        if self._sent.get(d.relay) == key and mono - self._sent_at.get(d.relay, 0) < min(
                STATE_EVERY_S, self.bus.config.state_expiry_s / 3 or STATE_EVERY_S):
            return
        self._sent[d.relay], self._sent_at[d.relay] = key, mono
        self.bus.publish_state(self.bus.topics.automation_state(d.relay), payload)

    def _discover(self) -> None:
        if self.discovery_prefix is None:
            return
        for load in self.cfg.loads:
            relay = load.relay
            topic, payload = automation_discovery(self.bus.topics, relay, self.discovery_prefix,
                                                  load.name)
            announce(self.bus, relay, topic, to_json(payload),
                     self.discovery_prefix)


def state_payload(d: Decision, enabled: bool) -> dict[str, Any]:
    """``automation/<relay>/state``: 13-interfaces.md's fields."""
    latest = d.latest_start
    return {
        "wish": d.wish if enabled else None,  # disabled: no wish (the relay's default)
        "status": d.status,
        "hold": d.hold,
        "reason": d.reason,
        "on_today_s": round(d.on_today_s),
        "remaining_s": None if d.remaining_s is None else round(d.remaining_s),
        "min_on_s": d.min_on_s,
        "by": d.by,
        "latest_start": None if latest is None else latest.isoformat(timespec="seconds"),
        "starts_today": d.starts_today,
        "enabled": enabled,
        "ts": utc_now_iso(),
    }
