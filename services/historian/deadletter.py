"""Dead letters: the messages the historian could not store, set aside for inspection.

A table in the history file, written in the checkpoint's transaction (no extra SD write of
its own), bounded to ``MAX_ROWS``: the oldest go first. A message lands here when the
contract refuses it, when its ``ts`` is not sane, or when storing it raised; it is then
acknowledged like any other, so it is never redelivered and never stops ingestion.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

MAX_ROWS = 1000
EXCERPT = 200  # characters of the payload kept

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
    excerpt TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message set aside: when it arrived (box clock), where, why, and its start."""

    ts: float
    topic: str
    reason: str
    excerpt: str


def letter(ts: float, topic: str, reason: str, payload: bytes) -> DeadLetter:
    """A dead letter quoting at most ``EXCERPT`` characters of the payload."""
    text = payload[: EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT]
    return DeadLetter(ts, topic[:EXCERPT], reason[:EXCERPT], text)


class DeadLetters:
    """Letters held in memory until the next commit writes them (``write``)."""

    def __init__(self, db: sqlite3.Connection, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self.count = 0  # set aside since start
        self._lock = threading.Lock()
        self._pending: list[DeadLetter] = []
        db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    def add(self, item: DeadLetter) -> None:
        """Hold one letter for the next commit (memory bounded like the table)."""
        with self._lock:
            self.count += 1
            self._pending.append(item)
            del self._pending[: -self.max_rows]

    def write(self, db: sqlite3.Connection) -> None:
        """Insert what is held and trim to ``max_rows``, in the caller's transaction."""
        with self._lock:
            items, self._pending = self._pending, []
        if not items:
            return
        try:
            db.executemany("INSERT INTO dead_letters(ts, topic, reason, excerpt) "
                           "VALUES (?, ?, ?, ?)",
                           [(i.ts, i.topic, i.reason, i.excerpt) for i in items])
            db.execute("DELETE FROM dead_letters WHERE id <= "
                       "(SELECT max(id) FROM dead_letters) - ?", (self.max_rows,))
        except BaseException:
            with self._lock:  # the transaction rolls back: keep them for the next one
                self._pending[:0] = items
                del self._pending[: -self.max_rows]
            raise


def read(path: Path) -> list[DeadLetter]:
    """Every letter in a history file, oldest first (read-only; none if no table yet)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT ts, topic, reason, excerpt FROM dead_letters ORDER BY id")
        return [DeadLetter(float(t), str(tp), str(r), str(e)) for t, tp, r, e in rows]
    except sqlite3.OperationalError:  # a file from before dead letters
        return []
    finally:
        db.close()
