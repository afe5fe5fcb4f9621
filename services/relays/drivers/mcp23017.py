"""MCP23017: 16 pins in two ports, registers at IOCON.BANK=0 (power-up) addresses."""

from __future__ import annotations

from collections.abc import Mapping

from services.relays.drivers.base import SMBusLike, board_io, check_channel

IODIRA, IODIRB = 0x00, 0x01
GPIOA, GPIOB = 0x12, 0x13
OLATA, OLATB = 0x14, 0x15


class Mcp23017Board:
    """Channels 0-7 on port A, 8-15 on port B; read back from the output latch (OLAT)."""

    def __init__(self, name: str, bus: SMBusLike, address: int) -> None:
        self.name = name
        self.bus = bus
        self.address = address
        # Intended latch per port; a write sets a whole port. ``_known``: the bits the service
        # gave a level (preset or set); the others keep what the chip holds.
        self._shadow = [0x00, 0x00]
        self._known = [0x00, 0x00]

    def _write(self, register: int, value: int) -> None:
        action = f"write 0x{value:02x} to 0x{self.address:02x} reg 0x{register:02x}"
        with board_io(self.name, action):
            self.bus.write_byte_data(self.address, register, value)

    def _read(self, register: int) -> int:
        with board_io(self.name, f"read 0x{self.address:02x} reg 0x{register:02x}"):
            return self.bus.read_byte_data(self.address, register) & 0xFF

    def _record(self, levels: Mapping[int, bool]) -> set[int]:
        """Put ``levels`` in the shadow; the ports they touch."""
        ports = set()
        for channel, on in levels.items():
            check_channel(self.name, channel, 16)
            port, bit = divmod(channel, 8)
            mask = 1 << bit
            self._shadow[port] = (self._shadow[port] | mask) if on else (self._shadow[port] & ~mask)
            self._known[port] |= mask
            ports.add(port)
        return ports

    def preset(self, levels: Mapping[int, bool]) -> None:
        """Levels for ``configure`` to bring the pins up at (no I/O)."""
        self._record(levels)

    def set(self, channel: int, on: bool) -> None:
        """Drive one pin by writing its port's OLAT from the shadow."""
        self.set_many({channel: on})

    def set_many(self, levels: Mapping[int, bool]) -> None:
        """One OLAT write per port touched: the pins of a port change together."""
        # The intent is recorded even if the write fails, so configure() re-applies it.
        for port in sorted(self._record(levels)):
            self._write(OLATA + port, self._shadow[port])

    def get(self, channel: int) -> bool:
        """Read the output latch (OLAT): what the chip drives, not what a pin sees."""
        check_channel(self.name, channel, 16)
        port, bit = divmod(channel, 8)
        return bool(self._read(OLATA + port) >> bit & 1)

    def configure(self) -> None:
        """Read the chip, then latch first and directions second, each only where it differs:
        pins come up as outputs at the intended levels, and a chip that kept its registers
        across our restart (already outputs at those levels) is not written at all."""
        latch = [self._read(OLATA), self._read(OLATB)]
        iodir = [self._read(IODIRA), self._read(IODIRB)]
        for port in (0, 1):
            known = self._known[port]
            self._shadow[port] = (self._shadow[port] & known) | (latch[port] & ~known & 0xFF)
        # IODIR before OLAT would drive the pins at whatever the latch held for a moment.
        for port in (0, 1):
            if latch[port] != self._shadow[port]:
                self._write(OLATA + port, self._shadow[port])
        for port in (0, 1):
            if iodir[port] != 0x00:
                self._write(IODIRA + port, 0x00)

    def looks_reset(self) -> bool:
        """True when a port is not all outputs (power-up IODIR is 0xFF: optos off = Confort)."""
        return self._read(IODIRA) != 0x00 or self._read(IODIRB) != 0x00

    def close(self) -> None:
        """Close the bus."""
        with board_io(self.name, "close bus"):
            self.bus.close()
