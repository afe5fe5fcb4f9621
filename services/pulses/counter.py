"""S0 pulse counting from line edges: a stable-level filter, pure (no I/O, no clock).

A pulse counts once the line has been active for ``min_pulse_ns`` after being inactive for
``min_gap_ns``: the filter follows the *level*, not the edges, so a bounce inside an edge
(or a glitch after a long active level) never counts, and there is no hold-off that could
drop a real edge (gpiozero's ``bounce_time``) or let a late bounce through. Time only moves
with the edges and with ``advance(now_ns)``, which the service calls when its edge wait
times out (deciding "active long enough" needs time to pass with no edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.pulses.edges import Edge

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CounterSettings:
    """One meter's filter and power settings (all times in ns)."""

    imp_per_kwh: float
    max_power_kw: float
    min_pulse_ns: int = 30_000_000
    min_gap_ns: int = 30_000_000
    zero_after_ns: int = 300 * NS
    stuck_after_ns: int = 2 * NS

    @property
    def wh_per_pulse(self) -> float:
        """Energy of one pulse."""
        return 1000.0 / self.imp_per_kwh

    @property
    def min_interval_ns(self) -> int:
        """The meter's physical minimum between two pulses, 3600 / (imp × kW) s, rounded up
        so that an accepted interval never gives more than max_power_kw."""
        return math.ceil(3600 * NS / (self.imp_per_kwh * self.max_power_kw))


@dataclass(slots=True)
class Diagnostics:
    """What the filter refused or could not see."""

    pulses: int = 0  # accepted since start
    rejected_short: int = 0  # active runs shorter than min_pulse (bounces, glitches)
    rejected_fast: int = 0  # pulses closer than the physical minimum (double triggers)
    lost_events: int = 0  # edges the kernel's sequence numbers say we never saw
    stuck_ns: int = 0  # time the line stayed active beyond stuck_after (closed runs)


class PulseCounter:
    """Counts accepted pulses of one line and derives the power from their intervals."""

    def __init__(self, settings: CounterSettings, start_ns: int, active: bool = False) -> None:
        self.s = settings
        self.diag = Diagnostics()
        self._level = active  # the raw level since _since
        self._since = start_ns
        self._now = start_ns
        # The filtered level: None until a level held long enough was seen. A line found
        # active at start is not a pulse: a pulse needs a gap seen before it.
        self._stable: bool | None = None
        self._seq: int | None = None
        # Where the pulse being confirmed began: its first rise since the last full gap, so
        # that bounces on its rising edge do not make its time (hence the power) jitter.
        self._rise: int | None = None
        self.last_pulse_ns: int | None = None  # last accepted pulse (the decay's reference)
        self._chain_start: int | None = None  # interval start usable for power (None: none)
        self._chain_last = 0
        self._chain_n = 0  # intervals accepted since _chain_start
        self._power_w: float | None = None  # last measured, before the decay bound

    # -- input ---------------------------------------------------------------------------------

    def edge(self, edge: Edge) -> None:
        """Feed one edge (in time order)."""
        if edge.seq is not None:
            if self._seq is not None and edge.seq != self._seq + 1:
                self.diag.lost_events += max(0, edge.seq - self._seq - 1)
                # We do not know what happened in between: no interval spans the gap.
                self._chain_start = None
                self._chain_n = 0
            self._seq = edge.seq
        ts = max(edge.ts_ns, self._now)  # never let time run backwards
        self.advance(ts)
        if edge.active == self._level:
            return  # a repeated level (a lost opposite edge): the run goes on
        if self._level and self._stable is not True and ts - self._since < self.s.min_pulse_ns:
            self.diag.rejected_short += 1
        if self._level and self._stable:
            self.diag.stuck_ns += self._stuck(ts)
        self._level = edge.active
        self._since = ts
        if edge.active and self._stable is not True and self._rise is None:
            self._rise = ts

    def advance(self, now_ns: int) -> None:
        """Let time pass to ``now_ns`` with the line at its present level."""
        if now_ns < self._now:
            return
        self._now = now_ns
        held = now_ns - self._since
        if self._level:
            if self._stable is False and held >= self.s.min_pulse_ns:
                self._stable = True
                self._pulse(self._since if self._rise is None else self._rise)
                self._rise = None
            elif self._stable is None and held >= self.s.min_pulse_ns:
                self._stable = True  # active since start: no gap seen, not a pulse
                self._rise = None
        elif held >= self.s.min_gap_ns:
            self._stable = False
            self._rise = None  # a glitch before this gap is not the next pulse's start

    def _pulse(self, ts: int) -> None:
        """A stable active level began at ``ts``: accept it unless too soon after the last."""
        if self.last_pulse_ns is not None and ts - self.last_pulse_ns < self.s.min_interval_ns:
            self.diag.rejected_fast += 1
            return
        self.diag.pulses += 1
        self.last_pulse_ns = ts
        if self._chain_start is None:
            self._chain_start, self._chain_n = ts, 0
        else:
            self._chain_n += 1
        self._chain_last = ts

    def _stuck(self, now: int) -> int:
        return max(0, now - self._since - self.s.stuck_after_ns)

    # -- output --------------------------------------------------------------------------------

    @property
    def stuck_s(self) -> float:
        """Total time the line stayed active beyond ``stuck_after`` (the run in progress too)."""
        current = self._stuck(self._now) if self._level and self._stable else 0
        return (self.diag.stuck_ns + current) / NS

    @property
    def stuck(self) -> bool:
        """The line is active for longer than ``stuck_after`` right now."""
        return bool(self._level and self._stable and self._stuck(self._now) > 0)

    def power_w(self) -> float | None:
        """Power now: the intervals since the last call (their span over n pulses), bounded
        by one pulse's energy over the time since the last pulse, 0 after ``zero_after``.
        None until one interval was measured (the first pulse after start gives none)."""
        if self._chain_start is not None and self._chain_n > 0:
            span = self._chain_last - self._chain_start
            self._power_w = self._chain_n * self.s.wh_per_pulse * 3600 * NS / span
            self._chain_start, self._chain_n = self._chain_last, 0
        if self._power_w is None or self.last_pulse_ns is None:
            return None
        # No pulse began since the last one, up to now, or up to the start of an active run
        # not yet long enough to count (it may be the next pulse, confirmed later).
        pending = self._stable is False and self._rise is not None
        since = (self._rise if pending and self._rise is not None else self._now) \
            - self.last_pulse_ns
        if since >= self.s.zero_after_ns:
            return 0.0
        if since > 0:
            return min(self._power_w, self.s.wh_per_pulse * 3600 * NS / since)
        return self._power_w
