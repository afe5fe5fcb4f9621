"""The hardware boundary of the relays service: the board protocol and its one error type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol


class BoardError(Exception):
    """An output board could not be read or written; the message names the board."""


class OutputBoard(Protocol):
    """A set of numbered outputs in pin-level terms (True = pin high / output driven)."""

    name: str

    def preset(self, levels: Mapping[int, bool]) -> None:
        """The levels outputs must come up at (their safe states), given before ``configure``:
        no I/O, so the first write a board ever makes already holds them."""

    def set(self, channel: int, on: bool) -> None:
        """Drive one output; raises BoardError."""

    def set_many(self, levels: Mapping[int, bool]) -> None:
        """Drive several outputs at once: each port they share is written once, so no
        in-between combination is ever on the wire; raises BoardError."""

    def get(self, channel: int) -> bool:
        """Read one output back from the hardware (pin or latch), never from a cache."""

    def configure(self) -> None:
        """Read what the hardware holds, then write direction and intended levels only where
        they differ (at start, and after a detected reset)."""

    def looks_reset(self) -> bool:
        """True when the hardware lost its configuration (e.g. an expander that lost power)."""

    def close(self) -> None:
        """Release the hardware."""


class SMBusLike(Protocol):
    """The smbus2.SMBus methods the I2C boards use (so a fake can stand in for the bus)."""

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        """Receive one byte (no register)."""

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        """Send one byte (no register)."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """Read one register."""

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        """Write one register."""

    def close(self) -> None:
        """Close the bus."""


@contextmanager
def board_io(board: str, action: str) -> Iterator[None]:
    """Turn an OSError from the bus into a BoardError naming the board and the action."""
    try:
        yield
    except OSError as exc:
        raise BoardError(f"board {board}: {action} failed: {exc}") from exc


def check_channel(board: str, channel: int, count: int) -> None:
    """Reject a channel the board does not have (a config bug, not an I/O error)."""
    if not 0 <= channel < count:
        raise ValueError(f"board {board}: channel {channel} out of range 0..{count - 1}")
