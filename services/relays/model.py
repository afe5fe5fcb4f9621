"""What a relay should be doing, and why.

Precedence: fail-safe (shedding gone) > shed (from shedding) > forced (user) > auto (a live
wish of the automation) > default. Pure: no I/O, time passed in. ``RelayState`` is what is
persisted across restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.core.contract import RelayCommand
from services.core.contract.orders import OFF_VALUES, Order, is_on
from services.relays.config import RelayConfig

__all__ = ["OFF_VALUES", "RelayState", "apply_command", "desired", "expire",
           "hold_for_min_time", "is_on", "next_wall_time", "wish_value"]

# The ``source`` of a relay's state: which rule decided its output.
FAILSAFE = "failsafe"  # shedding is gone: a load it could shed is held in its safe state
SHED = "shed"
USER = "user"
AUTO = "auto"
DEFAULT = "default"
SAFE_SOURCES = frozenset({FAILSAFE, SHED})  # exempt from min on/off times


@dataclass
class RelayState:
    """The persisted part of a relay: user orders, shed flag, counters."""

    mode: str = "auto"  # on / off / auto
    order: str | None = None  # fil pilote order of a forced 'on'
    until: float | None = None  # end of the forced mode, epoch seconds
    shed: bool = False
    shed_reason: str | None = None
    # Set by the first shed flag received: shedding manages this load, so the load goes to
    # its safe state when shedding is gone (fail-safe).
    under_shedding: bool = False
    on_time_today_s: float = 0.0
    day: str = ""  # local date on_time_today_s belongs to

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the state file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> RelayState:
        """Rebuild from the state file, ignoring unknown or mistyped keys."""
        state = cls()
        if isinstance(data, dict):
            for f in fields(cls):
                value = data.get(f.name)
                if f.name in data and _fits(f.name, value):
                    setattr(state, f.name, value)
        if state.mode not in ("on", "off", "auto"):
            state.mode = "auto"
        return state


_NUMBER = (int, float)
_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,), "order": (str, type(None)), "until": (*_NUMBER, type(None)),
    "shed": (bool,), "shed_reason": (str, type(None)), "under_shedding": (bool,),
    "on_time_today_s": _NUMBER, "day": (str,),
}


def _fits(name: str, value: object) -> bool:
    """A state file value of the right type (a bool is no number here)."""
    if isinstance(value, bool) and bool not in _TYPES[name]:
        return False
    return isinstance(value, _TYPES[name])


def wish_value(cfg: RelayConfig, value: str) -> str | None:
    """What an auto wish means for this relay (None: it does not suit it). A zone told on
    or off takes confort or arret; a switch takes no order."""
    if cfg.kind == "switch":
        return value if value in ("on", "off") else None
    if value == "on":
        return Order.CONFORT.value
    if value == "off":
        return Order.ARRET.value
    return value


def desired(
    cfg: RelayConfig, state: RelayState, wish: str | None = None, failsafe: bool = False
) -> tuple[str, str]:
    """(value, source): the output the relay should have now, and which rule decided.

    ``wish``: the automation's live wish (already checked fresh), ``failsafe``: shedding is
    gone and this relay is under shedding.
    """
    if failsafe and state.under_shedding:
        return cfg.safe_state, FAILSAFE
    if state.shed:
        return cfg.safe_state, SHED
    if state.mode != "auto":
        return _forced(cfg, state), USER
    if wish is not None:
        return wish, AUTO
    return cfg.default, DEFAULT


def _forced(cfg: RelayConfig, state: RelayState) -> str:
    if state.mode == "off":
        return "off" if cfg.kind == "switch" else Order.ARRET.value
    if cfg.kind == "switch":
        return "on"
    return state.order or (cfg.default if is_on(cfg.default) else Order.CONFORT.value)


def apply_command(
    state: RelayState, command: RelayCommand, now: float, timezone: str = "Europe/Paris"
) -> None:
    """Record a user command (kept while shed: it takes effect on restore). ``until`` ends at
    the next occurrence of that wall-clock time in ``timezone``."""
    state.mode = command.mode
    state.order = command.order.value if command.order and command.mode == "on" else None
    if command.for_s is not None:
        state.until = now + command.for_s
    elif command.until is not None:
        state.until = next_wall_time(now, *command.until, ZoneInfo(timezone))
    else:
        state.until = None


def next_wall_time(now: float, hour: int, minute: int, tz: ZoneInfo) -> float:
    """The first instant after ``now`` (epoch s) at which the clock in ``tz`` reads
    hour:minute: today if still ahead, else tomorrow.

    DST: on the autumn day a time that occurs twice ends at whichever occurrence comes next
    (the first, or the second when the first has passed); on the spring day a time in the gap
    (02:30 in Europe/Paris) ends at the first instant after the gap (03:00 summer time), the
    moment the clock would have passed it.
    """
    today = datetime.fromtimestamp(now, tz).date()
    for days in range(3):  # tomorrow always has it (or its gap's end): 3 days is plenty
        for instant in _instants(today + timedelta(days=days), hour, minute, tz):
            if instant > now:
                return instant
    raise AssertionError("unreachable: every day has the time or the end of its gap")


def _instants(day: date, hour: int, minute: int, tz: ZoneInfo) -> list[float]:
    """The real instants of a local time on a day, in order: one, two (the autumn fold), or
    none in a gap, which stands for the gap's end."""
    wall = datetime.combine(day, time(hour, minute))
    candidates = [wall.replace(tzinfo=tz, fold=fold).timestamp() for fold in (0, 1)]
    real = sorted({t for t in candidates
                   if datetime.fromtimestamp(t, tz).replace(tzinfo=None) == wall})
    return real or [_transition(min(candidates), max(candidates), tz)]


def _transition(before: float, after: float, tz: ZoneInfo) -> float:
    """The instant the UTC offset changes, between two instants on either side of it (to the
    second: zones change on whole seconds)."""
    offset = datetime.fromtimestamp(before, tz).utcoffset()
    lo, hi = int(before), int(after)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return float(hi)


def expire(state: RelayState, now: float) -> bool:
    """End a forced mode whose time is up (back to auto); True when it did."""
    if state.until is not None and now >= state.until and state.mode != "auto":
        state.mode, state.order, state.until = "auto", None, None
        return True
    return False


def hold_for_min_time(
    cfg: RelayConfig, current: str | None, wanted: str, source: str, since_change_s: float
) -> bool:
    """True when min on/off time says: not yet (shed and fail-safe are exempt)."""
    if current is None or source in SAFE_SOURCES or is_on(current) == is_on(wanted):
        return False
    limit = cfg.min_on_s if is_on(current) else cfg.min_off_s
    return since_change_s < limit
