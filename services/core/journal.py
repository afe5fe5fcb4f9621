"""The journal: every state a service publishes, once, for the historian, across any one fault.

The retained ``state`` carries a message expiry (a dead service's state must disappear), and
MQTT v5 expires a message in every queue, the historian's durable one included: a historian
down longer than the expiry would lose readings. So each state is also published on its
``journal`` twin, QoS 1, not retained, without expiry. This class is the publisher's side:

- **held while nobody records**: a state goes out only once this broker connection has seen
  the recorder's retained ``status`` (``online``, or ``offline`` with its durable session
  queueing for it). A broker restarted without the recorder's session has no such status:
  the journal waits in memory, in order (``capacity``, oldest dropped past it), until the
  recorder has subscribed again (it publishes ``online`` after its subscriptions);
- **held while the broker is away**: the same queue, flushed in order on reconnection;
- **replayed after a reconnection**: what went out in the last ``replay_s`` is sent again
  first, since a broker killed between its PUBACK and its delivery to the recorder lost it.
  The recorder keeps the newest ``ts`` it stored per device and turns away what is not newer,
  so a replay never doubles a reading; other journal readers dedupe on (topic, ts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

REPLAY_S = 30.0
Send = Callable[[str, bytes], None]


class Journal:
    """The in-order queue of one service's journal messages."""

    def __init__(self, send: Send, service: str, *, gated: bool, capacity: int,
                 replay_s: float = REPLAY_S, clock: Callable[[], float] = time.monotonic) -> None:
        """``send(topic, payload)`` hands a message to the MQTT client; ``gated``: wait for the
        recorder's status after each connection (no recorder configured: send at once)."""
        self._send = send
        self.service = service
        self.gated = gated
        self.capacity = capacity
        self.replay_s = replay_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, bytes]] = deque()
        self._recent: deque[tuple[float, str, bytes]] = deque()
        self._connected = False
        self._recorder_seen = False
        self.sent = 0
        self.replayed = 0
        self.dropped = 0
        self._drop_logged = False

    @property
    def open(self) -> bool:
        """Whether a message put now goes out at once."""
        return self._connected and (self._recorder_seen or not self.gated)

    @property
    def held(self) -> int:
        """Messages waiting for the broker or the recorder."""
        return len(self._pending)

    def put(self, topic: str, payload: bytes) -> None:
        """Queue one state's journal message and send what can go."""
        with self._lock:
            if len(self._pending) >= self.capacity:
                self._pending.popleft()
                self.dropped += 1
                if not self._drop_logged:
                    self._drop_logged = True
                    log.warning("service=%s journal full (%d states held): dropping the "
                                "oldest until the recorder is back", self.service, self.capacity)
            self._pending.append((topic, payload))
            self._flush()

    def connected(self) -> None:
        """A (re)connection: the recorder's status must be seen again on this broker."""
        with self._lock:
            self._connected = True
            self._recorder_seen = False
            self._open_if_ready()

    def disconnected(self) -> None:
        """The connection is gone: hold everything from now on."""
        with self._lock:
            self._connected = False
            self._recorder_seen = False

    def recorder_status(self, payload: bytes) -> None:
        """The recorder's retained status as this connection received it."""
        with self._lock:
            seen = payload in (b"online", b"offline")
            was_open = self.open
            self._recorder_seen = seen
            if not was_open:
                self._open_if_ready()

    def _open_if_ready(self) -> None:
        if not self.open:
            return
        # Replay first (older), then what was held (newer): the recorder sees ts in order.
        now = self._clock()
        self._trim(now)
        for _at, topic, payload in self._recent:
            self._send(topic, payload)
            self.replayed += 1
        if self._pending or self._recent:
            log.info("service=%s journal: %d replayed, %d held sent", self.service,
                     len(self._recent), len(self._pending))
        self._drop_logged = False
        self._flush()

    def _flush(self) -> None:
        if not self.open:
            return
        now = self._clock()
        while self._pending:
            topic, payload = self._pending.popleft()
            self._send(topic, payload)
            self._recent.append((now, topic, payload))
            self.sent += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > self.replay_s:
            self._recent.popleft()
