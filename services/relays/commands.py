"""Commands on <p>/relays/<id>/set, in every form DESIGN.md lists, checked before use."""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.relays.config import ORDERS

MAX_FOR_S = 366 * 86400


class CommandError(ValueError):
    """A command that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class Command:
    """What the user asked: a mode, and for a forced mode its value and duration."""

    mode: str  # on / off / auto
    order: str | None = None  # fil pilote order of a forced 'on'
    for_s: float | None = None


def parse(payload: bytes, kind: str) -> Command:
    """``ON``/``OFF``/``AUTO``, ``{"mode": ..., "for_s": ...}`` or ``{"order": ...}``."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None
    if not text:
        raise CommandError("empty command")
    if text.upper() in ("ON", "OFF", "AUTO"):
        return Command(text.lower())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CommandError(
            f"{text[:40]!r} is neither ON, OFF, AUTO nor a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise CommandError("a JSON command must be an object")
    unknown = set(data) - {"mode", "order", "for_s"}
    if unknown:
        raise CommandError(f"unknown key(s): {', '.join(sorted(unknown))}")
    for_s = _duration(data.get("for_s"))
    if "order" in data:
        order = data["order"]
        if kind != "fil_pilote":
            raise CommandError("'order' is for fil pilote zones; this relay takes on/off")
        if order not in ORDERS:
            raise CommandError(f"order {order!r} is not one of {', '.join(ORDERS)}")
        if data.get("mode", "on") != "on":
            raise CommandError("an order forces the zone: 'mode' can only be 'on' with it")
        return Command("on", order, for_s)
    mode = data.get("mode")
    if mode not in ("on", "off", "auto"):
        raise CommandError(f"mode {mode!r} is not one of on, off, auto")
    if mode == "auto" and for_s is not None:
        raise CommandError("'for_s' goes with a forced mode (on/off), not with auto")
    return Command(mode, None, for_s)


def _duration(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"for_s must be a number of seconds, not {value!r}")
    if not 0 < value <= MAX_FOR_S:
        raise CommandError(f"for_s must be between 0 and {MAX_FOR_S} s, got {value}")
    return float(value)


def parse_shed(payload: bytes) -> tuple[bool, str | None]:
    """The shedding service's ``{"shed": true|false, "reason": ...}`` for one load."""
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CommandError("shed message is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("shed"), bool):
        raise CommandError('shed message must be {"shed": true|false, "reason": "..."}')
    reason = data.get("reason")
    return data["shed"], str(reason) if reason else None
