"""relays service: drive loads safely from user commands, shedding and automations.

One control thread owns every relay; MQTT callbacks only queue what they received, so
decisions never race. Order of precedence: shed > forced (user) > auto > default.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from services.core.bus import Bus, to_json
from services.core.config import Settings
from services.core.service import Service
from services.core.store import load_json, save_json
from services.relays import commands
from services.relays.config import RelayConfig, RelaysConfig
from services.relays.discovery import relay_discovery
from services.relays.drivers import make_board
from services.relays.drivers.base import BoardError, OutputBoard
from services.relays.drivers.retrying import retrying
from services.relays.model import (
    RelayState,
    apply_command,
    desired,
    expire,
    hold_for_min_time,
    is_on,
)
from services.relays.outputs import RelayOutput

log = logging.getLogger(__name__)
TICK_S = 0.2
PUBLISH_EVERY_S = 60.0


class Relay:
    """A relay's config, persisted state, hardware output and live status."""

    def __init__(self, cfg: RelayConfig, output: RelayOutput, state: RelayState) -> None:
        self.cfg = cfg
        self.output = output
        self.state = state
        self.source = "default"
        self.readback_ok: bool | None = None
        self.changed_at = time.monotonic()  # start counts as a change: min off time holds

    def status(self) -> dict[str, Any]:
        """The relay's state message (DESIGN.md field names)."""
        value = self.output.written
        until = self.state.until
        out: dict[str, Any] = {
            ("state" if self.cfg.kind == "switch" else "order"): value,
            "mode": self.state.mode,
            "source": self.source,
            "until": None if until is None else _iso(until),
            "shed": self.state.shed,
            "readback_ok": self.readback_ok,
            "on_time_today_s": round(self.state.on_time_today_s),
        }
        if self.state.shed:
            out["shed_reason"] = self.state.shed_reason
        return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RelaysService(Service[RelaysConfig]):
    """Every configured relay, one control thread."""

    name = "relays"

    def __init__(self, config: Settings[RelaysConfig], bus: Bus,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, bus)
        self.cfg = config.section
        self.clock = clock
        self.state_file = self.cfg.state_file or Path(config.general.data_dir) / "relays.json"
        self.discovery_prefix = (
            config.homeassistant.discovery_prefix if config.homeassistant.discovery else None
        )
        self.inbox: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="relays", daemon=True)
        self.boards: dict[str, OutputBoard] = {
            b.id: retrying(b.id, partial(make_board, b.driver, b.id, bus=b.bus, address=b.address))
            for b in self.cfg.boards
        }
        self._board_errors: dict[str, str] = {}
        saved = load_json(self.state_file) or {}
        self.relays: dict[str, Relay] = {}
        for rc in self.cfg.relays:
            state = RelayState.from_json(saved.get(rc.id))
            self.relays[rc.id] = Relay(rc, RelayOutput(rc, self.boards[rc.board]), state)
        self._saved = self._snapshot()
        self._next_reassert = 0.0
        self._next_publish = 0.0
        self._shedding_online: bool | None = None
        self._last_count = self.clock()
        p = bus.topics.prefix
        bus.subscribe(f"{p}/relays/+/set", lambda t, m: self.inbox.put(("set", t, m)))
        bus.subscribe(f"{p}/relays/+/shed", lambda t, m: self.inbox.put(("shed", t, m)))
        bus.subscribe(f"{p}/shedding/status", lambda t, m: self.inbox.put(("shedding", t, m)))
        if self.discovery_prefix:
            bus.subscribe(f"{self.discovery_prefix}/status",
                          lambda t, m: self.inbox.put(("ha", t, m)))
        bus.on_connected(self._discover)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Safe state on every output first, then the persisted orders."""
        now = self.clock()
        for board in self.boards.values():
            self._guard(board.name, board.configure, proves=False)
        for relay in self.relays.values():
            self._write(relay, relay.cfg.safe_state, now)
        self.thread.start()

    def stop(self) -> None:
        """Back to the safe state, persist, and stop."""
        self.stop_event.set()
        self.thread.join(timeout=5)
        now = self.clock()
        for relay in self.relays.values():
            self._write(relay, relay.cfg.safe_state, now)
            relay.source = "shed" if relay.state.shed else "default"
            self._publish(relay)
        self._persist(force=True)
        for board in self.boards.values():
            self._guard(board.name, board.close, proves=False)

    def set_auto(self, relay_id: str, value: str | None) -> None:
        """Where automations plug in: the value a relay takes in auto mode (None = default)."""
        self.inbox.put(("auto", relay_id, (value or "").encode()))

    # -- control thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                kind, topic, payload = self.inbox.get(timeout=TICK_S)
            except queue.Empty:
                pass
            else:
                self._handle(kind, topic, payload)
            try:
                self._control()
            except Exception:  # the control loop must outlive any bug in one pass
                log.exception("service=relays control pass failed")

    def _handle(self, kind: str, topic: str, payload: bytes) -> None:
        if kind == "shedding":
            self._shedding_status(payload)
            return
        if kind == "ha":
            if payload.strip().lower() == b"online":
                self._discover()
            return
        relay_id = topic.split("/")[-2] if kind in ("set", "shed") else topic
        relay = self.relays.get(relay_id)
        if relay is None:
            if kind == "set":
                self._reject(relay_id, payload, f"unknown relay {relay_id!r}")
            return
        if kind == "set":
            self._command(relay, payload)
        elif kind == "shed":
            self._shed(relay, payload)
        else:
            relay.state.auto = payload.decode() or None

    def _command(self, relay: Relay, payload: bytes) -> None:
        try:
            command = commands.parse(payload, relay.cfg.kind)
        except commands.CommandError as exc:
            self._reject(relay.cfg.id, payload, str(exc))
            return
        apply_command(relay.state, command, self.clock())
        self.bus.event("command", relay=relay.cfg.id, mode=command.mode, order=command.order,
                       for_s=command.for_s, applied=not relay.state.shed,
                       note="remembered: applied when the load is restored"
                       if relay.state.shed else None)

    def _reject(self, relay_id: str, payload: bytes, reason: str) -> None:
        log.info("service=relays relay=%s rejected command: %s", relay_id, reason)
        self.bus.event("rejected", relay=relay_id, reason=reason,
                       command=payload[:200].decode("utf-8", "replace"))

    def _shed(self, relay: Relay, payload: bytes) -> None:
        try:
            shed, reason = commands.parse_shed(payload)
        except commands.CommandError as exc:
            self._reject(relay.cfg.id, payload, str(exc))
            return
        if shed != relay.state.shed:
            relay.state.shed = shed
            relay.state.shed_reason = reason

    def _shedding_status(self, payload: bytes) -> None:
        online = payload.strip() == b"online"
        if online == self._shedding_online:
            return
        self._shedding_online = online
        shed = [r.cfg.id for r in self.relays.values() if r.state.shed]
        if not online and shed:
            log.warning("service=relays shedding offline: %s stay shed", ", ".join(shed))
            self.bus.event("shedding_offline", relays=shed,
                           reason="shed loads stay shed until the shedding service restores them")

    def _control(self) -> None:
        now = self.clock()
        mono = time.monotonic()
        for relay in self.relays.values():
            if expire(relay.state, now):
                self.bus.event("forced_expired", relay=relay.cfg.id)
            value, source = desired(relay.cfg, relay.state)
            current = relay.output.written
            if value != current and not hold_for_min_time(
                relay.cfg, current, value, source, mono - relay.changed_at
            ):
                self._write(relay, value, now)
                relay.source = source
                self._publish(relay)
            elif source != relay.source and value == current:
                relay.source = source
                self._publish(relay)
            if relay.output.tick(now):
                self._verify(relay, now)
        # Orders and shed flags hit the disk right after the outputs moved (the fsync stays
        # off the shed latency path); a cut in between is covered by the shedding service,
        # which persisted its decision and publishes it retained again at start.
        self._persist()
        self._count_on_time(now)
        if mono >= self._next_reassert:
            self._next_reassert = mono + self.cfg.reassert_interval_s
            self._reassert(now)
        if mono >= self._next_publish:
            self._next_publish = mono + PUBLISH_EVERY_S
            for relay in self.relays.values():
                self._publish(relay)
            self._persist(force=True)  # on-time counters, once a minute

    # -- hardware ----------------------------------------------------------------------------

    def _write(self, relay: Relay, value: str, now: float) -> None:
        before = relay.output.written
        if self._guard(relay.cfg.board, lambda: relay.output.write(value, now)):
            if before is not None and is_on(before) != is_on(value):
                relay.changed_at = time.monotonic()
            self._verify(relay, now)
        else:
            relay.readback_ok = False

    def _verify(self, relay: Relay, now: float) -> bool:
        """Read back after a write: what the board holds must be what we wrote."""
        got: list[str | None] = []
        ok = self._guard(relay.cfg.board, lambda: got.append(relay.output.read()))
        expected = relay.output.expected(now)
        relay.readback_ok = ok and got[0] == expected
        if ok and not relay.readback_ok:
            log.warning("service=relays relay=%s read back %s, expected %s",
                        relay.cfg.id, got[0], expected)
            self.bus.event("readback_mismatch", relay=relay.cfg.id, read=got[0],
                           expected=expected)
        return bool(relay.readback_ok)

    def _reassert(self, now: float) -> None:
        """Catch an expander that reset (all optos off = radiators on Confort) and fix it."""
        for board in self.boards.values():
            reset: list[bool] = []
            if self._guard(board.name, self._probe(board, reset)) and reset[0]:
                log.warning("service=relays board=%s was reset: outputs re-applied", board.name)
                self.bus.event("board_reset", board=board.name)
                self._guard(board.name, board.configure, proves=False)
        for relay in self.relays.values():
            value = relay.output.written
            if value is None:
                continue
            if not self._verify(relay, now) or relay.readback_ok is False:
                self._write(relay, value, now)
                self._publish(relay)

    @staticmethod
    def _probe(board: OutputBoard, into: list[bool]) -> Callable[[], None]:
        return lambda: into.append(board.looks_reset())

    def _guard(self, board: str, action: Callable[[], object], proves: bool = True) -> bool:
        """Run board I/O; a failure is logged and announced once until the board recovers
        (``proves``: whether success shows the board works; configure and close don't)."""
        try:
            action()
        except BoardError as exc:
            if self._board_errors.get(board) != str(exc):
                self._board_errors[board] = str(exc)
                log.error("service=relays board=%s %s (retrying)", board, exc)
                self.bus.event("board_error", board=board, error=str(exc))
            return False
        if proves and self._board_errors.pop(board, None) is not None:
            log.info("service=relays board=%s working again", board)
            self.bus.event("board_ok", board=board)
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def _count_on_time(self, now: float) -> None:
        today = datetime.fromtimestamp(now).date().isoformat()
        last = self._last_count
        for relay in self.relays.values():
            if relay.state.day != today:
                relay.state.day, relay.state.on_time_today_s = today, 0.0
            elif relay.output.written is not None and is_on(relay.output.written):
                relay.state.on_time_today_s += max(0.0, now - last)
        self._last_count = now

    def _snapshot(self) -> dict[str, Any]:
        return {rid: r.state.to_json() for rid, r in self.relays.items()}

    def _persist(self, force: bool = False) -> None:
        """Write the state file when an order or flag changed (counters: only when forced)."""
        snap = self._snapshot()
        orders = {rid: {**s, "on_time_today_s": 0} for rid, s in snap.items()}
        saved = {rid: {**s, "on_time_today_s": 0} for rid, s in self._saved.items()}
        if force or orders != saved:
            save_json(self.state_file, snap)
            self._saved = snap

    def _publish(self, relay: Relay) -> None:
        self.bus.publish_state(f"{self.bus.topics.base}/{relay.cfg.id}/state", relay.status())

    def _discover(self) -> None:
        if self.discovery_prefix is None:
            return
        for relay in self.relays.values():
            topic, payload = relay_discovery(self.bus.topics, relay.cfg, self.discovery_prefix)
            self.bus.publish_retained(topic, to_json(payload))

