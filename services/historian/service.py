"""historian service: every state on the bus into the local history, the daily ledger,
InfluxDB and emoncms, without losing a reading when any of them is away.

The MQTT callback only appends to a list; a worker thread takes the list as it fills, turns
states into points and hands them on in batches: one transaction per batch into each disk
queue, one commit of the local history and the ledger per ``flush_interval_s``. A message is
acknowledged to the broker only after that commit (``checkpoint``): a kill -9 loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from services.core.bus import DURABLE_RECEIVE_MAXIMUM, Ack, Bus
from services.core.config import Settings
from services.core.contract import DeviceState, EventKind, Rejection, TopicKind
from services.core.history.tariffs import TariffBook
from services.core.service import Service
from services.historian.checkpoint import Checkpoint
from services.historian.config import HistorianConfig
from services.historian.deadletter import DeadLetters, letter
from services.historian.emoncms import EmoncmsSink
from services.historian.history import LocalHistory
from services.historian.influx import InfluxSink
from services.historian.ledger import Ledger
from services.historian.points import Point, flatten
from services.historian.spool import Spool

log = logging.getLogger(__name__)
BATCH_S = 0.5
MB = 1024 * 1024
MIN_TS = 946_684_800.0  # 2000-01-01T00:00:00Z: older is a device clock that was never set
# Acks held that make the worker commit at once, not at the next flush_interval_s: half the
# broker's window, so it keeps sending while we write (a backlog drains at full speed).
COMMIT_AT_PENDING = DURABLE_RECEIVE_MAXIMUM // 2
# Readings of a minute still in flight when it closes (a batch, the broker): they make it into
# that minute's commit when it waits this long past the boundary.
COMMIT_GRACE_S = 2.0


class HistorianService(Service[HistorianConfig]):
    """Subscribes to every device and control state; writes them where configured."""

    name = "historian"
    announces = False  # no HA discovery

    @classmethod
    def session_expiry_s(cls, config: Settings[HistorianConfig]) -> int | None:
        """A durable session: what the broker got while we were down is redelivered."""
        return int(config.section.session_expiry_s) or None

    def __init__(self, config: Settings[HistorianConfig], bus: Bus) -> None:
        super().__init__(config, bus)
        self.cfg = config.section
        data_dir = Path(config.general.data_dir)
        db = self.cfg.db_file or data_dir / "history.sqlite3"
        self.history = LocalHistory(db, self.cfg.retention_days)
        self.ledger = Ledger(self.history, TariffBook(tariffs=self.cfg.tariffs),
                             tz=self.cfg.timezone, max_power_w=self.cfg.max_power_w)
        with self.history.db_lock:
            self.dead = DeadLetters(self.history.db)
        self.checkpoint = Checkpoint(self.history, self.ledger, self.dead)
        self._reported: set[str] = set()  # topics whose first dead letter made an event
        self.production = {(s.service, s.device, s.field): s.scale_to_wh
                           for s in self.cfg.production}
        self.inbox: deque[tuple[str, bytes, Ack]] = deque()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="historian", daemon=True)
        self.influx: InfluxSink | None = None
        self.emoncms: EmoncmsSink | None = None
        self._emon_last: dict[tuple[str, str], float] = {}
        self.points_in = 0
        influx = self.cfg.influxdb
        if influx.enabled:
            spool = Spool(data_dir / "influx-queue.sqlite3", int(influx.disk_budget_mb * MB))
            self.influx = InfluxSink(
                spool, influx.url, influx.token.get_secret_value() if influx.token else None,
                influx.org, influx.bucket, batch_size=influx.batch_size,
                write_interval_s=influx.write_interval_s, on_event=self._event,
            )
        # The `site` tag of every line: two boxes' "linky" stay apart in a central database.
        self.site = influx.site or config.mqtt.prefix
        emon = self.cfg.emoncms
        if emon.enabled:
            spool = Spool(data_dir / "emoncms-queue.sqlite3", int(emon.disk_budget_mb * MB))
            self.emoncms = EmoncmsSink(
                spool, emon.url, emon.apikey.get_secret_value() if emon.apikey else "",
                node_prefix=emon.node_prefix, on_event=self._event,
            )
        self._budget_warned: set[str] = set()
        topic = bus.topics.any_device(TopicKind.JOURNAL)
        # Before the journal, the durable session followed the expiring retained states.
        legacy = bus.topics.any_device(TopicKind.STATE)
        bus.on_connected(lambda: bus.unsubscribe(legacy))
        if bus.durable_session_s:
            bus.subscribe_acked(topic, self._on_state)
        else:
            bus.subscribe(topic, lambda t, p: self._on_state(t, p, _no_ack))

    def start(self) -> None:
        """Start the worker and the sinks."""
        for sink in (self.influx, self.emoncms):
            if sink is not None:
                sink.start()
        self.thread.start()

    def healthy(self) -> bool:
        """The worker that stores and acknowledges what arrives runs."""
        return self.thread.is_alive() or self.stop_event.is_set()

    def stop(self) -> None:
        """Write everything received, then stop (queued points stay on disk for next time)."""
        self.stop_event.set()
        self.wake.set()
        self.thread.join(timeout=10)
        self._drain(time.time())
        self.checkpoint.commit(time.time(), force=True)  # every ack goes before the bus stops
        for sink in (self.influx, self.emoncms):
            if sink is not None:
                sink.stop()
                sink.spool.close()
        self.history.close()

    def _on_state(self, topic: str, payload: bytes, ack: Ack) -> None:
        self.inbox.append((topic, payload, ack))  # deque.append is atomic: no lock here
        self.wake.set()

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        self.bus.event(kind, **data)  # the sinks log their state changes themselves

    # -- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        # Work as soon as something arrives; under load the batches grow by themselves: one
        # disk-queue commit per batch. The broker sends at most DURABLE_RECEIVE_MAXIMUM
        # unacknowledged messages: past half of it, commit now so that the acks go out.
        next_flush = next_commit(time.time(), self.cfg.flush_interval_s)
        next_prune = 0.0
        while not self.stop_event.is_set():
            self.wake.wait(BATCH_S)
            self.wake.clear()
            now = time.time()
            try:
                self._drain(now)
                mono = time.monotonic()
                if self.checkpoint.pending >= COMMIT_AT_PENDING:
                    self.checkpoint.commit(now, force=True)
                elif now >= next_flush or next_flush - now > 2 * self.cfg.flush_interval_s:
                    # (the second test: the clock stepped back, as a Pi's does at NTP)
                    next_flush = next_commit(now, self.cfg.flush_interval_s)
                    self.checkpoint.commit(now)
                elif self.checkpoint.late(now, COMMIT_GRACE_S):
                    self.checkpoint.commit(now)
                if mono >= next_prune:
                    next_prune = mono + 86400
                    self.history.prune(now)
            except Exception:  # one bad batch must not end the history
                log.exception("service=historian batch failed")

    def _drain(self, now: float) -> None:
        items: list[tuple[str, bytes, Ack]] = []
        while self.inbox:
            items.append(self.inbox.popleft())
        if not items:
            return
        lines: list[str] = []
        emon: list[Point] = []
        # Every ack is held until the commit that covers its message, and handed to the
        # checkpoint only once the disk queues have the batch.
        held: list[tuple[Ack, float | None]] = []
        for topic, payload, ack in items:
            # One message that cannot be stored must not cost its batch: it is set aside
            # and acknowledged, and the others go on (a raise here would hold every ack).
            try:
                ts_held = self._one(topic, payload, now, lines, emon)
            except _PoisonError as exc:
                self._dead_letter(topic, str(exc), payload, now)
                ts_held = None
            except Exception as exc:
                log.exception("service=historian topic=%s cannot store it", topic)
                self._dead_letter(topic, f"{type(exc).__name__}: {exc}", payload, now)
                ts_held = None
            held.append((ack, ts_held))
        self._queue("influxdb", self.influx, lines)
        if self.emoncms is not None and emon:
            self._queue("emoncms", self.emoncms, self.emoncms.items(emon))
        for ack, ts_held in held:
            self.checkpoint.hold(ack, ts_held)

    def _one(self, topic: str, payload: bytes, now: float, lines: list[str],
             emon: list[Point]) -> float | None:
        """Store one message; the time its ack waits for (None: the next commit)."""
        parsed = self.bus.topics.parse(topic)
        if parsed is None or parsed.device is None or not payload:
            return None  # not a state, or a cleared retained one
        service, device = parsed.service, parsed.device
        decoded = DeviceState.decode(payload)
        if isinstance(decoded, Rejection):
            raise _PoisonError(decoded.reason)
        ts = None
        if decoded.ts is not None:
            ts = decoded.ts.timestamp()
            self._check_time(decoded.ts, ts, now)
        # Everything that can raise on odd data before anything is kept: nothing half-stored.
        state = dict(decoded.fields)
        points = flatten(service, device, state, decoded.ts or now)
        new_lines = [p.to_line(self.site) for p in points] if self.influx is not None else []
        if not self.checkpoint.take(service, device, ts):
            return None  # taken before: redelivered after a crash, or re-published
        at = ts if ts is not None else now
        for point in points:
            self.history.add(point)
        self.points_in += len(points)
        self._ledger(service, device, state, at)
        lines += new_lines
        if self.emoncms is not None and self._emon_due(service, device, at):
            emon += points
        return at  # acked once the history's minute of ts is committed

    def _check_time(self, when: datetime, ts: float, now: float) -> None:
        """Refuse a reading from before 2000 or further than max_clock_skew_s from the box's
        clock: stored as such it would fill a wrong day (our choice: reject, not re-stamp,
        since a re-stamped reading would claim a time it was not read at)."""
        if ts < MIN_TS:
            raise _PoisonError(f"ts {when.isoformat()} is before 2000-01-01")
        skew = ts - now
        if abs(skew) > self.cfg.max_clock_skew_s:
            raise _PoisonError(f"ts {when.isoformat()} is {skew:+.0f} s from the box's clock")

    def _dead_letter(self, topic: str, reason: str, payload: bytes, now: float) -> None:
        self.dead.add(letter(now, topic, reason, payload))
        if topic in self._reported:
            return  # once per topic: a flood of poison must not become a flood of events
        self._reported.add(topic)
        log.warning("service=historian topic=%s set aside: %s", topic, reason)
        item = letter(now, topic, reason, payload)
        self._event(EventKind.REJECTED, {"topic": topic, "reason": item.reason,
                                         "excerpt": item.excerpt[:80],
                                         "dead_letters": self.dead.count})

    def _queue(self, name: str, sink: InfluxSink | EmoncmsSink | None, items: list[str]) -> None:
        if sink is None or not items:
            return
        dropped = sink.spool.put(items)
        if dropped and name not in self._budget_warned:
            self._budget_warned.add(name)
            log.warning("service=historian %s queue full: new points refused", name)
            self._event("disk_budget_exceeded", {
                "sink": name, "dropped": dropped,
                "reason": f"{name} unreachable for too long: its disk queue is full, new points "
                          "are refused until it drains",
            })
        elif not dropped:
            self._budget_warned.discard(name)

    def _emon_due(self, service: str, device: str, ts: float) -> bool:
        key = (service, device)
        if ts - self._emon_last.get(key, float("-inf")) < self.cfg.emoncms.interval_s:
            return False
        self._emon_last[key] = ts
        return True

    def _ledger(self, service: str, device: str, state: dict[str, Any], ts: float) -> None:
        if service == "teleinfo":
            indexes = state.get("energy_import_by_index_wh")
            export = state.get("energy_export_wh")
            if isinstance(indexes, dict) or isinstance(export, int):
                self.ledger.observe_meter(
                    device, ts, indexes if isinstance(indexes, dict) else {},
                    export if isinstance(export, int) else None, state.get("meter_id"),
                )
        for (src_service, src_device, field), scale in self.production.items():
            if src_service == service and src_device == device:
                value = state.get(field)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.ledger.observe_production(f"{service}/{device}/{field}", ts,
                                                   value * scale)


def next_commit(now: float, interval_s: float) -> float:
    """The next commit time: just after a multiple of ``interval_s`` on the wall clock. With
    the default 60 s the minute that just closed is written at once: a power cut then costs
    the local history the open minute (and COMMIT_GRACE_S more), not up to two."""
    return (now // interval_s + 1) * interval_s + COMMIT_GRACE_S


class _PoisonError(ValueError):
    """A message refused for what it holds: the reason goes to the dead letters."""


def _no_ack() -> None:
    """Messages of a clean session are acknowledged by paho itself."""
