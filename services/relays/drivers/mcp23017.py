"""MCP23017: 16 pins in two ports, registers at IOCON.BANK=0 (power-up) addresses."""

from __future__ import annotations

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
        # Intended latch per port (power-up OLAT is 0x00); a write sets a whole port.
        self._shadow = [0x00, 0x00]

    def _write(self, register: int, value: int) -> None:
        action = f"write 0x{value:02x} to 0x{self.address:02x} reg 0x{register:02x}"
        with board_io(self.name, action):
            self.bus.write_byte_data(self.address, register, value)

    def _read(self, register: int) -> int:
        with board_io(self.name, f"read 0x{self.address:02x} reg 0x{register:02x}"):
            return self.bus.read_byte_data(self.address, register) & 0xFF

    def set(self, channel: int, on: bool) -> None:
        """Drive one pin by writing its port's OLAT from the shadow."""
        check_channel(self.name, channel, 16)
        port, bit = divmod(channel, 8)
        mask = 1 << bit
        value = self._shadow[port]
        # The intent is recorded even if the write fails, so configure() re-applies it.
        self._shadow[port] = (value | mask) if on else (value & ~mask)
        self._write(OLATA + port, self._shadow[port])

    def get(self, channel: int) -> bool:
        """Read the output latch (OLAT): what the chip drives, not what a pin sees."""
        check_channel(self.name, channel, 16)
        port, bit = divmod(channel, 8)
        return bool(self._read(OLATA + port) >> bit & 1)

    def configure(self) -> None:
        """Latch first, then directions: the pins come up as outputs at the intended levels."""
        # IODIR before OLAT would drive the pins at the power-up latch (0x00) for a moment.
        self._write(OLATA, self._shadow[0])
        self._write(OLATB, self._shadow[1])
        self._write(IODIRA, 0x00)
        self._write(IODIRB, 0x00)

    def looks_reset(self) -> bool:
        """True when a port is not all outputs (power-up IODIR is 0xFF: optos off = Confort)."""
        return self._read(IODIRA) != 0x00 or self._read(IODIRB) != 0x00

    def close(self) -> None:
        """Close the bus."""
        with board_io(self.name, "close bus"):
            self.bus.close()
