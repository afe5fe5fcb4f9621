"""What a relay should be doing, and why.

Precedence: fail-safe (shedding gone) > shed (from shedding) > forced (user) > auto (a live
wish of the automation) > default. Pure: no I/O, time passed in. ``RelayState`` is what is
persisted across restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from services.core.contract import RelayCommand
from services.core.contract.orders import OFF_VALUES, Order, is_on
from services.relays.config import RelayConfig

__all__ = ["OFF_VALUES", "RelayState", "apply_command", "desired", "expire",
           "hold_for_min_time", "is_on", "wish_value"]

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


def apply_command(state: RelayState, command: RelayCommand, now: float) -> None:
    """Record a user command (kept while shed: it takes effect on restore)."""
    state.mode = command.mode
    state.order = command.order.value if command.order and command.mode == "on" else None
    state.until = now + command.for_s if command.for_s is not None else None


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
