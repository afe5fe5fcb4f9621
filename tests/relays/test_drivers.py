"""Relay drivers on gpiozero's MockFactory and the fake SMBus: no hardware, no sleeping."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped, unused-ignore]

from services.core.contract.orders import Order
from services.relays.drivers import BOARD_DRIVERS, make_board
from services.relays.drivers.base import BoardError
from services.relays.drivers.fake_smbus import FakeSMBus, open_bus
from services.relays.drivers.fil_pilote import PATTERNS, FilPiloteZone
from services.relays.drivers.gpio import GpioBoard
from services.relays.drivers.mcp23017 import IODIRA, IODIRB, OLATA, OLATB, Mcp23017Board
from services.relays.drivers.pcf8574 import Pcf8574Board
from services.relays.drivers.switch import SwitchOutput

MCP, PCF = 0x20, 0x38
ROOT = Path(__file__).resolve().parents[2]


def registers(bus: FakeSMBus) -> list[tuple[int | None, int]]:
    """(register, value) of every write the bus saw, in order."""
    return [(w.register, w.value) for w in bus.writes]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def mcp_board(bus: FakeSMBus | None = None) -> tuple[FakeSMBus, Mcp23017Board]:
    bus = bus or FakeSMBus()
    bus.add_mcp23017(MCP)
    board = Mcp23017Board("remora", bus, MCP)
    board.configure()
    return bus, board


# -- GPIO ----------------------------------------------------------------------------------------


def test_gpio_drives_pins_high_and_reads_them_back(factory: MockFactory) -> None:
    board = GpioBoard("pi", pin_factory=factory)
    board.set(17, True)
    assert factory.pin(17).state is True
    assert board.get(17) is True
    assert board.get(27) is False  # made on first use, driven low
    assert factory.pin(27).state is False
    factory.pin(17).state = False  # the pin, not a cached value, is what get() reports
    assert board.get(17) is False
    board.configure()
    assert board.looks_reset() is False
    board.close()
    assert factory.pin(17).function == "input"


def test_gpio_error_names_the_board(factory: MockFactory) -> None:
    board = GpioBoard("pi", pin_factory=factory)
    with pytest.raises(BoardError, match="board pi: set GPIO99"):
        board.set(99, True)


# -- PCF8574 -------------------------------------------------------------------------------------


def test_pcf8574_pins_are_independent_and_read_from_the_chip() -> None:
    bus = FakeSMBus()
    bus.add_pcf8574(PCF)
    board = Pcf8574Board("relays8", bus, PCF)
    assert bus.read_byte(PCF) == 0xFF  # power-up: all pins high
    board.set(2, False)
    board.set(5, False)
    assert bus.read_byte(PCF) == 0xFF & ~0x04 & ~0x20
    board.set(2, True)
    assert bus.read_byte(PCF) == 0xDF
    assert [board.get(ch) for ch in range(8)] == [True] * 5 + [False] + [True] * 2
    bus.write_byte(PCF, 0x00)  # someone else pulled every pin low: get() must see it
    assert board.get(0) is False
    with pytest.raises(ValueError, match="channel 8"):
        board.set(8, True)


def test_pcf8574_reset_is_detected_and_fixed() -> None:
    bus = FakeSMBus()
    bus.add_pcf8574(PCF)
    board = Pcf8574Board("relays8", bus, PCF)
    board.set(0, False)
    assert board.looks_reset() is False
    bus.power_cycle(PCF)
    assert board.looks_reset() is True
    board.configure()
    assert board.looks_reset() is False
    assert bus.read_byte(PCF) == 0xFE


# -- MCP23017 ------------------------------------------------------------------------------------


def test_mcp23017_configure_writes_latch_before_direction() -> None:
    bus = FakeSMBus()
    bus.add_mcp23017(MCP)
    board = Mcp23017Board("remora", bus, MCP)
    board.set(1, True)
    board.set(9, True)
    bus.power_cycle(MCP)
    bus.writes.clear()
    board.configure()
    assert registers(bus) == [(OLATA, 0x02), (OLATB, 0x02), (IODIRA, 0x00), (IODIRB, 0x00)]


def test_mcp23017_ports_and_latch_read_back() -> None:
    bus, board = mcp_board()
    board.set(0, True)
    board.set(3, True)
    board.set(8, True)
    board.set(15, True)
    assert bus.read_byte_data(MCP, OLATA) == 0x09
    assert bus.read_byte_data(MCP, OLATB) == 0x81
    assert bus.read_byte_data(MCP, 0x12) == 0x09  # GPIOA shows the latch on outputs
    board.set(3, False)
    assert [ch for ch in range(16) if board.get(ch)] == [0, 8, 15]
    bus.write_byte_data(MCP, OLATB, 0x00)  # the latch, not a cached value, is what get() reports
    assert board.get(8) is False
    with pytest.raises(ValueError, match="channel 16"):
        board.get(16)


def test_mcp23017_power_cycle_is_detected_and_fixed() -> None:
    bus, board = mcp_board()
    board.set(0, True)
    board.set(1, True)
    assert board.looks_reset() is False
    bus.power_cycle(MCP)
    assert board.looks_reset() is True
    assert bus.read_byte_data(MCP, IODIRA) == 0xFF
    assert board.get(0) is False  # latch back to 0x00: the radiator would go to Confort
    board.configure()
    assert board.looks_reset() is False
    assert board.get(0) is True
    assert board.get(1) is True


def test_flaky_bus_raises_board_error_naming_the_board() -> None:
    bus, board = mcp_board()
    bus.fail_next(2)
    with pytest.raises(BoardError, match="board remora: write 0x01 to 0x20 reg 0x14") as err:
        board.set(0, True)
    assert isinstance(err.value.__cause__, OSError)
    with pytest.raises(BoardError, match="board remora: read"):
        board.get(0)
    assert board.get(0) is False  # the failed write never reached the chip
    board.configure()  # the shadow kept the intent
    assert board.get(0) is True


def test_unknown_address_raises_board_error() -> None:
    board = Pcf8574Board("ghost", FakeSMBus(), 0x27)
    with pytest.raises(BoardError, match=r"board ghost: .*Remote I/O error") as err:
        board.get(0)
    assert isinstance(err.value.__cause__, OSError)
    assert err.value.__cause__.errno == 121


# -- Fake bus on a state file ---------------------------------------------------------------------


def test_state_file_is_shared_between_instances(tmp_path: Path) -> None:
    state = tmp_path / "board.json"
    _, board = mcp_board(FakeSMBus(state))
    board.set(4, True)
    other = FakeSMBus(state)  # another process's view
    assert other.read_byte_data(MCP, OLATA) == 0x10
    assert other.read_byte_data(MCP, IODIRA) == 0x00
    other.power_cycle(MCP)
    assert board.looks_reset() is True
    board.configure()
    assert other.read_byte_data(MCP, OLATA) == 0x10
    assert json.loads(state.read_text())["0x20"]["kind"] == "mcp23017"
    assert not list(tmp_path.glob("*.tmp")) and len(list(tmp_path.glob("board.json*"))) == 2


def test_power_cycle_from_another_process(tmp_path: Path) -> None:
    state = tmp_path / "board.json"
    _, board = mcp_board(FakeSMBus(state))
    board.set(0, True)
    code = (
        "import sys; from pathlib import Path\n"
        "from services.relays.drivers.fake_smbus import FakeSMBus\n"
        "FakeSMBus(Path(sys.argv[1])).power_cycle(0x20)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(state)], check=True, cwd=ROOT, timeout=30)
    assert board.looks_reset() is True


def test_open_bus_registers_chips_once(tmp_path: Path) -> None:
    spec = f"fake:{tmp_path / 'bus.json'}"
    bus = open_bus(spec, {MCP: "mcp23017", PCF: "pcf8574"})
    bus.write_byte_data(MCP, OLATA, 0x55)
    again = open_bus(spec, {MCP: "mcp23017"})
    assert again.read_byte_data(MCP, OLATA) == 0x55  # not reset by a second open
    assert again.read_byte(PCF) == 0xFF
    with pytest.raises(ValueError, match="already holds a mcp23017"):
        open_bus(spec, {MCP: "pcf8574"})


# -- Factory -------------------------------------------------------------------------------------


def test_make_board(tmp_path: Path, factory: MockFactory) -> None:
    assert set(BOARD_DRIVERS) == {"gpio", "pcf8574", "mcp23017"}
    gpio = make_board("gpio", "pi", pin_factory=factory)
    gpio.set(22, True)
    assert factory.pin(22).state is True
    board = make_board("mcp23017", "remora", bus=f"fake:{tmp_path / 'b.json'}", address=MCP)
    board.configure()
    board.set(0, True)
    assert FakeSMBus(tmp_path / "b.json").read_byte_data(MCP, OLATA) == 0x01
    pcf = make_board("pcf8574", "r8", bus="fake:", address=PCF)
    assert pcf.get(7) is True
    with pytest.raises(ValueError, match="unknown driver 'sonoff'"):
        make_board("sonoff", "x")
    with pytest.raises(ValueError, match="board r8: driver 'pcf8574' needs both"):
        make_board("pcf8574", "r8", bus=1)


# -- Fil pilote and switch -----------------------------------------------------------------------

# Remora mapping on (a, b): confort 00, eco 11, hors-gel 10, arret 01.
PAIRS = {"confort": (0, 0), "eco": (1, 1), "hors-gel": (1, 0), "arret": (0, 1)}


def pair(board: Mcp23017Board, a: int = 2, b: int = 3) -> tuple[int, int]:
    return int(board.get(a)), int(board.get(b))


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_fil_pilote_base_orders(name: str, invert: bool) -> None:
    _, board = mcp_board()
    zone = FilPiloteZone(board, 2, 3, invert=invert)
    zone.apply(Order(name), now=0.0)
    a, b = PAIRS[name]
    assert pair(board) == ((1 - a, 1 - b) if invert else (a, b))
    assert zone.read() is Order(name)
    assert zone.expected(1e6) is Order(name)
    assert zone.tick(1e6) is False  # nothing to time for a base order
    assert PATTERNS[Order(name)] == (bool(a), bool(b))


@pytest.mark.parametrize(("order", "pulse_s"), [(Order.CONFORT_1, 0.3), (Order.CONFORT_2, 0.7)])
def test_fil_pilote_comfort_pulses(order: Order, pulse_s: float) -> None:
    _, board = mcp_board()
    zone = FilPiloteZone(board, 2, 3, period_s=10.0, pulse_1_s=0.3, pulse_2_s=0.7)
    zone.apply(order, now=100.0)
    assert zone.read() is Order.ECO  # the pulse opens the period
    changes = []
    for step in range(300):  # 30 s in 0.1 s ticks
        now = 100.0 + step * 0.1 + 0.05
        if zone.tick(now):
            changes.append((round(now - 100.0, 2), zone.read()))
        assert zone.read() is zone.expected(now)
    ends = [round(p + pulse_s + 0.05, 2) for p in (0.0, 10.0, 20.0)]
    assert changes == [
        (ends[0], Order.CONFORT),
        (10.05, Order.ECO),
        (ends[1], Order.CONFORT),
        (20.05, Order.ECO),
        (ends[2], Order.CONFORT),
    ]


def test_fil_pilote_reapply_keeps_timing_and_new_order_restarts_it() -> None:
    _, board = mcp_board()
    zone = FilPiloteZone(board, 2, 3, period_s=10.0, pulse_1_s=0.3, pulse_2_s=0.7)
    zone.apply(Order.CONFORT_1, now=0.0)
    zone.apply(Order.CONFORT_1, now=5.0)  # a re-assert mid-period: no extra pulse
    assert zone.read() is Order.CONFORT
    assert zone.expected(10.1) is Order.ECO
    zone.apply(Order.CONFORT_2, now=5.0)
    assert zone.read() is Order.ECO
    assert zone.expected(5.6) is Order.ECO
    assert zone.expected(5.8) is Order.CONFORT
    zone.apply(Order.HORS_GEL, now=6.0)
    assert zone.tick(15.0) is False
    assert zone.read() is Order.HORS_GEL


def test_fil_pilote_board_errors_propagate() -> None:
    bus, board = mcp_board()
    zone = FilPiloteZone(board, 0, 1)
    zone.apply(Order.ARRET, now=0.0)
    bus.fail_next(1)
    with pytest.raises(BoardError, match="remora"):
        zone.read()
    zone2 = FilPiloteZone(board, 4, 5, period_s=10.0)
    zone2.apply(Order.CONFORT_2, now=0.0)
    bus.fail_next(1)
    with pytest.raises(BoardError):
        zone2.tick(8.0)
    assert zone2.tick(8.1) is True  # the failed switch is retried on the next tick


@pytest.mark.parametrize("active_low", [False, True])
def test_switch_polarity(active_low: bool, factory: MockFactory) -> None:
    switch = SwitchOutput(GpioBoard("pi", pin_factory=factory), 17, active_low=active_low)
    switch.apply(True)
    assert factory.pin(17).state is (not active_low)
    assert switch.read() is True
    switch.apply(False)
    assert factory.pin(17).state is active_low
    assert switch.read() is False
