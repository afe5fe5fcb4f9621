"""The automation's per-relay state as the api shows it, read leniently from
``<p>/automation/<relay>/state``: a mistyped field reads as absent, an unknown status makes
the whole message unusable (it is then ignored, the last good one kept)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.core.contract import DeviceState
from services.core.contract.messages import parse_ts

# DESIGN.md's statuses, plus "disabled" (the load's automation switched off by the user).
STATUSES = ("idle", "surplus", "catch_up", "required", "scheduled", "blocked", "done",
            "unreachable", "stale", "disabled")
HOLDS = ("min_on", "min_off", "max_starts")
REASON_MAX = 200  # a sentence; a longer one is cut, not refused
MAX_S = 7 * 86400.0  # no daily counter reaches a week: beyond, the field is nonsense
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True, slots=True)
class AutomationReading:
    """One relay's automation state, typed."""

    status: str
    enabled: bool | None
    hold: str | None
    reason: str | None
    on_today_s: float | None
    min_on_s: float | None
    remaining_s: float | None
    latest_start: str | None
    by: str | None
    starts_today: int | None
    ts: str | None
    expiry_s: int | None  # the message expiry it came with (None: it never expires)
    received: float  # monotonic time it arrived

    @classmethod
    def read(cls, state: DeviceState, expiry_s: int | None,
             received: float) -> AutomationReading | None:
        """The reading, or None when the message says no known status."""
        f = state.fields
        status = f.get("status")
        if not isinstance(status, str) or status not in STATUSES:
            return None
        enabled = f.get("enabled")
        hold = f.get("hold")
        reason = f.get("reason")
        starts = f.get("starts_today")
        latest = f.get("latest_start")
        by = f.get("by")
        return cls(
            status=status,
            enabled=enabled if isinstance(enabled, bool) else None,
            hold=hold if isinstance(hold, str) and hold in HOLDS else None,
            reason=reason[:REASON_MAX] if isinstance(reason, str) and reason else None,
            on_today_s=_seconds(state, "on_today_s"),
            min_on_s=_seconds(state, "min_on_s"),
            remaining_s=_seconds(state, "remaining_s"),
            latest_start=latest if _is_time(latest) else None,
            by=by if isinstance(by, str) and _HHMM.fullmatch(by) else None,
            starts_today=starts if isinstance(starts, int) and not isinstance(starts, bool)
            and 0 <= starts <= 10_000 else None,
            ts=None if state.ts is None else
            state.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            expiry_s=expiry_s, received=received,
        )

    def stale(self, now: float, service_offline: bool) -> bool:
        """Its message has expired (the broker would have dropped it), or the automation
        said offline: what it says is no longer what drives the relay."""
        expired = self.expiry_s is not None and now - self.received > self.expiry_s
        return expired or service_offline

    def view(self, now: float, service_offline: bool) -> dict[str, Any]:
        """The fields of the api's AutomationView."""
        return {"enabled": self.enabled, "status": self.status, "hold": self.hold,
                "reason": self.reason, "on_today_s": self.on_today_s,
                "min_on_s": self.min_on_s, "remaining_s": self.remaining_s,
                "latest_start": self.latest_start, "by": self.by,
                "starts_today": self.starts_today, "ts": self.ts,
                "stale": self.stale(now, service_offline)}


def _seconds(state: DeviceState, key: str) -> float | None:
    value = state.number(key)
    return value if value is not None and 0 <= value <= MAX_S else None


def _is_time(value: object) -> bool:
    """An ISO local time with its offset, as the service writes latest_start."""
    return isinstance(value, str) and parse_ts(value) is not None
