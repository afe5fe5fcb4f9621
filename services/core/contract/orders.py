"""Fil pilote orders and what "on" means for a load: defined once for every service."""

from __future__ import annotations

from enum import StrEnum


class Order(StrEnum):
    """A fil pilote order (GIFAM six orders); the last two are timed Confort variants."""

    CONFORT = "confort"
    ECO = "eco"
    HORS_GEL = "hors-gel"
    ARRET = "arret"
    CONFORT_1 = "confort-1"
    CONFORT_2 = "confort-2"


ORDERS: tuple[str, ...] = tuple(o.value for o in Order)
# "On" for a zone: a rule that says on gives confort; these three heat at (near) full power.
ON_ORDERS = frozenset({Order.CONFORT, Order.CONFORT_1, Order.CONFORT_2})
# Values of an output that do not draw the load's rated power (eco still heats, at a lower set
# point, so it counts as on for shedding and on-time).
OFF_VALUES = frozenset({"off", Order.ARRET.value, Order.HORS_GEL.value})


def is_on(value: str) -> bool:
    """True when an output value makes the load draw power (on, or a heating order)."""
    return value not in OFF_VALUES
