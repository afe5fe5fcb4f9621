"""One face for both kinds of load: an on/off relay, or a fil pilote zone on two outputs."""

from __future__ import annotations

from services.core.contract.orders import Order
from services.relays.config import RelayConfig
from services.relays.drivers.base import OutputBoard
from services.relays.drivers.fil_pilote import FilPiloteZone
from services.relays.drivers.switch import SwitchOutput


class RelayOutput:
    """Write a value ('on'/'off' or an order), read back what the hardware holds."""

    def __init__(self, cfg: RelayConfig, board: OutputBoard) -> None:
        self.board = board
        self._switch: SwitchOutput | None = None
        self._zone: FilPiloteZone | None = None
        self._written: str | None = None
        if cfg.kind == "switch":
            assert cfg.channel is not None  # checked by the config
            self._switch = SwitchOutput(board, cfg.channel, cfg.active_low)
        else:
            assert cfg.channels is not None
            self._zone = FilPiloteZone(board, cfg.channels[0], cfg.channels[1], cfg.invert)

    @property
    def written(self) -> str | None:
        """The last value written (None before the first write)."""
        return self._written

    def levels(self, value: str) -> dict[int, bool]:
        """The pin levels that encode ``value`` (no I/O): what boards are preset with."""
        if self._switch is not None:
            return self._switch.levels(value == "on")
        assert self._zone is not None
        return self._zone.levels(Order(value))

    def assume(self, value: str, now: float) -> None:
        """Take ``value`` as written without writing it: the board came up holding it (its
        preset levels), so writing it again would only be one more write on the wire."""
        self._written = value
        if self._zone is not None:
            self._zone.assume(Order(value), now)

    def write(self, value: str, now: float) -> None:
        """Drive the outputs; raises BoardError."""
        if self._switch is not None:
            self._switch.apply(value == "on")
        else:
            assert self._zone is not None
            self._zone.apply(Order(value), now)
        self._written = value

    def read(self) -> str | None:
        """What the hardware holds: 'on'/'off', or the base order of a zone."""
        if self._switch is not None:
            return "on" if self._switch.read() else "off"
        assert self._zone is not None
        order = self._zone.read()
        return None if order is None else order.value

    def expected(self, now: float) -> str | None:
        """What ``read`` should give now (a zone in confort-1/2 pulses between patterns)."""
        if self._zone is not None and self._written is not None:
            return self._zone.expected(now).value
        return self._written

    def tick(self, now: float) -> bool:
        """Time confort-1/confort-2 pulses; True when the outputs changed."""
        return self._zone.tick(now) if self._zone is not None else False
