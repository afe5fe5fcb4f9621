"""Acknowledge a reading to the broker only once every sink holds it on disk.

The historian's MQTT session is durable and its acks manual: what it has not acknowledged,
the broker delivers again after a crash. The disk queues (InfluxDB, emoncms) take a reading
at once; the local history and the ledger keep it in memory until the next commit. So a
reading's ack waits here until a commit covers it: one transaction writes the history's
minutes, the ledger and the delivery marks, then the acks it covers go out.

After a kill -9 the broker redelivers what was not acked (and, between a commit and its acks
reaching the broker, a little that was). Nothing doubles:
- the delivery marks (the newest reading taken per device, written in the same transaction)
  turn away a reading that is not newer: a redelivered one, or a retained state its service
  re-published after a reconnect;
- the ledger counts from its baselines, and ignores a reading older than its baseline;
- InfluxDB overwrites a point with the same series and time (VictoriaMetrics with dedup).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable

from services.historian.deadletter import DeadLetters
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger

Ack = Callable[[], None]
Device = tuple[str, str]  # service, device
MARK = "stored_ms:"  # meta rows: stored_ms:<service>/<device> = newest reading's ts in ms
_NO_MINUTE = -1  # a message with nothing for the local history (bad, or not a state)
_ALL = 1 << 62  # a cutoff above every minute


class Checkpoint:
    """Delivery marks and the acks held until the commit that covers them."""

    def __init__(self, history: LocalHistory, ledger: Ledger,
                 dead: DeadLetters | None = None) -> None:
        self.history, self.ledger, self.dead = history, ledger, dead
        with history.db_lock:
            rows = history.db.execute(
                "SELECT name, value FROM meta WHERE name >= ? AND name < ?",
                (MARK, MARK[:-1] + chr(ord(MARK[-1]) + 1))).fetchall()
        self._stored: dict[Device, int] = {}
        for name, value in rows:
            service, _, device = str(name)[len(MARK):].partition("/")
            self._stored[(service, device)] = int(value)
        self._taken = dict(self._stored)  # newest reading taken, committed or not
        # (minute of the reading's points, its ack), in the order the broker sent them:
        # MQTT wants the acks in that order.
        self._pending: deque[tuple[int, Ack]] = deque()

    @property
    def pending(self) -> int:
        """Acks held."""
        return len(self._pending)

    def late(self, now: float, grace_s: float) -> bool:
        """Whether an ack waits on a minute that closed more than ``grace_s`` ago: a reading
        that came after its minute's commit time (held by its publisher or the broker during
        an outage, or the backlog a restarted historian finds) is to be written at once, not
        at the next commit, so a power cut costs the open minute only. Judged on the clock,
        not on what this process committed: a historian just started has committed nothing,
        and the backlog it receives is all late (CI lost a restarted historian's backlog,
        held in RAM until its first commit, to the power cut that came before it)."""
        closed = int((now - grace_s) // 60)
        return any(0 <= minute < closed for minute, _ack in self._pending)

    def take(self, service: str, device: str, ts: float | None) -> bool:
        """Whether a reading is new, i.e. newer than every one taken from its device; a
        reading without its own time always is (its time is the historian's clock)."""
        if ts is None:
            return True
        ms = round(ts * 1000)
        key = (service, device)
        if ms <= self._taken.get(key, -1):
            return False
        self._taken[key] = ms
        return True

    def hold(self, ack: Ack, ts: float | None = None) -> None:
        """Keep a message's ack until a commit covers the minute of ``ts`` (None: a message
        that left nothing in the local history: the next commit covers it)."""
        self._pending.append((_NO_MINUTE if ts is None else int(ts // 60), ack))

    def commit(self, now: float, *, force: bool = False) -> int:
        """Write the closed minutes (all of them with ``force``), the ledger and the marks in
        one transaction, then send the acks it covers; returns how many were sent."""
        cutoff = _ALL if force else int(now // 60)
        held = len(self._pending)  # what came in during the commit waits for the next one
        # A mark never covers an unwritten minute: a reading of the open minute that comes
        # back after a crash is still taken.
        limit = cutoff * 60_000 - 1 if not force else _ALL
        marks = {k: min(ms, limit) for k, ms in self._taken.items()
                 if min(ms, limit) > self._stored.get(k, -1)}
        batch = self.ledger.take()

        def also(db: sqlite3.Connection) -> None:
            self.ledger.write(db, batch)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(f"{MARK}{s}/{d}", ms) for (s, d), ms in marks.items()])
            if self.dead is not None:  # same transaction: no SD write of its own
                self.dead.write(db)

        try:
            self.history.flush(now, force=force, also=also)
        except BaseException:
            self.ledger.restore(batch)
            raise
        self._stored.update(marks)
        sent = 0
        # A prefix only (the order of the acks), up to the first reading of an open minute.
        while sent < held and self._pending[0][0] < cutoff:
            _minute, ack = self._pending.popleft()
            ack()
            sent += 1
        return sent
