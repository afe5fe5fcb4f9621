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
from pathlib import Path
from typing import Any

from services.core.bus import DURABLE_RECEIVE_MAXIMUM, Ack, Bus
from services.core.config import Settings
from services.core.contract import DeviceState, Rejection, TopicKind
from services.core.history.tariffs import TariffBook
from services.core.service import Service
from services.historian.checkpoint import Checkpoint
from services.historian.config import HistorianConfig
from services.historian.emoncms import EmoncmsSink
from services.historian.history import LocalHistory
from services.historian.influx import InfluxSink
from services.historian.ledger import Ledger
from services.historian.points import Point, flatten
from services.historian.spool import Spool

log = logging.getLogger(__name__)
BATCH_S = 0.5
MB = 1024 * 1024
# Acks held that make the worker commit at once, not at the next flush_interval_s: half the
# broker's window, so it keeps sending while we write (a backlog drains at full speed).
COMMIT_AT_PENDING = DURABLE_RECEIVE_MAXIMUM // 2


class HistorianService(Service[HistorianConfig]):
    """Subscribes to every device and control state; writes them where configured."""

    name = "historian"

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
        self.checkpoint = Checkpoint(self.history, self.ledger)
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
                influx.org, influx.bucket, batch_size=influx.batch_size, on_event=self._event,
            )
        emon = self.cfg.emoncms
        if emon.enabled:
            spool = Spool(data_dir / "emoncms-queue.sqlite3", int(emon.disk_budget_mb * MB))
            self.emoncms = EmoncmsSink(
                spool, emon.url, emon.apikey.get_secret_value() if emon.apikey else "",
                node_prefix=emon.node_prefix, on_event=self._event,
            )
        self._budget_warned: set[str] = set()
        topic = bus.topics.any_device(TopicKind.STATE)
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
        next_flush = time.monotonic() + self.cfg.flush_interval_s
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
                elif mono >= next_flush:
                    next_flush = mono + self.cfg.flush_interval_s
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
            parsed = self.bus.topics.parse(topic)
            if parsed is None or parsed.device is None or not payload:
                held.append((ack, None))
                continue  # not a state, or a cleared retained one
            service, device = parsed.service, parsed.device
            decoded = DeviceState.decode(payload)
            if isinstance(decoded, Rejection):
                held.append((ack, None))
                continue  # bounded in size and depth: it can never reach flatten()
            own_ts = decoded.ts.timestamp() if decoded.ts is not None else None
            if not self.checkpoint.take(service, device, own_ts):
                held.append((ack, None))
                continue  # taken before: redelivered after a crash, or re-published
            state = dict(decoded.fields)
            ts = own_ts if own_ts is not None else now
            held.append((ack, ts))  # acked once the history's minute of ts is committed
            points = flatten(service, device, state, ts)
            for point in points:
                self.history.add(point)
            self.points_in += len(points)
            self._ledger(service, device, state, ts)
            if self.influx is not None:
                lines += [p.to_line() for p in points]
            if self.emoncms is not None and self._emon_due(service, device, ts):
                emon += points
        self._queue("influxdb", self.influx, lines)
        if self.emoncms is not None and emon:
            self._queue("emoncms", self.emoncms, self.emoncms.items(emon))
        for ack, ts_held in held:
            self.checkpoint.hold(ack, ts_held)

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


def _no_ack() -> None:
    """Messages of a clean session are acknowledged by paho itself."""
