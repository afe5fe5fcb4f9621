"""Buttons that steer relays (issue 16): TM1638 keys polled and debounced, or GPIO
push-buttons, become press/release events; ``RelayButtons`` turns those into ordinary relay
commands (the contract's ``RelayCommand``, what ``relays/<id>/set`` and the api carry).

Key *i* cycles relay *i*: auto -> forced on (2 h) -> forced off (2 h) -> auto, starting from
the mode the relay reports; held ``long_press_s`` it returns the relay to auto. A press
gives at most one command: the cycle on release, or auto once the hold is long (so a long
press never also steps the cycle).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from services.core.contract import RelayCommand, RelayReport
from services.core.contract.messages import Mode
from services.core.gpio import GpioError, find_chip

POLL_S = 0.05  # the TM1638 keys' poll period
DEBOUNCE_READS = 2  # equal reads before a key's change is accepted
LONG_PRESS_S = 1.5
FORCED_S = 2 * 3600.0
PENDING_S = 5.0  # how long a sent mode stands in for the relay's report
NEXT_MODE: dict[str, Mode] = {"auto": "on", "on": "off", "off": "auto"}


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """Key ``key`` went down (``pressed``) or up at ``ts`` (s, monotonic clock)."""

    key: int
    pressed: bool
    ts: float


class ButtonSource(Protocol):
    """Where button events come from."""

    def read(self, timeout_s: float) -> list[ButtonEvent]:
        """The events seen so far, waiting up to ``timeout_s`` (empty: none)."""
        ...

    def close(self) -> None:
        """Stop; ``read`` then returns nothing."""
        ...


# -- polled keys (TM1638) --------------------------------------------------------------------


class Debouncer:
    """Key masks read every ``POLL_S``: a key's new level is accepted once ``reads``
    consecutive reads agree on it (a one-read glitch is dropped)."""

    def __init__(self, reads: int = DEBOUNCE_READS, keys: int = 8) -> None:
        self.reads = reads
        self.keys = keys
        self.stable = 0
        self._count = [0] * keys

    def feed(self, mask: int, ts: float) -> list[ButtonEvent]:
        """One read; the changes it confirms."""
        events = []
        for k in range(self.keys):
            level = mask >> k & 1
            if level == self.stable >> k & 1:
                self._count[k] = 0
                continue
            self._count[k] += 1
            if self._count[k] >= self.reads:
                self._count[k] = 0
                self.stable ^= 1 << k
                events.append(ButtonEvent(k, bool(level), ts))
        return events


class KeyPoller:
    """A ``ButtonSource`` over a key-mask reader (``TM1638.keys``), polled every ``POLL_S``
    and debounced. ``poll`` is one read, for callers that keep their own loop."""

    def __init__(self, keys: Callable[[], int], period_s: float = POLL_S,
                 reads: int = DEBOUNCE_READS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = keys
        self.period_s = period_s
        self._clock = clock
        self._debouncer = Debouncer(reads)
        self._next = clock()
        self._closed = threading.Event()

    def poll(self) -> list[ButtonEvent]:
        """Read the keys once."""
        return self._debouncer.feed(self._keys(), self._clock())

    def read(self, timeout_s: float) -> list[ButtonEvent]:
        """Poll on the period until an event or ``timeout_s``."""
        deadline = self._clock() + timeout_s
        while not self._closed.is_set():
            now = self._clock()
            if now >= self._next:
                self._next += self.period_s
                if self._next <= now:  # late (a slow read): no back-to-back reads
                    self._next = now + self.period_s
                events = self.poll()
                if events:
                    return events
                continue
            if now >= deadline:
                return []
            self._closed.wait(min(self._next, deadline) - now)
        return []

    def close(self) -> None:
        """Stop polling."""
        self._closed.set()


# -- GPIO push-buttons ----------------------------------------------------------------------


class GpiodButtons:
    """Push-buttons on GPIO lines (key *i* is ``lines[i]``), to ground by default: edges
    from the kernel with its debounce, bias and monotonic timestamps."""

    def __init__(self, chip: str, lines: Sequence[int], *, bias: str = "pull-up",
                 active_low: bool = True, debounce_us: int = 20_000,
                 consumer: str = "enerbox-display") -> None:
        import gpiod  # noqa: PLC0415 (only where the hardware is)
        from gpiod.line import Bias, Clock, Direction, Edge  # noqa: PLC0415

        biases = {"pull-up": Bias.PULL_UP, "pull-down": Bias.PULL_DOWN,
                  "disabled": Bias.DISABLED}
        self.path = find_chip(chip)
        self._key = {line: i for i, line in enumerate(lines)}
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE
        settings = gpiod.LineSettings(
            direction=Direction.INPUT, edge_detection=Edge.BOTH, bias=biases[bias],
            active_low=active_low, debounce_period=timedelta(microseconds=debounce_us),
            event_clock=Clock.MONOTONIC)
        try:
            self._req: Any = gpiod.request_lines(self.path, consumer=consumer,
                                                 config={tuple(lines): settings})
        except OSError as exc:
            raise GpioError(f"cannot request lines {list(lines)} of {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def read(self, timeout_s: float) -> list[ButtonEvent]:
        """Kernel events (with active_low, a press is a rising event)."""
        with self._lock:
            if self._req is None or not self._req.wait_edge_events(
                    timedelta(seconds=timeout_s)):
                return []
            events = self._req.read_edge_events()
        return [ButtonEvent(self._key[e.line_offset], e.event_type == self._rising,
                            e.timestamp_ns / 1e9) for e in events]

    def close(self) -> None:
        """Release the lines."""
        with self._lock:
            if self._req is not None:
                self._req.release()
                self._req = None


# -- relay logic (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayOrder:
    """A command for relay ``relay``, from key ``key``: publish ``command.encode()`` on
    ``Topics.relay_set(relay)``."""

    relay: str
    command: RelayCommand
    key: int


class RelayButtons:
    """Button events -> relay commands. ``relays[i]`` is key *i*'s relay (None: no relay).
    Feed it the relays' states (``observe``), the events (``handle``) and the time
    (``tick``, at least every poll, so that a long hold fires while still held)."""

    def __init__(self, relays: Sequence[str | None], long_press_s: float = LONG_PRESS_S,
                 forced_s: float = FORCED_S, pending_s: float = PENDING_S) -> None:
        self.relays = list(relays)
        self.long_press_s = long_press_s
        self.forced_s = forced_s
        self.pending_s = pending_s
        self._mode: dict[str, str] = {}
        # What was just sent, until the relay's state shows it: two quick presses step the
        # cycle twice even when the state lags (or never comes, after ``pending_s``).
        self._pending: dict[str, tuple[Mode, float]] = {}
        self._down: dict[int, float] = {}  # key -> when pressed (held, no command yet)

    def observe(self, relay: str, report: RelayReport) -> None:
        """The relay's state (its ``mode``: on/off forced, or auto)."""
        self._mode[relay] = report.mode
        pending = self._pending.get(relay)
        if pending is not None and pending[0] == report.mode:
            del self._pending[relay]

    def mode(self, relay: str, now: float) -> str:
        """The mode a press steps from: the one just sent, else the one reported."""
        pending = self._pending.get(relay)
        if pending is not None and now - pending[1] < self.pending_s:
            return pending[0]
        return self._mode.get(relay, "auto")

    def _relay(self, key: int) -> str | None:
        return self.relays[key] if 0 <= key < len(self.relays) else None

    def _order(self, key: int, relay: str, mode: Mode, now: float) -> RelayOrder:
        self._pending[relay] = (mode, now)
        command = RelayCommand(mode) if mode == "auto" else RelayCommand(mode, None,
                                                                          self.forced_s)
        return RelayOrder(relay, command, key)

    def handle(self, event: ButtonEvent) -> RelayOrder | None:
        """A press starts a hold; its release steps the cycle (or returns to auto if the
        hold was long and ``tick`` had not fired it yet)."""
        relay = self._relay(event.key)
        if relay is None:
            return None
        if event.pressed:
            self._down.setdefault(event.key, event.ts)  # a repeated press keeps its start
            return None
        start = self._down.pop(event.key, None)
        if start is None:
            return None  # a release without a press (held at start, or already fired)
        if event.ts - start >= self.long_press_s:
            return self._order(event.key, relay, "auto", event.ts)
        return self._order(event.key, relay, NEXT_MODE[self.mode(relay, event.ts)], event.ts)

    def tick(self, now: float) -> list[RelayOrder]:
        """Holds that reached ``long_press_s``: their relays back to auto (once per press)."""
        orders = []
        for key, start in list(self._down.items()):
            relay = self._relay(key)
            if relay is not None and now - start >= self.long_press_s:
                del self._down[key]
                orders.append(self._order(key, relay, "auto", now))
        return orders
