"""Is the shedding service there? Its status, heartbeat and state, and the grace period before
the relays take over its one rule (DESIGN.md "Control": loads it could shed go to their safe
state). Pure: monotonic ``now`` and wall-clock ``wall`` are passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.core.contract import DeviceState

HEARTBEAT_MISSES = 3  # a heartbeat older than this many intervals: shedding is hung
DEFAULT_INTERVAL_S = 5.0


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@dataclass
class SheddingWatch:
    """What relays know of shedding, and whether the fail-safe is on."""

    grace_s: float
    started: float  # monotonic start of relays: with no news yet, the grace runs from here
    online: bool | None = None  # its status; None: no news yet
    beat_deadline: float | None = None  # None: no heartbeat seen (one that never beats)
    # Its latest state: which meter, whether it said stale, when its message expiry runs out.
    # Only the latest counts (shedding watches one meter): an old meter's retained state
    # left from a config change must not hold the fail-safe on forever.
    meter: str | None = None
    stale: bool = False
    state_deadline: float = math.inf
    failsafe: bool = False
    reason: str | None = None  # why the fail-safe is on
    down_since: float | None = None

    def __post_init__(self) -> None:
        self.down_since = self.started

    def status(self, online: bool) -> None:
        """Its retained status (its last will says offline at once after a kill -9)."""
        self.online = online

    def heartbeat(self, beat: DeviceState, now: float, wall: float) -> None:
        """A heartbeat ``{"ts", "interval_s"}``: good until 3 intervals after its ``ts``."""
        interval = beat.number("interval_s") or DEFAULT_INTERVAL_S
        interval = _clamp(interval, 0.1, 3600.0)
        limit = HEARTBEAT_MISSES * interval
        # A retained beat can be older than its arrival: count from its own time.
        age = 0.0 if beat.ts is None else _clamp(wall - beat.ts.timestamp(), 0.0, limit)
        self.beat_deadline = now + limit - age

    def state(self, meter: str, state: DeviceState | None, expiry_s: int | None,
              now: float) -> None:
        """Its state for a meter (None: cleared); ``stale: true`` means its meter went silent,
        and a state older than its own message expiry is no news either."""
        if state is None:
            if meter == self.meter:
                self.meter, self.stale, self.state_deadline = None, False, math.inf
            return
        self.meter = meter
        self.stale = state.fields.get("stale") is True
        self.state_deadline = now + expiry_s if expiry_s else math.inf

    def why_gone(self, now: float) -> str | None:
        """Why shedding cannot be relied on now, or None when it is there and fresh."""
        if self.online is None:
            return "no news of shedding since start"
        if not self.online:
            return "shedding offline"
        if self.beat_deadline is not None and now > self.beat_deadline:
            return "shedding heartbeat lost"
        if self.stale:
            return f"shedding data stale (meter {self.meter})"
        if now > self.state_deadline:
            return "shedding state expired"
        return None

    def update(self, now: float) -> bool | None:
        """Advance the grace period: True when the fail-safe just turned on, False when it
        just turned off (shedding back and fresh), None when nothing changed."""
        why = self.why_gone(now)
        if why is None:
            self.down_since = None
            if self.failsafe:
                self.failsafe, self.reason = False, None
                return False
            return None
        if self.down_since is None:
            self.down_since = now
        if not self.failsafe and now - self.down_since >= self.grace_s:
            self.failsafe, self.reason = True, why
            return True
        return None
