"""A board opened on first use and reopened after it failed to open (I2C bus not there yet,
adapter unplugged): the service starts and keeps its other boards running meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.relays.drivers.base import BoardError, OutputBoard


class RetryingBoard:
    """OutputBoard wrapper: every call opens the real board first if it is not open."""

    def __init__(self, name: str, opener: Callable[[], OutputBoard]) -> None:
        self.name = name
        self._opener = opener
        self._board: OutputBoard | None = None
        self._preset: dict[int, bool] = {}

    def _get(self) -> OutputBoard:
        if self._board is None:
            try:
                self._board = self._opener()
            except (OSError, ValueError) as exc:
                raise BoardError(f"board {self.name}: cannot open: {exc}") from exc
            self._board.preset(self._preset)
            self._board.configure()
        return self._board

    def preset(self, levels: Mapping[int, bool]) -> None:
        """Kept for the board, given to it when it opens (no I/O here)."""
        self._preset.update(levels)
        if self._board is not None:
            self._board.preset(levels)

    def set(self, channel: int, on: bool) -> None:
        """Drive one output."""
        self._get().set(channel, on)

    def set_many(self, levels: Mapping[int, bool]) -> None:
        """Drive several outputs, one write per port."""
        self._get().set_many(levels)

    def get(self, channel: int) -> bool:
        """Read one output back from the hardware."""
        return self._get().get(channel)

    def configure(self) -> None:
        """Directions and latch (opens the board when it is not open yet)."""
        self._get().configure()

    def looks_reset(self) -> bool:
        """True when the hardware lost its configuration."""
        return self._get().looks_reset()

    def close(self) -> None:
        """Close the real board if it was opened."""
        if self._board is not None:
            self._board.close()
            self._board = None


def retrying(name: str, opener: Callable[[], OutputBoard]) -> OutputBoard:
    """Typed constructor (RetryingBoard satisfies the OutputBoard protocol)."""
    board: OutputBoard = RetryingBoard(name, opener)
    return board
