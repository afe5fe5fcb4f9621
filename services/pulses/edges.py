"""Where a meter's edges come from, behind one small interface (DESIGN.md, "Hardware at the
boundary only"): the kernel's GPIO character device through the PyPI ``gpiod`` 2.x package,
a replay of recorded edges, or a simulator driven by a power profile.

Every source gives ``Edge`` values in time order, with the *logical* level (an S0 output
pulls the line low when active: ``active_low``) and, from the kernel, a per-line sequence
number so that an overflowed event buffer shows as lost events rather than as a silent gap.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from services.core.gpio import GpioError, find_chip

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Edge:
    """A change of the line's logical level; ``ts_ns`` on the monotonic clock."""

    ts_ns: int
    active: bool
    seq: int | None = None


class EdgeSource(Protocol):
    """What the service needs of a source of edges."""

    def read(self, timeout_s: float) -> list[Edge]:
        """The edges seen so far, waiting up to ``timeout_s`` for the first (empty: none)."""
        ...

    def now_ns(self) -> int:
        """The source's clock, the one its timestamps are on."""
        ...

    def close(self) -> None:
        """Release the line; ``read`` then returns nothing."""
        ...


# -- gpiod ------------------------------------------------------------------------------------


class GpiodSource:
    """Edges of one line from the kernel: edge detection on both edges, kernel debounce,
    bias, active-low and monotonic timestamps, with the line's sequence numbers."""

    def __init__(self, chip: str, line: int, *, bias: str = "pull-up", active_low: bool = True,
                 debounce_us: int = 0, consumer: str = "enerbox-pulses") -> None:
        import gpiod  # noqa: PLC0415
        from gpiod.line import Bias, Clock, Direction  # noqa: PLC0415
        from gpiod.line import Edge as LineEdge  # noqa: PLC0415

        biases = {"pull-up": Bias.PULL_UP, "pull-down": Bias.PULL_DOWN,
                  "disabled": Bias.DISABLED, "as-is": Bias.AS_IS}
        self.path = find_chip(chip)
        self.line = line
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE
        settings = gpiod.LineSettings(
            direction=Direction.INPUT, edge_detection=LineEdge.BOTH, bias=biases[bias],
            active_low=active_low, debounce_period=timedelta(microseconds=debounce_us),
            event_clock=Clock.MONOTONIC,
        )
        try:
            self._req: Any = gpiod.request_lines(self.path, consumer=consumer,
                                                 config={line: settings})
        except OSError as exc:
            raise GpioError(f"cannot request line {line} of {self.path}: {exc}") from exc
        self.initial_active = bool(self._req.get_value(line))
        self._lock = threading.Lock()

    def read(self, timeout_s: float) -> list[Edge]:
        """Kernel events (logical: with active_low, a rising event is the line going low)."""
        with self._lock:
            if self._req is None:
                return []
            if not self._req.wait_edge_events(timedelta(seconds=timeout_s)):
                return []
            events = self._req.read_edge_events()
        return [Edge(e.timestamp_ns, e.event_type == self._rising, e.line_seqno)
                for e in events]

    def now_ns(self) -> int:
        """CLOCK_MONOTONIC, the clock the events are stamped with."""
        return time.monotonic_ns()

    def close(self) -> None:
        """Release the line."""
        with self._lock:
            if self._req is not None:
                self._req.release()
                self._req = None


# -- replay -----------------------------------------------------------------------------------


