"""Boards come up at the intended levels and a zone changes order in one write: every write
the recording fake bus sees is a pattern the load may have (issue 11, items 5 and 6)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise, permutations

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped, unused-ignore]

from services.core.contract.orders import Order
from services.relays.drivers.fake_smbus import FakeSMBus
from services.relays.drivers.fil_pilote import PATTERNS, FilPiloteZone
from services.relays.drivers.gpio import GpioBoard
from services.relays.drivers.mcp23017 import IODIRA, IODIRB, OLATA, OLATB, Mcp23017Board
from services.relays.drivers.pcf8574 import Pcf8574Board

MCP, PCF = 0x20, 0x38
BASE = [Order.CONFORT, Order.ECO, Order.HORS_GEL, Order.ARRET]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def mcp(bus: FakeSMBus) -> Mcp23017Board:
    bus.add_mcp23017(MCP)
    return Mcp23017Board("remora", bus, MCP)


def pcf(bus: FakeSMBus) -> Pcf8574Board:
    bus.add_pcf8574(PCF)
    return Pcf8574Board("relays8", bus, PCF)


def zone_bits(value: int, first: int, invert: bool) -> Order:
    pattern = (bool(value >> first & 1) != invert, bool(value >> (first + 1) & 1) != invert)
    return next(order for order, p in PATTERNS.items() if p == pattern)


def test_mcp23017_comes_up_at_the_preset_levels_latch_first() -> None:
    bus = FakeSMBus()
    board = mcp(bus)
    board.preset({0: False, 1: True, 9: True})  # zone on arret, active-low relay off
    assert list(bus.writes) == []  # preset is no I/O
    board.configure()
    assert [(w.register, w.value) for w in bus.writes] == [
        (OLATA, 0x02), (OLATB, 0x02), (IODIRA, 0x00), (IODIRB, 0x00)]


def test_mcp23017_that_kept_its_latch_is_not_written() -> None:
    bus = FakeSMBus()
    first = mcp(bus)
    first.preset({0: False, 1: True, 9: True})
    first.configure()
    first.set(12, True)  # a channel no relay of the next run presets: kept as it is
    bus.writes.clear()
    again = Mcp23017Board("remora", bus, MCP)  # the service restarted; the chip did not
    again.preset({0: False, 1: True, 9: True})
    again.configure()
    assert list(bus.writes) == []
    again.set(9, False)
    assert bus.read_byte_data(MCP, OLATB) == 0x10  # channel 12 kept, 9 changed


def test_mcp23017_holding_other_levels_gets_one_latch_write() -> None:
    bus = FakeSMBus()
    first = mcp(bus)
    first.configure()
    first.set_many({0: True, 1: False})  # hors-gel on the wire when the service died
    bus.writes.clear()
    again = Mcp23017Board("remora", bus, MCP)
    again.preset({0: False, 1: True})
    again.configure()
    assert [(w.register, w.value) for w in bus.writes] == [(OLATA, 0x02)]


def test_pcf8574_comes_up_at_the_preset_levels_and_is_left_alone_when_it_holds_them() -> None:
    bus = FakeSMBus()
    board = pcf(bus)
    board.preset({0: True, 1: False})  # active-low relay off (high), active-high relay off
    board.configure()
    assert [(w.register, w.value) for w in bus.writes] == [(None, 0xFD)]
    bus.writes.clear()
    again = Pcf8574Board("relays8", bus, PCF)
    again.preset({0: True, 1: False})
    again.configure()
    assert list(bus.writes) == []


def test_gpio_pins_come_up_at_the_preset_level(factory: MockFactory) -> None:
    board = GpioBoard("pi", pin_factory=factory)
    board.preset({17: True, 27: False})  # active-low relay off: pin high from the start
    board.configure()
    assert [s.state for s in factory.pin(17).states[1:]] == [True]  # never driven low
    assert factory.pin(27).state is False
    board.set_many({17: False, 27: True})
    assert (factory.pin(17).state, factory.pin(27).state) == (False, True)


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("chip", ["mcp23017", "pcf8574"])
def test_a_zone_changes_order_in_one_write(chip: str, invert: bool) -> None:
    bus = FakeSMBus()
    board = mcp(bus) if chip == "mcp23017" else pcf(bus)
    board.configure()
    zone = FilPiloteZone(board, 2, 3, invert=invert)
    zone.apply(Order.CONFORT, now=0.0)
    for before, after in permutations(BASE, 2):
        zone.apply(before, now=0.0)
        bus.writes.clear()
        zone.apply(after, now=0.0)
        assert len(bus.writes) == 1, (before, after)
        assert zone_bits(bus.writes[0].value, 2, invert) is after
        assert zone.read() is after


def test_timed_orders_switch_in_one_write_too() -> None:
    bus = FakeSMBus()
    board = mcp(bus)
    board.configure()
    zone = FilPiloteZone(board, 0, 1, period_s=10.0, pulse_1_s=0.3)
    zone.apply(Order.HORS_GEL, now=0.0)
    bus.writes.clear()
    zone.apply(Order.CONFORT_1, now=0.0)
    for step in range(1, 300):
        zone.tick(step * 0.1)
    seen = [zone_bits(w.value, 0, False) for w in bus.writes]
    assert seen[0] is Order.ECO and set(seen) == {Order.ECO, Order.CONFORT}
    assert all(a is not b for a, b in pairwise(seen))  # one write each
