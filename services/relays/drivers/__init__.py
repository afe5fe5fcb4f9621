"""Output boards for the relays service: pick one by its ``driver`` config key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.relays.drivers.base import BoardError, OutputBoard, SMBusLike
from services.relays.drivers.fake_smbus import open_bus
from services.relays.drivers.gpio import GpioBoard
from services.relays.drivers.mcp23017 import Mcp23017Board
from services.relays.drivers.pcf8574 import Pcf8574Board

# (name, bus, address, pin_factory) -> board
BoardBuilder = Callable[[str, int | str | None, int | None, Any], OutputBoard]


def _gpio(name: str, bus: int | str | None, address: int | None, pin_factory: Any) -> OutputBoard:
    return GpioBoard(name, pin_factory)


def _i2c(kind: str, cls: Callable[[str, SMBusLike, int], OutputBoard]) -> BoardBuilder:
    def build(name: str, bus: int | str | None, address: int | None, _pf: Any) -> OutputBoard:
        if bus is None or address is None:
            raise ValueError(f"board {name}: driver {kind!r} needs both 'bus' and 'address'")
        try:
            return cls(name, open_bus(bus, {address: kind}), address)
        except OSError as exc:
            raise BoardError(f"board {name}: cannot open I2C bus {bus!r}: {exc}") from exc

    return build


BOARD_DRIVERS: dict[str, BoardBuilder] = {
    "gpio": _gpio,
    "pcf8574": _i2c("pcf8574", Pcf8574Board),
    "mcp23017": _i2c("mcp23017", Mcp23017Board),
}


def make_board(
    driver: str,
    name: str,
    *,
    bus: int | str | None = None,
    address: int | None = None,
    pin_factory: Any = None,
) -> OutputBoard:
    """Build the board for ``driver``; ValueError for an unknown driver or missing bus/address."""
    builder = BOARD_DRIVERS.get(driver)
    if builder is None:
        known = ", ".join(sorted(BOARD_DRIVERS))
        raise ValueError(f"board {name}: unknown driver {driver!r} (known: {known})")
    return builder(name, bus, address, pin_factory)


__all__ = ["BOARD_DRIVERS", "BoardError", "OutputBoard", "make_board"]
