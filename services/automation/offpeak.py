"""Off-peak hours learned from the meter's period changes (pure: times passed in).

Off-peak hours differ per meter and Enedis moves them; a box that is not told them learns
them: an hp -> hc change at 22:00 and the hc -> hp change that follows at 06:00 make the
window 22:00-06:00. A window counts once both of its edges were seen, and is forgotten when
it has not been seen for `FORGET_AFTER_DAYS` (the meter's hours changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from services.automation.units import Window

FORGET_AFTER_DAYS = 3
MAX_WINDOWS = 4  # a meter has at most a few off-peak windows a day (e.g. 02:00-07:00 + 13:00-16:00)

Period = Literal["hc", "hp"]


def _minute(now: datetime) -> int:
    return now.hour * 60 + now.minute


@dataclass
class OffpeakLearner:
    """Learns the windows from observed (local time, hc/hp) pairs."""

    windows: dict[tuple[int, int], date] = field(default_factory=dict)  # window -> last seen
    period: Period | None = None  # the period last seen
    hc_start: int | None = None  # minute the hc period started, when that change was seen

    def observe(self, now: datetime, period: Period | None) -> None:
        """One tariff state at local time ``now`` (``None``: neither hc nor hp)."""
        if period is None:
            self.period = self.hc_start = None
            return
        if period == self.period:
            return
        if period == "hc":
            # Only a change from hp counts: a start (or a gap) in hc says nothing of its start.
            self.hc_start = _minute(now) if self.period == "hp" else None
        elif self.period == "hc" and self.hc_start is not None:
            end = _minute(now)
            if end != self.hc_start:
                self.windows[(self.hc_start, end)] = now.date()
            self.hc_start = None
        self.period = period
        self._forget(now.date())

    def _forget(self, today: date) -> None:
        for key, seen in list(self.windows.items()):
            if (today - seen).days > FORGET_AFTER_DAYS:
                del self.windows[key]
        while len(self.windows) > MAX_WINDOWS:  # keep the most recently seen
            del self.windows[min(self.windows, key=lambda k: self.windows[k])]

    def learned(self) -> tuple[Window, ...] | None:
        """The windows seen (sorted), or None while none is known."""
        if not self.windows:
            return None
        return tuple(Window(s, e) for s, e in sorted(self.windows))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the windows; the open edge is not worth keeping across a restart)."""
        return {"windows": [[s, e, seen.isoformat()] for (s, e), seen in self.windows.items()]}

    @classmethod
    def from_dict(cls, data: object) -> OffpeakLearner:
        """Back from to_dict(); unreadable entries are dropped."""
        learner = cls()
        raw = data.get("windows") if isinstance(data, Mapping) else None
        for item in raw if isinstance(raw, list) else []:
            try:
                start, end, seen = item
                if (isinstance(start, int) and isinstance(end, int)
                        and 0 <= start < 1440 and 0 <= end < 1440 and start != end):
                    learner.windows[(start, end)] = date.fromisoformat(seen)
            except (TypeError, ValueError):
                continue
        return learner
