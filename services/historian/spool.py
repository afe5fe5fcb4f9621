"""A durable FIFO of strings on disk (SQLite, WAL): the store half of store-and-forward.

The historian puts one batch per call; a sink thread peeks the oldest items, sends them and
acks them once the server took them. Items put and not acked survive a crash or a power cut,
in order; acked items never come back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# AUTOINCREMENT: ids never repeat, even after the queue was emptied.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL)"
)
# SQLite stores TEXT as UTF-8 here: the length of the blob is the payload's size in bytes.
_TOTALS = "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(item AS BLOB))), 0) FROM spool"


class Spool:
    """Durable FIFO of strings in its own SQLite file; one process owns it at a time."""

    def __init__(self, path: Path, budget_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.budget_bytes = budget_bytes
        self.dropped_total = 0
        # One connection shared under a lock: the service thread puts, the sink thread peeks
        # and acks; SQLite serialises writers anyway, and the lock keeps the counters exact.
        self._lock = threading.Lock()
        self._wakers: list[threading.Event] = []
        # isolation_level=None: no implicit transactions, each call is one BEGIN ... COMMIT.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL. In WAL mode NORMAL skips the fsync of the WAL at each commit and
        # syncs only at checkpoints, so a power cut can lose every batch committed since the
        # last checkpoint (up to ~1000 pages, or however long the kernel keeps dirty pages),
        # not just the last one: put() would have returned for points that are gone. FULL
        # costs one fsync per put()/ack() call, i.e. per batch, never per point. (A kill -9
        # loses nothing either way: committed WAL frames are in the page cache.)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        # One scan at open; from then on count and size are kept in memory, updated in the
        # same critical section as the transaction that changes them.
        count, size = self._db.execute(_TOTALS).fetchone()
        self._count, self._bytes = int(count), int(size)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: take the write lock up front, so the transaction cannot fail half-way
        # on a lock upgrade; an uncommitted transaction leaves nothing behind after a crash.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, items: Sequence[str]) -> int:
        """Append items in one transaction; returns how many were refused (budget full)."""
        accepted: list[tuple[str]] = []
        added = 0
        with self._lock:
            room = self.budget_bytes - self._bytes
            for item in items:
                size = len(item.encode("utf-8"))
                if size > room:
                    # Refuse this item and every later one: what is queued stays a gap-free
                    # prefix of what was offered, and queued items are never evicted.
                    break
                accepted.append((item,))
                room -= size
                added += size
            if accepted:
                with self._transaction() as db:
                    db.executemany("INSERT INTO spool (item) VALUES (?)", accepted)
                self._count += len(accepted)
                self._bytes += added
            dropped = len(items) - len(accepted)
            self.dropped_total += dropped
        if accepted:
            for waker in self._wakers:
                waker.set()
        return dropped

    def peek(self, max_items: int) -> list[tuple[int, str]]:
        """The oldest items with their ids, oldest first; nothing is removed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, item FROM spool ORDER BY id LIMIT ?", (max_items,)
            ).fetchall()
        return [(int(i), str(item)) for i, item in rows]

    def ack(self, up_to_id: int) -> None:
        """Delete every item with an id <= ``up_to_id``, in one transaction."""
        with self._lock:
            with self._transaction() as db:
                count, size = db.execute(_TOTALS + " WHERE id <= ?", (up_to_id,)).fetchone()
                if count:
                    db.execute("DELETE FROM spool WHERE id <= ?", (up_to_id,))
            self._count -= int(count)
            self._bytes -= int(size)

    def count(self) -> int:
        """How many items are queued."""
        with self._lock:
            return self._count

    def size_bytes(self) -> int:
        """Payload bytes queued (UTF-8), without SQLite's own overhead."""
        with self._lock:
            return self._bytes

    def add_waker(self, event: threading.Event) -> None:
        """Set ``event`` after every put that queued something (a sink waits on it)."""
        with self._lock:
            self._wakers.append(event)

    def close(self) -> None:
        """Close the database; the spool is unusable afterwards."""
        with self._lock:
            self._db.close()
