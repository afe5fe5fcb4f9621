"""PCF8574: 8 quasi-bidirectional pins; one byte written sets them all, one byte read gives them."""

from __future__ import annotations

from collections.abc import Mapping

from services.relays.drivers.base import SMBusLike, board_io, check_channel

# Power-up: every pin weakly high (the chip has no direction register).
POWER_UP = 0xFF


class Pcf8574Board:
    """Pin levels on a PCF8574 (relay boards on it are usually active-low: handled above)."""

    def __init__(self, name: str, bus: SMBusLike, address: int) -> None:
        self.name = name
        self.bus = bus
        self.address = address
        # One write sets all 8 pins, so the other pins' intended levels are kept here. Pins no
        # relay uses stay high: weakly high is how the chip reads an input.
        self._shadow = POWER_UP

    def _record(self, levels: Mapping[int, bool]) -> None:
        for channel, on in levels.items():
            check_channel(self.name, channel, 8)
            mask = 1 << channel
            self._shadow = (self._shadow | mask) if on else (self._shadow & ~mask)

    def preset(self, levels: Mapping[int, bool]) -> None:
        """Levels for ``configure`` to bring the pins up at (no I/O)."""
        self._record(levels)

    def set(self, channel: int, on: bool) -> None:
        """Drive one pin, rewriting the others from the shadow byte."""
        self.set_many({channel: on})

    def set_many(self, levels: Mapping[int, bool]) -> None:
        """One byte written: every pin changes at once."""
        # The intent is recorded even if the write fails, so configure() re-applies it.
        self._record(levels)
        self._write()

    def _write(self) -> None:
        with board_io(self.name, f"write 0x{self._shadow:02x} to 0x{self.address:02x}"):
            self.bus.write_byte(self.address, self._shadow)

    def get(self, channel: int) -> bool:
        """Read the pin level from the chip."""
        check_channel(self.name, channel, 8)
        return bool(self._read() >> channel & 1)

    def _read(self) -> int:
        with board_io(self.name, f"read 0x{self.address:02x}"):
            return self.bus.read_byte(self.address) & 0xFF

    def configure(self) -> None:
        """Write the shadow byte unless the pins already hold it (kept across our restart)."""
        if self._read() != self._shadow:
            self._write()

    def looks_reset(self) -> bool:
        """True when the pins differ from the shadow (a reset brings them all back high)."""
        return self._read() != self._shadow

    def close(self) -> None:
        """Close the bus."""
        with board_io(self.name, "close bus"):
            self.bus.close()
