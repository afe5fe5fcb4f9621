"""What the inverter service's protocol modules hand each other: pure data, no I/O.

SunSpec (``sunspec.py``) and Aurora (``aurora.py``) both end in ``Decoded``: one device group's
DESIGN.md normalized fields (inverter or meter) and its protocol labels as read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["inverter", "meter"]
# DESIGN.md's inverter statuses; SunSpec's St enum maps onto them one to one (1..8).
STATUSES = ("off", "sleeping", "starting", "mppt", "throttled", "shutting_down", "fault",
            "standby")


class Reader(Protocol):
    """Read ``count`` holding registers from ``address`` in ONE request (the protocol layer
    never splits a call). Raises any exception when the device does not answer."""

    def __call__(self, address: int, count: int) -> Sequence[int]: ...


@dataclass(frozen=True)
class ModelRef:
    """One model of a SunSpec chain: ``address`` is its ID register, ``length`` its L (the
    registers after the ID and L)."""

    model_id: int
    address: int
    length: int

    @property
    def data_address(self) -> int:
        """The model's first point (after ID and L)."""
        return self.address + 2


@dataclass(frozen=True)
class Chain:
    """A device's SunSpec model chain, as discovered once and cached by serial number."""

    base: int  # the register holding "SunS"
    models: tuple[ModelRef, ...]

    @property
    def ids(self) -> list[int]:
        """Model ids in chain order."""
        return [m.model_id for m in self.models]


@dataclass
class Decoded:
    """One device group's reading: normalized fields (absent = not sent or not implemented)
    and the protocol's own labels, scaled, for the ``raw`` topic."""

    kind: Kind
    fields: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)
