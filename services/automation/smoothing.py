"""Exponential smoothing over irregular samples (the surplus allocator's grid filter)."""

from __future__ import annotations

import math
from typing import Any


class Ema:
    """Exponential moving average with time constant `tau_s`, weighted by the real elapsed time.

    The first sample after a reset is taken as it is, so an average restarts from fresh data.
    """

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.value: float | None = None
        self.t: float | None = None

    def reset(self) -> None:
        """Forget the average: the next sample starts it again."""
        self.value = None
        self.t = None

    def update(self, t: float, x: float) -> float:
        """Fold sample `x` taken at `t` into the average and return it."""
        if self.value is None or self.t is None or t < self.t or self.tau_s <= 0:
            # No history, a clock that went back, or no smoothing: the sample is the average.
            self.value = x
        else:
            alpha = 1.0 - math.exp(-(t - self.t) / self.tau_s)
            self.value += (x - self.value) * alpha
        self.t = t
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """The average as JSON-ready data."""
        return {"value": self.value, "t": self.t}

    def load(self, data: object) -> None:
        """Restore what `to_dict` gave; anything unreadable restarts the average."""
        self.reset()
        if isinstance(data, dict):
            value, t = finite(data.get("value")), finite(data.get("t"))
            if value is not None and t is not None:
                self.value, self.t = value, t


def finite(x: object) -> float | None:
    """A finite float from persisted JSON, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)
