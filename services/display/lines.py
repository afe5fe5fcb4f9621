"""The three lines a TM1638 board hangs on (STB, CLK, DIO), behind one small interface
(DESIGN.md, "Hardware at the boundary only"): the kernel's GPIO character device through the
PyPI ``gpiod`` 2.x package, or a fake that records the bit stream and serves scripted keys.

DIO is bidirectional: the host drives it to send, then releases it (input, pulled up) to read
the key bytes the board clocks out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from services.core.gpio import GpioError, find_chip

LineName = Literal["stb", "clk", "dio"]


class Lines(Protocol):
    """What the TM1638 driver needs of its three lines."""

    def stb(self, level: bool) -> None:
        """Drive STB (low: a command is under way)."""
        ...

    def clk(self, level: bool) -> None:
        """Drive CLK (the board latches DIO on the rising edge)."""
        ...

    def dio(self, level: bool) -> None:
        """Drive DIO (switching it back to an output if it was released)."""
        ...

    def release_dio(self) -> None:
        """Switch DIO to an input, so that the board can drive it."""
        ...

    def read_dio(self) -> bool:
        """DIO's level, once released."""
        ...

    def close(self) -> None:
        """Release the lines."""
        ...


# -- gpiod ------------------------------------------------------------------------------------


class GpiodLines:
    """Three lines of one chip (found by path or label, as the pulses service does). DIO is
    reconfigured as an input with a pull-up for reads (the LED&KEY board has its own 10 kΩ
    pull-up; the internal one keeps a bare line defined)."""

    def __init__(self, chip: str, stb: int, clk: int, dio: int,
                 consumer: str = "enerbox-display") -> None:
        import gpiod  # noqa: PLC0415 (only where the hardware is)
        from gpiod.line import Bias, Direction, Value  # noqa: PLC0415

        self.path = find_chip(chip)
        self._offsets = {"stb": stb, "clk": clk, "dio": dio}
        self._high, self._low = Value.ACTIVE, Value.INACTIVE
        self._settings = gpiod.LineSettings
        self._output, self._input = Direction.OUTPUT, Direction.INPUT
        self._in = gpiod.LineSettings(direction=Direction.INPUT, bias=Bias.PULL_UP)
        # All three idle high: STB high is "no command", CLK idles high between bits.
        self._levels: dict[LineName, bool] = {"stb": True, "clk": True, "dio": True}
        try:
            self._req: Any = gpiod.request_lines(
                self.path, consumer=consumer, config=self._config(dio_out=True))
        except OSError as exc:
            raise GpioError(f"cannot request lines {stb}, {clk}, {dio} of {self.path}: "
                            f"{exc}") from exc
        self._dio_out = True

    def _config(self, dio_out: bool) -> dict[Any, Any]:
        """Settings for all three lines: a reconfiguration applies ``output_value`` too, so
        each output keeps the level it has (STB stays low across a key read)."""
        config = {self._offsets[name]: self._settings(
            direction=self._output, output_value=self._high if level else self._low)
            for name, level in self._levels.items()}
        if not dio_out:
            config[self._offsets["dio"]] = self._in
        return config

    def _set(self, name: LineName, level: bool) -> None:
        self._levels[name] = level
        self._req.set_value(self._offsets[name], self._high if level else self._low)

    def stb(self, level: bool) -> None:
        """Drive STB."""
        self._set("stb", level)

    def clk(self, level: bool) -> None:
        """Drive CLK."""
        self._set("clk", level)

    def dio(self, level: bool) -> None:
        """Drive DIO, an output again if it was released."""
        if not self._dio_out:
            self._levels["dio"] = level
            self._req.reconfigure_lines(config=self._config(dio_out=True))
            self._dio_out = True
        self._set("dio", level)

    def release_dio(self) -> None:
        """DIO as an input with a pull-up."""
        if self._dio_out:
            self._req.reconfigure_lines(config=self._config(dio_out=False))
            self._dio_out = False

    def read_dio(self) -> bool:
        """DIO's level."""
        return bool(self._req.get_value(self._offsets["dio"]) == self._high)

    def close(self) -> None:
        """Release the lines."""
        if self._req is not None:
            self._req.release()
            self._req = None


# -- fake -------------------------------------------------------------------------------------

Event = tuple[str, int]
"""One step of a recording: ``("stb"|"clk"|"dio", level)`` for a drive, ``("release", 1)``
when DIO is released, ``("read", bit)`` for a bit read back."""


class FakeLines:
    """Records every drive and read in ``events``, and plays the board's part for reads:
    each released-DIO read takes the next bit (LSB first) of the scripted key bytes, which
    are 0 once the script is over (no key down)."""

    def __init__(self, key_bytes: Iterable[int] = ()) -> None:
        self.events: list[Event] = []
        self._bits: deque[int] = deque()
        self.script(key_bytes)
        self._released = False
        self.closed = False

    def script(self, key_bytes: Iterable[int]) -> None:
        """Queue key bytes, as the board would send them for ``0x42``."""
        for byte in key_bytes:
            self._bits.extend((byte >> i) & 1 for i in range(8))

    def stb(self, level: bool) -> None:
        """Record STB."""
        self.events.append(("stb", int(level)))

    def clk(self, level: bool) -> None:
        """Record CLK."""
        self.events.append(("clk", int(level)))

    def dio(self, level: bool) -> None:
        """Record DIO (the driver's own level)."""
        self._released = False
        self.events.append(("dio", int(level)))

    def release_dio(self) -> None:
        """Record that DIO is the board's now."""
        self._released = True
        self.events.append(("release", 1))

    def read_dio(self) -> bool:
        """The next scripted bit (reading a line the host still drives is a driver bug)."""
        if not self._released:
            raise RuntimeError("DIO read while the host drives it")
        bit = self._bits.popleft() if self._bits else 0
        self.events.append(("read", bit))
        return bool(bit)

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