def load_edges(path: Path) -> list[Edge]:
    """A recording: one JSON object per line, ``{"ts_ns": int, "active": bool, "seq": int}``
    (``seq`` optional; blank lines and lines starting with # ignored)."""
    edges = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(text)
            edges.append(Edge(int(row["ts_ns"]), bool(row["active"]),
                              None if row.get("seq") is None else int(row["seq"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not an edge ({exc})") from exc
    return edges


def dump_edges(edges: Iterable[Edge]) -> str:
    """The recording format of ``load_edges``."""
    return "".join(json.dumps({"ts_ns": e.ts_ns, "active": e.active, "seq": e.seq}) + "\n"
                   for e in edges)


class ReplaySource:
    """Recorded edges, as fast as they are read (``now_ns`` follows the replay: after the
    last edge, each empty read moves it on by the timeout, so decays can be seen)."""

    def __init__(self, edges: Iterable[Edge] | Path, batch: int = 64) -> None:
        self._edges: Iterator[Edge] = iter(load_edges(edges) if isinstance(edges, Path)
                                           else list(edges))
        self._batch = batch
        self._now = 0
        self._closed = False

    def read(self, timeout_s: float) -> list[Edge]:
        """Up to ``batch`` edges at once, none when the recording is over."""
        if self._closed:
            return []
        out = [e for _, e in zip(range(self._batch), self._edges, strict=False)]
        if out:
            self._now = max(self._now, out[-1].ts_ns)
        else:
            self._now += int(timeout_s * NS)
        return out

    def now_ns(self) -> int:
        """The time of the last edge replayed (or later, once it is over)."""
        return self._now

    def close(self) -> None:
        """Stop replaying."""
        self._closed = True


# -- simulator --------------------------------------------------------------------------------


def simulate(power_w: Callable[[float], float], imp_per_kwh: float, start_s: float,
             end_s: float, *, width_s: float = 0.09, bounce_s: float = 0.0,
             seed: int = 0, energy_wh: float = 0.0) -> tuple[list[Edge], float]:
    """The edges a meter of ``imp_per_kwh`` sends between two times (s) for a power profile
    (W as a function of s), integrated every 10 ms; each pulse is ``width_s`` active (never
    more than half the interval at high power, as a real meter shortens them), with up to
    ``bounce_s`` of contact bounce on each edge. ``energy_wh`` carries the energy not yet
    pulsed from one call to the next; returns the edges and the carry."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, reproducible by seed)
    wh_per_pulse = 1000.0 / imp_per_kwh
    edges: list[Edge] = []
    step = 0.01
    t = start_s
    while t < end_s:
        dt = min(step, end_s - t)
        p = max(0.0, power_w(t))
        need = wh_per_pulse - energy_wh
        gained = p * dt / 3600
        if gained >= need and p > 0:
            at = t + need * 3600 / p
            energy_wh = gained - need
            width = min(width_s, 1800 * wh_per_pulse / p)  # half the interval at this power
            edges += _pulse(at, width, bounce_s, rng)
        else:
            energy_wh += gained
        t += dt
    return edges, energy_wh


def _pulse(at: float, width: float, bounce_s: float, rng: random.Random) -> list[Edge]:
    """One pulse's edges: bounces (short runs of the opposite level) after each edge."""
    out: list[Edge] = []
    for start, level in ((at, True), (at + width, False)):
        t = start
        out.append(Edge(round(t * NS), level))
        if bounce_s > 0:
            for _ in range(rng.randint(1, 3)):
                t += rng.uniform(0.0002, bounce_s / 3)
                out.append(Edge(round(t * NS), not level))
                t += rng.uniform(0.0002, bounce_s / 3)
                out.append(Edge(round(t * NS), level))
    return out


def constant(watts: float) -> Callable[[float], float]:
    """A flat power profile."""
    return lambda _t: watts


class SimSource:
    """A simulated meter in real time: ``power_w()`` is read as time passes (the service
    wires it to the water heater's relay for `make run`); edges carry sequence numbers."""

    def __init__(self, power_w: Callable[[], float], imp_per_kwh: float,
                 width_s: float = 0.09, bounce_s: float = 0.0, seed: int = 0) -> None:
        self.power_w = power_w
        self.imp_per_kwh = imp_per_kwh
        self.width_s, self.bounce_s, self.seed = width_s, bounce_s, seed
        self._t = time.monotonic()
        self._carry = 0.0
        self._seq = 0
        self._pending: list[Edge] = []
        self._closed = threading.Event()

    def read(self, timeout_s: float) -> list[Edge]:
        """The edges due by now, waiting up to ``timeout_s`` for one."""
        deadline = time.monotonic() + timeout_s
        while not self._closed.is_set():
            now = time.monotonic()
            if now > self._t:
                watts = self.power_w()  # constant over one read: they are short
                new, self._carry = simulate(
                    constant(watts), self.imp_per_kwh, self._t, now,
                    width_s=self.width_s, bounce_s=self.bounce_s, seed=self.seed + self._seq,
                    energy_wh=self._carry)
                self._t = now
                for e in new:
                    self._seq += 1
                    self._pending.append(Edge(e.ts_ns, e.active, self._seq))
            due = [e for e in self._pending if e.ts_ns <= round(now * NS)]
            if due:
                self._pending = self._pending[len(due):]
                return due
            if now >= deadline:
                return []
            self._closed.wait(min(0.02, deadline - now))  # the simulated line's tick
        return []

    def now_ns(self) -> int:
        """The monotonic clock (the simulated edges are stamped on it)."""
        return time.monotonic_ns()

    def close(self) -> None:
        """Stop."""
        self._closed.set()
