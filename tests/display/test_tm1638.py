"""The TM1638 driver against FakeLines: the recorded bit stream is decoded back, as the chip
would read it, into commands, digits and LEDs; scripted key bytes become the key mask; the
gpiod 2.x names GpiodLines calls exist (no GPIO here)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import gpiod
import pytest
from gpiod.line import Bias, Direction, Value
from hypothesis import given
from hypothesis import strategies as st

from services.display.lines import Event, FakeLines, GpiodLines
from services.display.tm1638 import FONT, LED_AND_KEY, TM1638, encode, key_mask


@dataclass
class Frame:
    """What one STB-low window carried: bytes the host wrote, bytes it read back."""

    wrote: list[int] = field(default_factory=list)
    read: list[int] = field(default_factory=list)


def frames(events: list[Event]) -> list[Frame]:
    """The chip's view of a recording: bits latched on CLK's rising edge while STB is low,
    LSB first; reads are the bits taken while DIO is released."""
    out: list[Frame] = []
    levels = {"stb": 1, "clk": 1, "dio": 1}
    released = False
    wbits: list[int] = []
    rbits: list[int] = []
    for name, level in events:
        if name == "stb" and level == 0 and levels["stb"] == 1:
            out.append(Frame())
            wbits, rbits = [], []
        if name == "stb" and level == 1 and levels["stb"] == 0:
            assert len(wbits) % 8 == 0 and len(rbits) % 8 == 0, "a partial byte"
        rising = name == "clk" and level == 1 and levels["clk"] == 0
        if rising and levels["stb"] == 0 and not released:
            wbits.append(levels["dio"])
            if len(wbits) % 8 == 0:
                out[-1].wrote.append(sum(b << i for i, b in enumerate(wbits[-8:])))
        if name == "clk" and level == 1:
            assert levels["stb"] == 0 or levels["clk"] == 1, "CLK toggled outside a command"
        if name == "release":
            released = True
        elif name == "dio":
            released = False
        if name == "read":
            assert levels["clk"] == 0, "read while CLK is high: the chip shifts on its fall"
            rbits.append(level)
            if len(rbits) % 8 == 0:
                out[-1].read.append(sum(b << i for i, b in enumerate(rbits[-8:])))
        if name in levels:
            levels[name] = level
    assert levels["stb"] == 1, "a command left open"
    return out


@dataclass
class Board:
    """A TM1638 fed the decoded frames: display RAM and the display control."""

    ram: list[int] = field(default_factory=lambda: [0] * 16)
    on: bool = False
    level: int = -1
    commands: list[int] = field(default_factory=list)

    def feed(self, recorded: list[Frame]) -> Board:
        auto = True
        for frame in recorded:
            cmd, *data = frame.wrote
            self.commands.append(cmd)
            kind = cmd & 0xC0
            if kind == 0x40:
                assert not data, "a data command takes no data"
                auto = cmd & 0x04 == 0
            elif kind == 0x80:
                assert not data
                self.on, self.level = bool(cmd & 0x08), cmd & 0x07
            elif kind == 0xC0:
                addr = cmd & 0x0F
                assert auto or len(data) == 1, "fixed address: one byte"
                for value in data:
                    self.ram[addr % 16] = value
                    addr += 1
        return self

    @property
    def text(self) -> str:
        reverse: dict[int, str] = {}
        for char, segments in FONT.items():
            reverse.setdefault(segments, char)  # "0" before "O", "5" before "S"
        return "".join(reverse[s & 0x7F] + ("." if s & 0x80 else "") for s in self.ram[0::2])

    @property
    def leds(self) -> int:
        return sum((self.ram[2 * k + 1] & 1) << k for k in range(8))


def drive(*calls: tuple[str, object]) -> tuple[Board, FakeLines]:
    lines = FakeLines()
    tm = TM1638(lines, level=3)
    for name, arg in calls:
        getattr(tm, name)(arg) if arg is not None else getattr(tm, name)()
    return Board().feed(frames(lines.events)), lines


def test_show_writes_the_digits_with_auto_increment_then_turns_the_display_on() -> None:
    board, _ = drive(("show", "12.5 -AE"))
    assert board.commands == [0x40, 0xC0, 0x88 | 3]
    assert board.text == "12.5 -AE "
    assert board.ram[0::2][:3] == [0x06, 0x5B | 0x80, 0x6D]
    assert board.on and board.level == 3 and board.leds == 0


def test_leds_use_fixed_addresses_on_the_odd_bytes_only() -> None:
    board, _ = drive(("show", "88888888"), ("leds", 0b1010_0001))
    assert board.leds == 0b1010_0001
    assert board.text == "8" * 8  # the digits untouched
    fixed = board.commands[board.commands.index(0x44):]
    assert fixed[1:9] == [0xC0 | (2 * k + 1) for k in range(8)]


def test_brightness_and_off() -> None:
    board, _ = drive(("brightness", 7))
    assert board.on and board.level == 7
    board, _ = drive(("show", "1"), ("off", None))
    assert not board.on and board.commands[-1] == 0x80
    board, _ = drive(("off", None), ("brightness", 0))
    assert board.on and board.level == 0
    with pytest.raises(ValueError, match="0 to 7"):
        TM1638(FakeLines()).brightness(8)


@pytest.mark.parametrize(("text", "shown"), [
    ("", " " * 8), (".", " ." + " " * 7), ("1..2", "1. .2" + " " * 5), ("123456789", "12345678"),
    ("-12.3°C", "-12.3°C  "), ("tEMP", "tE P    "), ("1.2.3.4.5.6.7.8.", "1.2.3.4.5.6.7.8."),
])
def test_the_font_and_dots(text: str, shown: str) -> None:
    board, _ = drive(("show", text))
    assert board.text == shown


def test_lowercase_falls_back_to_the_other_case() -> None:
    assert encode("hello") == [0x74, 0x79, 0x38, 0x38, 0x5C, 0, 0, 0]
    assert encode("AUTO") == [0x77, 0x3E, 0x78, 0x3F, 0, 0, 0, 0]


def test_scripted_key_bytes_become_the_mask() -> None:
    lines = FakeLines([0x01, 0x00, 0x10, 0x00])  # S1 and S7
    tm = TM1638(lines)
    assert tm.keys() == 0b0100_0001
    recorded = frames(lines.events)
    assert recorded[-1].wrote == [0x42] and recorded[-1].read == [0x01, 0x00, 0x10, 0x00]
    assert lines.events[-1] == ("dio", 1)  # the host drives DIO again
    assert tm.keys() == 0  # the script is over: nothing down


def test_each_key_of_the_led_and_key_board() -> None:
    for key, (index, bit) in enumerate(LED_AND_KEY):
        data = [0, 0, 0, 0]
        data[index] = 1 << bit | 0b0110  # K1/K2 bits (no key on this board) are ignored
        assert key_mask(data) == 1 << key


@given(st.lists(st.integers(0, 255), min_size=4, max_size=4))
def test_any_key_bytes_give_an_8_bit_mask(data: list[int]) -> None:
    lines = FakeLines(data)
    mask = TM1638(lines).keys()
    assert 0 <= mask <= 0xFF
    assert mask == key_mask(data)


def test_reading_dio_while_driving_it_is_refused() -> None:
    with pytest.raises(RuntimeError, match="drives"):
        FakeLines().read_dio()


def test_close_turns_the_display_off_and_releases() -> None:
    lines = FakeLines()
    TM1638(lines).close()
    assert Board().feed(frames(lines.events)).commands == [0x80] and lines.closed


def test_the_gpiod_2_api_we_call_exists() -> None:
    assert gpiod.__version__.startswith("2.")
    assert {"path", "config", "consumer"} <= set(inspect.signature(gpiod.request_lines).parameters)
    assert {"direction", "bias", "output_value"} <= set(
        inspect.signature(gpiod.LineSettings).parameters)
    assert Direction.OUTPUT and Direction.INPUT and Bias.PULL_UP
    assert {Value.ACTIVE, Value.INACTIVE} <= set(Value)
    for name in ("set_value", "get_value", "reconfigure_lines", "release"):
        assert callable(getattr(gpiod.LineRequest, name))
    assert "config" in inspect.signature(gpiod.LineRequest.reconfigure_lines).parameters
    assert callable(GpiodLines)
