"""A pulse meter's index: ``energy_wh = base_wh + pulses × 1000 / imp_per_kwh``, pure.

The base is the index when counting began (``initial_index_wh``) or when it was last
calibrated from the meter's display; the pulses are those counted since. Computed afresh
from integers, so 0.1 Wh pulses never accumulate float error; never decreasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class MeterIndex:
    """The persisted part of one meter."""

    imp_per_kwh: float
    base_wh: float = 0.0
    pulses: int = 0  # since the base
    pulses_total: int = 0  # since the meter was first counted

    @property
    def energy_wh(self) -> float:
        """The index now."""
        return self.base_wh + self.pulses * 1000.0 / self.imp_per_kwh

    def add(self, pulses: int) -> None:
        """Pulses accepted by the counter."""
        self.pulses += pulses
        self.pulses_total += pulses

    def calibrate(self, energy_wh: float) -> str | None:
        """Set the index from the meter's display; the reason when refused (never down)."""
        now = self.energy_wh
        if energy_wh < now:
            return (f"{energy_wh:g} Wh is below the present index {now:g} Wh: the index "
                    "never decreases")
        self.base_wh, self.pulses = energy_wh, 0
        return None

    def catch_up(self, energy_wh: float, pulses_total: int | None) -> float:
        """After an unclean stop, the index last published (the broker's retained state) may
        be ahead of the last save: take it, so the index never steps back across a kill -9.
        Returns the Wh taken back (0 when the save was not behind)."""
        behind = energy_wh - self.energy_wh
        if behind <= 0:
            return 0.0
        self.base_wh += behind
        if pulses_total is not None and pulses_total > self.pulses_total:
            self.pulses_total = pulses_total
        return behind

    def snapshot(self) -> dict[str, Any]:
        """What is saved."""
        return {"base_wh": self.base_wh, "pulses": self.pulses,
                "pulses_total": self.pulses_total, "imp_per_kwh": self.imp_per_kwh}

    @classmethod
    def restore(cls, saved: object, imp_per_kwh: float, initial_wh: float) -> MeterIndex:
        """From a snapshot (or a fresh one at ``initial_wh``); a changed meter constant
        keeps the saved index as the new base, so it neither jumps nor rewinds."""
        if not isinstance(saved, dict):
            return cls(imp_per_kwh, initial_wh)
        try:
            old = cls(float(saved["imp_per_kwh"]), float(saved["base_wh"]),
                      int(saved["pulses"]), int(saved["pulses_total"]))
        except (KeyError, TypeError, ValueError):
            return cls(imp_per_kwh, initial_wh)
        if old.imp_per_kwh != imp_per_kwh:
            return cls(imp_per_kwh, old.energy_wh, 0, old.pulses_total)
        return old
