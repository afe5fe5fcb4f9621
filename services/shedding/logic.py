"""Shedding decisions from teleinfo readings. Pure: no I/O, time passed in.

Shed on the frame that shows the excess, only loads on the overloaded phase, in priority
order, enough of them to cover the excess when their power is declared (else one per frame);
restore one at a time, most important first, below a lower threshold and after a delay.
Stale data holds everything shed and restores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.core.contract import MeterState
from services.shedding.config import LoadConfig, SheddingConfig


@dataclass(frozen=True, slots=True)
class Decision:
    """Shed or restore one load, and why (published as an event and on .../shed)."""

    relay: str
    shed: bool
    phase: int
    load_va: float | None
    limit_va: float | None
    reason: str


@dataclass
class Shedder:
    """The shed set and the timers around it."""

    cfg: SheddingConfig
    shed: dict[str, float] = field(default_factory=dict)  # relay -> since (epoch s)
    last_change: float = float("-inf")
    last_reading: float | None = None
    online: bool = True
    stale_reported: bool = False
    limit_va: list[float] = field(default_factory=list)
    load_va: list[float] = field(default_factory=list)
    last_rotation: float = float("-inf")

    def __post_init__(self) -> None:
        self.loads = sorted(self.cfg.loads, key=lambda ld: ld.priority)
        if self.cfg.limit_va:
            self.limit_va = list(self.cfg.limit_va)

    # -- inputs -------------------------------------------------------------------------------

    def reading(self, r: MeterState, now: float) -> list[Decision]:
        """A teleinfo state: shed on its excess, or restore when well under the limit."""
        self.last_reading = now
        self.stale_reported = False
        self._measure(r)
        flagged = set(r.overload_phases or ([1] if r.overload else []))
        if r.overload and not flagged:
            flagged = set(range(1, len(self.load_va) + 1)) or {1}
        out: list[Decision] = []
        for phase in self._phases():
            out += self._shed_phase(phase, phase in flagged, now)
        if out:
            self.last_change = now
            return out
        if not flagged and not self.is_stale(now):
            out = self._restore(now) or self._rotate(now)
        return out

    def availability(self, online: bool) -> None:
        """The meter's availability topic."""
        self.online = online

    def is_stale(self, now: float) -> bool:
        """No trustworthy meter data: hold what is shed, restore nothing."""
        return (
            not self.online
            or self.last_reading is None
            or now - self.last_reading > self.cfg.stale_after_s
        )

    # -- measuring ----------------------------------------------------------------------------

    def _measure(self, r: MeterState) -> None:
        per_phase = r.apparent_power_phase_va
        if r.subscribed_power_kva is not None:  # standard: SINSTS(1..3) against PREF
            total_va = r.apparent_power_va
            loads = per_phase or ((total_va,) if total_va is not None else ())
            if loads and not self.cfg.limit_va:
                total = r.subscribed_power_kva * 1000.0
                self.limit_va = [total / len(loads)] * len(loads)
            self.load_va = list(loads) or self.load_va
        elif r.current_a is not None:  # historique: IINST(1..3) against ISOUSC, in VA
            volts = r.voltage_v or (self.cfg.voltage_v,) * len(r.current_a)
            self.load_va = [a * v for a, v in zip(r.current_a, volts, strict=False)]
            if r.subscribed_current_a is not None and not self.cfg.limit_va:
                limit = r.subscribed_current_a * self.cfg.voltage_v
                self.limit_va = [limit] * len(self.load_va)

    def _phases(self) -> range:
        return range(1, max(len(self.load_va), len(self.limit_va), 1) + 1)

    def _ratio(self, phase: int, extra_va: float = 0.0) -> float | None:
        i = phase - 1
        if i >= len(self.load_va) or i >= len(self.limit_va) or self.limit_va[i] <= 0:
            return None
        return (self.load_va[i] + extra_va) / self.limit_va[i]

    def _values(self, phase: int) -> tuple[float | None, float | None]:
        i = phase - 1
        load = self.load_va[i] if i < len(self.load_va) else None
        limit = self.limit_va[i] if i < len(self.limit_va) else None
        return load, limit

    # -- deciding -----------------------------------------------------------------------------

    def _on_phase(self, load: LoadConfig, phase: int) -> bool:
        return load.phase in (0, phase)

    def _shed_phase(self, phase: int, flagged: bool, now: float) -> list[Decision]:
        ratio = self._ratio(phase)
        over = ratio is not None and ratio >= self.cfg.shed_at
        if not (over or flagged):
            return []
        load_va, limit_va = self._values(phase)
        if over and ratio is not None:
            reason = (f"phase {phase} at {ratio:.0%} of {limit_va:.0f} VA "
                      f"(shed at {self.cfg.shed_at:.0%})")
            excess = (load_va or 0.0) - self.cfg.shed_at * (limit_va or 0.0)
        else:
            reason = f"overrun signalled by the meter on phase {phase}"
            excess = 0.0
        out: list[Decision] = []
        covered = 0.0
        for load in self.loads:
            if load.relay in self.shed or not self._on_phase(load, phase):
                continue
            self.shed[load.relay] = now
            out.append(Decision(load.relay, True, phase, load_va, limit_va, reason))
            if load.power_w is None:
                break  # unknown effect: see what the next frame says
            covered += load.power_w / (3 if load.phase == 0 else 1)
            if covered >= excess:
                break
        return out

    def _fits(self, load: LoadConfig) -> bool:
        phases = list(self._phases()) if load.phase == 0 else [load.phase]
        extra = (load.power_w or 0.0) / len(phases)
        for phase in phases:
            ratio = self._ratio(phase, extra)
            if ratio is None or ratio >= self.cfg.restore_below:
                return False
        return True

    def _restore(self, now: float) -> list[Decision]:
        if not self.shed or now - self.last_change < self.cfg.restore_delay_s:
            return []
        for load in reversed(self.loads):  # most important first
            if load.relay in self.shed and self._fits(load):
                del self.shed[load.relay]
                self.last_change = now
                phase = load.phase or 1
                load_va, limit_va = self._values(phase)
                ratio = self._ratio(phase) or 0.0
                return [Decision(load.relay, False, phase, load_va, limit_va,
                                 f"phase {phase} at {ratio:.0%}, under "
                                 f"{self.cfg.restore_below:.0%} with the load counted")]
        return []

    def _rotate(self, now: float) -> list[Decision]:
        """Between the thresholds: swap which comfort load stays shed, every rotation_s."""
        if not self.cfg.rotation_s or now - self.last_rotation < self.cfg.rotation_s:
            return []
        shed = [ld for ld in self.loads if ld.rotate and ld.relay in self.shed]
        if not shed or now - self.last_change < self.cfg.rotation_s:
            return []
        oldest = min(shed, key=lambda ld: self.shed[ld.relay])
        fresh = [ld for ld in self.loads if ld.rotate and ld.relay not in self.shed
                 and ld.phase == oldest.phase]
        if not fresh:
            return []
        nxt = fresh[0]
        self.shed[nxt.relay] = now
        del self.shed[oldest.relay]
        self.last_rotation = self.last_change = now
        load_va, limit_va = self._values(oldest.phase or 1)
        return [
            Decision(nxt.relay, True, nxt.phase, load_va, limit_va, "rotation"),
            Decision(oldest.relay, False, oldest.phase, load_va, limit_va, "rotation"),
        ]

    def state(self, now: float) -> dict[str, Any]:
        """The shedding service's state message."""
        return {
            "limit_va": [round(v) for v in self.limit_va],
            "load_va": [round(v) for v in self.load_va],
            "shed": sorted(self.shed),
            "stale": self.is_stale(now),
            # Its own time: a burst queued for the historian must not collapse to one instant.
            "ts": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
