"""The relays service: drive loads safely from user commands, shedding and automations.

One control thread owns every relay; MQTT callbacks only queue what they received, so
decisions never race, and every message and every control pass is guarded: no input can stop
the thread (if it dies anyway, ``healthy()`` says so and the heartbeat stops). Precedence:
fail-safe (shedding gone) > shed > forced (user) > auto (a live wish) > default. Every topic
and payload goes through services.core.contract.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.core.bus import Bus, Inbound, to_json
from services.core.config import Settings
from services.core.contract import (
    AutoWish,
    DeviceState,
    EventKind,
    Presence,
    Rejection,
    ShedFlag,
    Topic,
    TopicKind,
)
from services.core.contract.messages import utc_now_iso
from services.core.contract.topics import ha_status_topic
from services.core.discovery import announce
from services.core.service import Service
from services.core.store import load_json, save_json
from services.relays import commands
from services.relays.config import RelayConfig, RelaysConfig
from services.relays.discovery import relay_discovery
from services.relays.drivers import make_board
from services.relays.drivers.base import BoardError, OutputBoard
from services.relays.drivers.retrying import retrying
from services.relays.model import (
    DEFAULT,
    FAILSAFE,
    SHED,
    RelayState,
    apply_command,
    desired,
    expire,
    hold_for_min_time,
    is_on,
    wish_value,
)
from services.relays.outputs import RelayOutput
from services.relays.watch import SheddingWatch

log = logging.getLogger(__name__)
TICK_S = 0.2
PUBLISH_EVERY_S = 10.0  # at most; a third of the state's expiry when that is shorter
SAVE_EVERY_S = 60.0  # on-time counters to disk
HEARTBEAT_S = 5.0
INBOX_MAX = 10_000


class Relay:
    """A relay's config, persisted state, hardware output and live status."""

    def __init__(self, cfg: RelayConfig, output: RelayOutput, state: RelayState) -> None:
        self.cfg = cfg
        self.output = output
        self.state = state
        self.source = "default"
        self.readback_ok: bool | None = None
        self.changed_at = time.monotonic()  # start counts as a change: min off time holds
        self.wish: str | None = None  # the automation's wish, in this relay's values
        self.wish_until: float | None = None  # monotonic end of its message expiry
        self.failsafe_reason: str | None = None

    def live_wish(self, now: float) -> str | None:
        """The wish while its message expiry runs (a wish sent without expiry stays)."""
        if self.wish_until is not None and now >= self.wish_until:
            self.wish = self.wish_until = None
        return self.wish

    def status(self) -> dict[str, Any]:
        """The relay's state message (DESIGN.md field names). ``source``: failsafe (shedding
        gone: held in its safe state, ``shed_reason`` says why), shed, user, auto, default."""
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
            # Its own time: a burst queued for the historian must not collapse to one instant.
            "ts": utc_now_iso(),
        }
        if self.failsafe_reason is not None:
            # source "failsafe": shedding is gone, the load is held in its safe state.
            out["shed_reason"] = self.failsafe_reason
        elif self.state.shed:
            out["shed_reason"] = self.state.shed_reason
        if self.state.order is not None and self.state.shed:
            # A fil pilote order given while shed: remembered, applied when restored.
            out["pending_order"] = self.state.order
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
        self.inbox: queue.Queue[Inbound] = queue.Queue(maxsize=INBOX_MAX)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="relays", daemon=True)
        self._started = False
        self.boards: dict[str, OutputBoard] = {
            b.id: retrying(b.id, partial(make_board, b.driver, b.id, bus=b.bus, address=b.address))
            for b in self.cfg.boards
        }
        self._board_errors: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self._replies: list[tuple[Inbound, bytes]] = []  # sent after the next control pass
        saved = load_json(self.state_file) or {}
        self.relays: dict[str, Relay] = {}
        for rc in self.cfg.relays:
            state = RelayState.from_json(saved.get(rc.id))
            relay = Relay(rc, RelayOutput(rc, self.boards[rc.board]), state)
            # The board's first write already holds every safe state (no glitch at start).
            self.boards[rc.board].preset(relay.output.levels(rc.safe_state))
            self.relays[rc.id] = relay
        self._saved = self._snapshot()
        self._next_reassert = 0.0
        self._next_publish = 0.0
        self._next_save = 0.0
        self._publish_every_s = min(PUBLISH_EVERY_S, self.cfg.state_expiry_s / 3)
        self.watch = SheddingWatch(self.cfg.shedding_grace_s, time.monotonic())
        self._automation_online = False
        self._last_count = self.clock()
        topics = bus.topics
        self._ha_status = ha_status_topic(self.discovery_prefix) if self.discovery_prefix else None
        inputs = [topics.any_relay(k) for k in (TopicKind.RELAY_SET, TopicKind.RELAY_SHED,
                                                TopicKind.RELAY_AUTO)]
        inputs += [topics.status_of("shedding"), topics.heartbeat_of("shedding"),
                   topics.any_device(TopicKind.STATE, "shedding"), topics.status_of("automation")]
        if self._ha_status:
            inputs.append(self._ha_status)
        for topic_filter in inputs:
            bus.subscribe_inbound(topic_filter, self._receive)
        bus.on_connected(self._discover)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Boards come up at every relay's safe state, then the persisted orders apply."""
        now = self.clock()
        for board in self.boards.values():
            self._guard(board.name, board.configure, proves=False)
        for relay in self.relays.values():
            # configure() brought the board to the safe levels (or found it there): take it
            # as written, and write only if the read-back says otherwise.
            relay.output.assume(relay.cfg.safe_state, now)
            if not self._verify(relay, now):
                self._write(relay, relay.cfg.safe_state, now)
        self._started = True
        self.thread.start()
        self.bus.start_heartbeat(HEARTBEAT_S, self.healthy)

    def healthy(self) -> bool:
        """False once the control thread died: the runner exits (and is restarted), and the
        heartbeat stops so the others can tell."""
        return not self._started or self.stop_event.is_set() or self.thread.is_alive()

    def stop(self) -> None:
        """Back to the safe state, persist, and stop."""
        self.stop_event.set()
        self.thread.join(timeout=5)
        now = self.clock()
        for relay in self.relays.values():
            self._write(relay, relay.cfg.safe_state, now)
            relay.source = SHED if relay.state.shed else DEFAULT
            relay.failsafe_reason = None
            self._publish(relay)
        self._persist(force=True)
        for board in self.boards.values():
            self._guard(board.name, board.close, proves=False)

    # -- inputs (paho's thread: queue only) --------------------------------------------------

    def _receive(self, inbound: Inbound) -> None:
        try:
            # Back-pressure on a flood; a control thread that stopped taking must not hang
            # paho's network thread forever.
            self.inbox.put(inbound, timeout=5)
        except queue.Full:
            log.error("service=relays inbox full: dropped a message on %s", inbound.topic[:120])

    # -- control thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                inbound: Inbound | None = self.inbox.get(timeout=TICK_S)
            except queue.Empty:
                inbound = None
            if inbound is not None:
                self._safely("message", partial(self._handle, inbound))
            self._safely("control pass", self._control)
            # Answers go out after the pass that applied them (and published the new state):
            # a requester that sees the reply already holds the relay's new state.
            while self._replies:
                request, answer = self._replies.pop(0)
                self._safely("reply", partial(self._reply, request, answer))

    def _reply(self, request: Inbound, answer: bytes) -> None:
        self.bus.reply(request, answer)

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        """Run one message or one pass; whatever it raises is logged and announced (once per
        distinct error), and the loop goes on: no input can stop the control thread."""
        try:
            action()
        except Exception as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.exception("service=relays %s failed", what)
            if self._failures.get(what) != error:
                self._failures[what] = error
                with contextlib.suppress(Exception):
                    self.bus.event(EventKind.HANDLER_FAILED, what=what, error=error)

    def _handle(self, inbound: Inbound) -> None:
        if inbound.topic == self._ha_status:
            if Presence.decode(inbound.payload) == Presence(True):
                self._discover()
            return
        topic = self.bus.topics.parse(inbound.topic)
        if topic is None:
            return
        if topic.service == "relays" and topic.device is not None:
            relay_id = topic.device[:64]
            if topic.kind == TopicKind.RELAY_SET:
                self._command(inbound, relay_id)
            elif topic.kind == TopicKind.RELAY_SHED:
                self._shed(relay_id, inbound.payload)
            elif topic.kind == TopicKind.RELAY_AUTO:
                self._auto(relay_id, inbound)
        elif topic.service == "shedding":
            self._shedding(topic, inbound)
        elif topic.service == "automation" and topic.kind == TopicKind.STATUS:
            presence = Presence.decode(inbound.payload)
            if isinstance(presence, Rejection):
                self._reject(None, topic, presence)
            else:
                self._automation_online = presence.online

    def _command(self, inbound: Inbound, relay_id: str) -> None:
        relay = self.relays.get(relay_id)
        result = (Rejection(f"unknown relay {relay_id!r}") if relay is None
                  else commands.decode_for(inbound.payload, relay.cfg.kind))
        applied, until = False, None
        if isinstance(result, Rejection):
            self._reject(relay_id, TopicKind.RELAY_SET, result)
        else:
            assert relay is not None
            apply_command(relay.state, result, self.clock(), self.cfg.timezone)
            applied = not self._held(relay)
            until = relay.state.until
            self.bus.event(EventKind.COMMAND, relay=relay_id, mode=result.mode,
                           order=result.order, for_s=result.for_s, applied=applied,
                           until=None if until is None else _iso(until),
                           note=None if applied else "remembered: applied when the load is "
                           "restored")
            if not applied:  # the output stays: say now what waits (pending_order, mode)
                self._publish(relay)
        self._replies.append((inbound, commands.reply(relay_id, result, applied, until).encode()))

    def _shed(self, relay_id: str, payload: bytes) -> None:
        relay = self.relays.get(relay_id)
        if relay is None or not payload:
            # A load shedding knows and we do not; or a cleared retained flag (the state
            # file keeps the last one).
            return
        flag = ShedFlag.decode(payload)
        if isinstance(flag, Rejection):
            self._reject(relay_id, TopicKind.RELAY_SHED, flag)
            return
        relay.state.under_shedding = True
        if flag.shed != relay.state.shed:
            relay.state.shed = flag.shed
            relay.state.shed_reason = flag.reason

    def _auto(self, relay_id: str, inbound: Inbound) -> None:
        relay = self.relays.get(relay_id)
        if relay is None:
            return
        if not inbound.payload:  # the automation cleared its wish
            relay.wish = relay.wish_until = None
            return
        wish = AutoWish.decode(inbound.payload)
        value = None if isinstance(wish, Rejection) else wish_value(relay.cfg, wish.value)
        if isinstance(wish, Rejection) or value is None:
            why = wish if isinstance(wish, Rejection) else Rejection(
                f"{wish.value!r} is not a value for a {relay.cfg.kind} relay")
            self._reject(relay_id, TopicKind.RELAY_AUTO, why)
            return
        relay.wish = value
        # A wish counts while its message expiry runs (the broker gives what is left of it).
        expiry = inbound.expiry_s
        relay.wish_until = time.monotonic() + expiry if expiry else None

    def _shedding(self, topic: Topic, inbound: Inbound) -> None:
        now = time.monotonic()
        if topic.kind == TopicKind.STATUS:
            presence = Presence.decode(inbound.payload)
            if isinstance(presence, Rejection):
                self._reject(None, topic, presence)
            else:
                self.watch.status(presence.online)
        elif topic.kind in (TopicKind.HEARTBEAT, TopicKind.STATE):
            if not inbound.payload:  # expired or cleared
                if topic.kind == TopicKind.STATE and topic.device:
                    self.watch.state(topic.device[:64], None, None, now)
                return
            state = DeviceState.decode(inbound.payload)
            if isinstance(state, Rejection):
                self._reject(None, topic, state)
            elif topic.kind == TopicKind.HEARTBEAT:
                self.watch.heartbeat(state, now, time.time())
            elif topic.device:
                self.watch.state(topic.device[:64], state, inbound.expiry_s, now)

    def _reject(self, relay_id: str | None, topic: Topic | TopicKind, why: Rejection) -> None:
        """Report a refused message: which relay, which kind of topic, why, and a bounded
        excerpt (never the payload itself)."""
        kind = topic if isinstance(topic, TopicKind) else topic.kind
        service = "relays" if isinstance(topic, TopicKind) else topic.service
        log.info("service=relays relay=%s rejected %s/%s: %s", relay_id, service, kind.value,
                 why.reason)
        self.bus.event(EventKind.REJECTED, relay=relay_id, service=service, topic=kind.value,
                       reason=why.reason, excerpt=why.excerpt)

    def _held(self, relay: Relay) -> bool:
        """Held in its safe state by a shed flag or the fail-safe."""
        return relay.state.shed or (self.watch.failsafe and relay.state.under_shedding)

    def _failsafe(self, mono: float) -> None:
        change = self.watch.update(mono)
        if change is None:
            return
        under = sorted(r.cfg.id for r in self.relays.values() if r.state.under_shedding)
        if change:
            log.warning("service=relays %s: %s go to their safe state", self.watch.reason,
                        ", ".join(under) or "no relay")
            self.bus.event(EventKind.SHEDDING_OFFLINE, relays=under, reason=self.watch.reason,
                           note="loads shedding could shed are held in their safe state")
        else:
            log.info("service=relays shedding is back: normal rules resume")
            self.bus.event(EventKind.SHEDDING_BACK, relays=under)

    def _control(self) -> None:
        now = self.clock()
        mono = time.monotonic()
        self._failsafe(mono)
        for relay in self.relays.values():
            if expire(relay.state, now):
                self.bus.event(EventKind.FORCED_EXPIRED, relay=relay.cfg.id)
            wish = relay.live_wish(mono) if self._automation_online else None
            value, source = desired(relay.cfg, relay.state, wish, self.watch.failsafe)
            current = relay.output.written
            relay.failsafe_reason = self.watch.reason if source == FAILSAFE else None
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
            # Often enough that the retained state (with its short expiry) never lapses
            # while relays runs, and is gone soon after it died.
            self._next_publish = mono + self._publish_every_s
            for relay in self.relays.values():
                self._publish(relay)
            if mono >= self._next_save:
                self._next_save = mono + SAVE_EVERY_S
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
            self.bus.event(EventKind.READBACK_MISMATCH, relay=relay.cfg.id, read=got[0],
                           expected=expected)
        return bool(relay.readback_ok)

    def _reassert(self, now: float) -> None:
        """Catch an expander that reset (all optos off = radiators on Confort) and fix it."""
        for board in self.boards.values():
            reset: list[bool] = []
            if self._guard(board.name, self._probe(board, reset)) and reset[0]:
                log.warning("service=relays board=%s was reset: outputs re-applied", board.name)
                self.bus.event(EventKind.BOARD_RESET, board=board.name)
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
                self.bus.event(EventKind.BOARD_ERROR, board=board, error=str(exc))
            return False
        if proves and self._board_errors.pop(board, None) is not None:
            log.info("service=relays board=%s working again", board)
            self.bus.event(EventKind.BOARD_OK, board=board)
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def _count_on_time(self, now: float) -> None:
        # The day of relays.timezone (as `until`), not the host's: a container runs in UTC.
        today = datetime.fromtimestamp(now, ZoneInfo(self.cfg.timezone)).date().isoformat()
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
        # A short expiry: after a crash the state (readback_ok included) is gone soon.
        self.bus.publish_state(self.bus.topics.relay_state(relay.cfg.id),
                               relay.status(), self.cfg.state_expiry_s)

    def _discover(self) -> None:
        if self.discovery_prefix is None:
            return
        for relay in self.relays.values():
            topic, payload = relay_discovery(self.bus.topics, relay.cfg, self.discovery_prefix)
            announce(self.bus, relay.cfg.id, topic, to_json(payload),
                     self.discovery_prefix)

