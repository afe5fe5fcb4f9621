"""What a relay should be doing, and why: precedence shed > forced (user) > auto > default.

Pure: no I/O, time passed in. ``RelayState`` is what is persisted across restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from services.relays.commands import Command
from services.relays.config import RelayConfig

OFF_VALUES = frozenset({"off", "arret", "hors-gel"})  # not drawing its rated power


def is_on(value: str) -> bool:
    """True when the value makes the load draw power (on, or a heating order)."""
    return value not in OFF_VALUES


@dataclass
class RelayState:
    """The persisted part of a relay: user orders, shed flag, automation's wish, counters."""

    mode: str = "auto"  # on / off / auto
    order: str | None = None  # fil pilote order of a forced 'on'
    until: float | None = None  # end of the forced mode, epoch seconds
    shed: bool = False
    shed_reason: str | None = None
    auto: str | None = None  # what the automation asks in auto mode; None: the default
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
                if f.name in data:
                    setattr(state, f.name, data[f.name])
        if state.mode not in ("on", "off", "auto"):
            state.mode = "auto"
        state.shed = bool(state.shed)
        return state


def desired(cfg: RelayConfig, state: RelayState) -> tuple[str, str]:
    """(value, source): the output the relay should have now, and which rule decided."""
    if state.shed:
        return cfg.safe_state, "shed"
    if state.mode == "on":
        if cfg.kind == "switch":
            return "on", "user"
        return state.order or (cfg.default if is_on(cfg.default) else "confort"), "user"
    if state.mode == "off":
        return ("off" if cfg.kind == "switch" else "arret"), "user"
    if state.auto is not None:
        return state.auto, "auto"
    return cfg.default, "default"


def apply_command(state: RelayState, command: Command, now: float) -> None:
    """Record a user command (kept while shed: it takes effect on restore)."""
    state.mode = command.mode
    state.order = command.order if command.mode == "on" else None
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
    """True when min on/off time says: not yet (shedding is exempt)."""
    if current is None or source == "shed" or is_on(current) == is_on(wanted):
        return False
    limit = cfg.min_on_s if is_on(current) else cfg.min_off_s
    return since_change_s < limit
