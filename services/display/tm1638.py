"""A TM1638 driver (8 seven-segment digits, 8 LEDs, 8 keys: the "LED&KEY" board) over three
lines: no maintained Python package drives one from a Pi 5, and the protocol is small.

The wire: STB low around each command and its data; bytes LSB first on DIO, which the chip
latches on CLK's rising edge and, for reads, drives after CLK's falling edge. Display RAM
has 16 addresses: even ones are the 8 digits' segments (bit 0 = a ... bit 6 = g, bit 7 =
the decimal point), odd ones the 8 LEDs (bit 0: the LED&KEY board's red LED).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from services.display.lines import Lines

WRITE_AUTO: Final = 0x40  # data command: write, address auto-increment
WRITE_FIXED: Final = 0x44  # data command: write, one fixed address
READ_KEYS: Final = 0x42  # data command: read the 4 key bytes
ADDRESS: Final = 0xC0  # | address (0-15)
DISPLAY: Final = 0x80  # | 0x08 (on) | brightness (0-7); 0x80 alone: off
DISPLAY_ON: Final = 0x08
DIGITS: Final = 8
DOT: Final = 0x80

# Segments: bit 0 = a (top), b, c, d (bottom), e, f, g (middle). Letters where a 7-segment
# digit reads unambiguously; the other case is tried before a blank.
FONT: Final[dict[str, int]] = {
    "0": 0x3F, "1": 0x06, "2": 0x5B, "3": 0x4F, "4": 0x66,
    "5": 0x6D, "6": 0x7D, "7": 0x07, "8": 0x7F, "9": 0x6F,
    "A": 0x77, "b": 0x7C, "C": 0x39, "c": 0x58, "d": 0x5E, "E": 0x79, "F": 0x71,
    "G": 0x3D, "H": 0x76, "h": 0x74, "I": 0x30, "J": 0x1E, "L": 0x38, "n": 0x54,
    "O": 0x3F, "o": 0x5C, "P": 0x73, "q": 0x67, "r": 0x50, "S": 0x6D, "t": 0x78,
    "U": 0x3E, "u": 0x1C, "y": 0x6E,
    "-": 0x40, "_": 0x08, " ": 0x00, "°": 0x63, "=": 0x48,
}

# The LED&KEY board's keys S1..S8 in the 4 bytes of a read: byte i's bit 0 is S(i+1), its
# bit 4 is S(i+5) (the keys sit on the chip's K3 input; the other bits stay 0). The key mask's
# bit k is S(k+1). A board wired otherwise passes its own (byte, bit) per key.
LED_AND_KEY: Final[tuple[tuple[int, int], ...]] = (
    (0, 0), (1, 0), (2, 0), (3, 0), (0, 4), (1, 4), (2, 4), (3, 4))


def glyph(char: str) -> int:
    """The segments of one character (a blank for one the font lacks)."""
    return FONT.get(char, FONT.get(char.upper(), FONT.get(char.lower(), 0)))


def encode(text: str) -> list[int]:
    """Eight digits' segments for ``text``: a dot lights the previous digit's point (a
    leading or second dot gets a blank digit of its own), left-aligned, cut at 8 digits."""
    digits: list[int] = []
    dotted = True  # no digit to fold a dot into yet
    for char in text:
        if char == "." and not dotted:
            digits[-1] |= DOT
            dotted = True
        elif char == ".":
            digits.append(DOT)
        else:
            digits.append(glyph(char))
            dotted = False
    return (digits + [0] * DIGITS)[:DIGITS]


def key_mask(data: Sequence[int], layout: Sequence[tuple[int, int]] = LED_AND_KEY) -> int:
    """The 8-bit key mask (bit k: key k down) from the 4 bytes a key read returns."""
    mask = 0
    for key, (index, bit) in enumerate(layout):
        if data[index] >> bit & 1:
            mask |= 1 << key
    return mask


class TM1638:
    """One board. Keeps the display RAM, so that each call sends what it changes and the
    display state (brightness, on/off) after it: a board that lost power comes back whole
    on the next call. Not thread-safe: one owner polls keys and draws."""

    def __init__(self, lines: Lines, level: int = 2,
                 layout: Sequence[tuple[int, int]] = LED_AND_KEY) -> None:
        self.lines = lines
        self.layout = tuple(layout)
        self._ram = [0] * 16
        self._level = _check_level(level)
        self._on = True

    # -- the wire --

    def _byte(self, value: int) -> None:
        for i in range(8):
            self.lines.clk(False)
            self.lines.dio(bool(value >> i & 1))
            self.lines.clk(True)

    def _command(self, *data: int) -> None:
        self.lines.stb(False)
        for value in data:
            self._byte(value)
        self.lines.stb(True)

    def _display(self) -> None:
        self._command(DISPLAY | DISPLAY_ON | self._level if self._on else DISPLAY)

    # -- the API --

    def show(self, text: str) -> None:
        """Eight characters on the digits (see ``encode``)."""
        self._ram[0::2] = encode(text)
        self._command(WRITE_AUTO)
        self._command(ADDRESS, *self._ram)  # all 16: one burst is shorter than 8 addressed
        self._display()

    def leds(self, mask: int) -> None:
        """LED k lit when bit k of ``mask`` is set."""
        self._ram[1::2] = [mask >> k & 1 for k in range(8)]
        self._command(WRITE_FIXED)
        for k in range(8):
            self._command(ADDRESS | (2 * k + 1), self._ram[2 * k + 1])
        self._display()

    def brightness(self, level: int) -> None:
        """Display on at ``level`` (0 dimmest to 7)."""
        self._level = _check_level(level)
        self._on = True
        self._display()

    def off(self) -> None:
        """Display off (RAM kept: ``brightness`` brings the same digits back)."""
        self._on = False
        self._display()

    def keys(self) -> int:
        """The keys down now, as a mask (bit k: key k; see ``LED_AND_KEY``)."""
        self.lines.stb(False)
        self._byte(READ_KEYS)
        self.lines.release_dio()
        data = []
        for _ in range(4):
            value = 0
            for i in range(8):
                self.lines.clk(False)
                value |= self.lines.read_dio() << i
                self.lines.clk(True)
            data.append(value)
        self.lines.stb(True)
        self.lines.dio(True)  # the host drives DIO again (idle high)
        return key_mask(data, self.layout)

    def close(self) -> None:
        """Display off, lines released."""
        try:
            self.off()
        finally:
            self.lines.close()


def _check_level(level: int) -> int:
    if not 0 <= level <= 7:
        raise ValueError(f"TM1638 brightness is 0 to 7, not {level}")
    return level
