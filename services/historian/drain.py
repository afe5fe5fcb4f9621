"""The forward half of store-and-forward: one thread moves spooled items to a server.

Items leave the spool only after the server accepted them (ack after success), so an
outage, a crash or a restart loses nothing; the sinks subclass ``SpoolDrain`` and only say
how to send one batch.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from services.historian.spool import Spool

log = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any]], None]
Batch = list[tuple[int, str]]


def http_answers(url: str, timeout_s: float) -> bool:
    """Whether an HTTP GET of ``url`` gets an answer below 500 (a probe: the body is ignored)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (http only)
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:  # 401, 404...: the server is there; 503: not yet
        return exc.code < 500
    except (OSError, ValueError):  # refused, reset, timeout
        return False


class SinkDownError(Exception):
    """The server cannot take the items now (refused, 5xx, timeout): keep them, retry."""


class BadDataError(Exception):
    """The server refused the items as malformed: sending them again cannot help."""


class _StoppingError(Exception):
    """stop() was called in the middle of a batch split: leave the rest queued."""


class SpoolDrain:
    """Base of the sinks: peek a batch, send it, ack it once accepted; back off while down."""

    name = "sink"
    # Halve a refused batch to find and drop only the bad items. Needs a server that
    # stores nothing of a refused request, or stores it idempotently (InfluxDB does).
    split_bad_batches = True
    backoff_min_s = 1.0
    backoff_max_s = 60.0
    # While backing off, ask the server cheaply (``_probe``) this often whether it answers
    # again: a batch is re-sent within about this long of its return, not after the backoff.
    probe_interval_s = 2.0
    probe_timeout_s = 1.0

    def __init__(
        self, spool: Spool, *, batch_size: int, on_event: EventCallback | None = None
    ) -> None:
        self.spool = spool
        self.batch_size = batch_size
        self.on_event = on_event
        self.written_total = 0
        self.failed_batches = 0
        self.dropped_bad = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by puts, and by stop()
        self._nudge = threading.Event()  # cuts a backoff short: stop() and flush()
        self._thread: threading.Thread | None = None
        self._down_since: float | None = None
        self.probe_failures = 0  # probes that found the server unreachable (tests wait on it)
        self._unreachable = False  # a probe failed since the last return or success
        spool.add_waker(self._wake)

    @property
    def down(self) -> bool:
        """Whether the last attempt failed."""
        return self._down_since is not None

    def _send(self, items: list[str]) -> None:
        """Deliver items; raise SinkDownError to retry later, BadDataError if refused."""
        raise NotImplementedError

    def _probe(self) -> bool | None:
        """Whether the server answers a cheap request; None: this sink cannot probe."""
        return None

    def start(self) -> None:
        """Start the drain thread."""
        self._stop.clear()
        self._nudge.clear()  # left set by a previous stop(): it would cut the first backoff
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-sink", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Let the current batch finish, then stop the thread (at most ``timeout_s``)."""
        self._stop.set()
        self._wake.set()
        self._nudge.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (retrying now if backing off); False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._nudge.set()
        while self.spool.count() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        backoff = self.backoff_min_s
        while not self._stop.is_set():
            self._wake.clear()  # before peeking: a put after this point wakes the wait below
            try:
                batch = self.spool.peek(self.batch_size)
                if not batch:
                    self._wake.wait(1.0)
                    continue
                self._deliver(batch)
            except _StoppingError:
                break
            # Anything else, expected (SinkDownError) or not (a bug, a broken ack), keeps the items
            # queued and is retried: a sink must not die quietly with a backlog.
            except Exception as exc:
                self._failed(exc)
                if self._wait_out(backoff):
                    backoff = self.backoff_min_s  # the server came back: drain now
                else:
                    backoff = min(backoff * 2, self.backoff_max_s)
                continue
            backoff = self.backoff_min_s
            self._nudge.clear()  # a flush() made while up must not cut the next backoff short
            self._recovered()

    def _wait_out(self, backoff: float) -> bool:
        """Wait ``backoff``, probing meanwhile; True if the server came back (cut it short).

        Only a probe that answers after one that did not (in this or an earlier wait of the
        same outage) counts as a return: a server that answers probes but refuses writes (a
        bad token) keeps the plain backoff.
        """
        deadline = time.monotonic() + backoff
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._nudge.wait(min(left, self.probe_interval_s)):
                self._nudge.clear()
                return False
            if self._stop.is_set():
                return False
            answered = self._probe()
            if answered is None:
                continue
            if not answered:
                self._unreachable = True
                self.probe_failures += 1
            elif self._unreachable:
                self._unreachable = False  # if this retry fails too, back off again
                log.info("%s answers again: retrying now", self.name)
                return True

    def _deliver(self, batch: Batch) -> None:
        try:
            self._send([item for _, item in batch])
        except BadDataError as exc:
            self._reject(batch, exc)
        else:
            self._accepted(batch)

    def _accepted(self, batch: Batch) -> None:
        self.spool.ack(batch[-1][0])
        self.written_total += len(batch)

    def _reject(self, batch: Batch, exc: BadDataError) -> None:
        dropped: list[tuple[str, str]] = []  # (item, why)
        try:
            if self.split_bad_batches and len(batch) > 1:
                self._split(batch, dropped)
            else:
                self.spool.ack(batch[-1][0])
                dropped.extend((item, str(exc)) for _, item in batch)
        finally:
            # Also when a split stops half-way: what was dropped so far is reported.
            if dropped:
                self.dropped_bad += len(dropped)
                first, why = dropped[0]
                log.warning("%s refused %d item(s) as bad data, dropped; first: %.200s (%.200s)",
                            self.name, len(dropped), first, why)
                self._emit("sink_bad_data", {"sink": self.name, "dropped": len(dropped),
                                             "first_bad": first[:500], "error": why[:500]})

    def _split(self, batch: Batch, dropped: list[tuple[str, str]]) -> None:
        # In order, left half first, so what is acked is always a prefix of the queue.
        mid = len(batch) // 2
        for half in (batch[:mid], batch[mid:]):
            if self._stop.is_set():
                raise _StoppingError
            try:
                self._send([item for _, item in half])
            except BadDataError as exc:
                if len(half) > 1:
                    self._split(half, dropped)
                else:
                    self.spool.ack(half[0][0])
                    dropped.append((half[0][1], str(exc)))
            else:
                self._accepted(half)

    def _failed(self, exc: Exception) -> None:
        self.failed_batches += 1
        self.last_error = str(exc) or type(exc).__name__
        if self._down_since is None:  # one log line and one event per outage, not per retry
            self._down_since = time.monotonic()
            backlog = self.spool.count()
            log.warning("%s sink down: %s (%d queued; retrying with backoff)",
                        self.name, self.last_error, backlog)
            self._emit("sink_down", {"sink": self.name, "error": self.last_error,
                                     "backlog": backlog})

    def _recovered(self) -> None:
        self._unreachable = False
        if self._down_since is None:
            return
        down_s = time.monotonic() - self._down_since
        self._down_since = None
        backlog = self.spool.count()
        log.info("%s sink up again after %.0f s (%d still queued)", self.name, down_s, backlog)
        self._emit("sink_up", {"sink": self.name, "backlog": backlog, "down_s": round(down_s, 1)})

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(name, data)
        except Exception:
            log.exception("%s: on_event(%s) failed", self.name, name)
