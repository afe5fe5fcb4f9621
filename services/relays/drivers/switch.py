"""An on/off load (contactor, relay) on one board channel."""

from __future__ import annotations

from services.relays.drivers.base import OutputBoard


class SwitchOutput:
    """Logical on/off on one channel; ``active_low`` for boards whose relay closes on a low pin."""

    def __init__(self, board: OutputBoard, channel: int, active_low: bool = False) -> None:
        self.board = board
        self.channel = channel
        self.active_low = active_low

    def levels(self, on: bool) -> dict[int, bool]:
        """The pin level of on/off (no I/O)."""
        return {self.channel: on != self.active_low}

    def apply(self, on: bool) -> None:
        """Switch the load on or off; raises BoardError."""
        self.board.set(self.channel, on != self.active_low)

    def read(self) -> bool:
        """Whether the load is on, from the hardware read-back; raises BoardError."""
        return self.board.get(self.channel) != self.active_low
