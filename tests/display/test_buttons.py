"""Buttons without hardware: debounce on polled key masks, the relay cycle from each mode a
relay reports, long presses, the commands as the contract's RelayCommand, and (hypothesis)
never more than one command per accepted press."""

from __future__ import annotations

import inspect
import json
import threading

import gpiod
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.contract import RelayCommand, RelayReport, Topics
from services.display.buttons import (
    FORCED_S,
    POLL_S,
    ButtonEvent,
    Debouncer,
    GpiodButtons,
    KeyPoller,
    RelayButtons,
    RelayOrder,
)
from services.display.lines import FakeLines
from services.display.tm1638 import TM1638


def report(mode: str, state: str = "on") -> RelayReport:
    """A relays ``state`` payload as the relays service publishes it, decoded."""
    payload = json.dumps({"state": state, "source": "user" if mode != "auto" else "auto",
                          "mode": mode, "ts": "2026-12-02T08:00:00Z"}).encode()
    decoded = RelayReport.decode(payload)
    assert isinstance(decoded, RelayReport)
    return decoded


def press(logic: RelayButtons, key: int, at: float, held_s: float = 0.2) -> RelayOrder | None:
    assert logic.handle(ButtonEvent(key, True, at)) is None  # nothing on the way down
    assert logic.tick(at + held_s / 2) == []  # a short hold: nothing while held
    return logic.handle(ButtonEvent(key, False, at + held_s))


# -- debounce ------------------------------------------------------------------------------


def test_a_change_is_accepted_after_two_equal_reads() -> None:
    d = Debouncer()
    assert d.feed(0b01, 0.00) == []
    assert d.feed(0b01, 0.05) == [ButtonEvent(0, True, 0.05)]
    assert d.feed(0b01, 0.10) == []
    assert d.feed(0b00, 0.15) == []
    assert d.feed(0b00, 0.20) == [ButtonEvent(0, False, 0.20)]


def test_a_one_read_glitch_is_ignored() -> None:
    d = Debouncer()
    reads = [0b100, 0b000, 0b100, 0b000, 0b000]  # never two in a row: no press
    assert [e for i, m in enumerate(reads) for e in d.feed(m, i * POLL_S)] == []
    assert d.stable == 0


def test_keys_are_debounced_each_on_its_own() -> None:
    d = Debouncer()
    assert d.feed(0b0001, 0.0) == []
    assert d.feed(0b1001, 0.05) == [ButtonEvent(0, True, 0.05)]
    assert d.feed(0b1001, 0.10) == [ButtonEvent(3, True, 0.10)]


def test_the_poller_reads_the_board_through_the_driver() -> None:
    lines = FakeLines()
    tm = TM1638(lines)
    now = [0.0]
    poller = KeyPoller(tm.keys, clock=lambda: now[0])
    lines.script([0, 0, 0, 0x10])  # S8 down
    assert poller.poll() == []
    lines.script([0, 0, 0, 0x10])
    now[0] = POLL_S
    assert poller.poll() == [ButtonEvent(7, True, POLL_S)]


def test_the_poller_reads_on_its_period_until_an_event() -> None:
    reads = iter([1, 1])
    poller = KeyPoller(lambda: next(reads, 1))
    events = poller.read(timeout_s=1.0)  # two polls: one period apart
    assert [(e.key, e.pressed) for e in events] == [(0, True)]
    poller.close()
    assert poller.read(timeout_s=1.0) == []


def test_a_closed_poller_stops_a_waiting_read() -> None:
    poller = KeyPoller(lambda: 0, period_s=60.0)  # one poll, then a minute's wait
    done = threading.Event()
    got: list[list[ButtonEvent]] = []

    def reader() -> None:
        got.append(poller.read(timeout_s=60.0))
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    poller.close()
    assert done.wait(5.0) and got == [[]]
    thread.join()


# -- the relay cycle --------------------------------------------------------------------------


@pytest.mark.parametrize(("reported", "sent"), [
    ("auto", RelayCommand("on", None, FORCED_S)),
    ("on", RelayCommand("off", None, FORCED_S)),
    ("off", RelayCommand("auto")),
])
def test_a_press_steps_the_cycle_from_the_reported_mode(reported: str,
                                                        sent: RelayCommand) -> None:
    logic = RelayButtons(["water-heater", "radiator"])
    logic.observe("radiator", report(reported))
    order = press(logic, 1, at=100.0)
    assert order == RelayOrder("radiator", sent, 1)


def test_the_commands_are_what_relays_set_decodes() -> None:
    logic = RelayButtons(["water-heater"])
    order = press(logic, 0, at=0.0)
    assert order is not None
    topic = Topics("enerbox", "display").relay_set(order.relay)
    assert topic == "enerbox/relays/water-heater/set"
    assert RelayCommand.decode(order.command.encode()) == order.command
    assert json.loads(order.command.encode()) == {"mode": "on", "for_s": 7200.0}
    assert order.command.check_kind("switch") is None


def test_quick_presses_step_on_from_what_was_sent_until_the_state_shows_it() -> None:
    logic = RelayButtons(["pump"])
    modes = []
    for i in range(4):
        order = press(logic, 0, at=10.0 + i)
        assert order is not None
        modes.append(order.command.mode)
    assert modes == ["on", "off", "auto", "on"]
    logic.observe("pump", report("on"))  # the state caught up
    order = press(logic, 0, at=20.0)
    assert order is not None and order.command.mode == "off"


def test_a_stale_pending_mode_gives_way_to_the_report() -> None:
    logic = RelayButtons(["pump"], pending_s=5.0)
    logic.observe("pump", report("auto"))
    assert press(logic, 0, at=0.0) is not None  # sent on: the relays service refused it
    order = press(logic, 0, at=30.0)
    assert order is not None and order.command.mode == "on"  # from the reported auto


def test_a_long_press_returns_to_auto_while_held_and_once() -> None:
    logic = RelayButtons(["pump"])
    logic.observe("pump", report("on"))
    assert logic.handle(ButtonEvent(0, True, 0.0)) is None
    assert logic.tick(1.45) == []
    assert logic.tick(1.5) == [RelayOrder("pump", RelayCommand("auto"), 0)]
    assert logic.tick(3.0) == []
    assert logic.handle(ButtonEvent(0, False, 4.0)) is None  # its release sends nothing


def test_a_long_press_without_ticks_returns_to_auto_on_release() -> None:
    logic = RelayButtons(["pump"], long_press_s=1.0)
    logic.observe("pump", report("off"))
    logic.handle(ButtonEvent(0, True, 0.0))
    assert logic.handle(ButtonEvent(0, False, 1.2)) == RelayOrder("pump", RelayCommand("auto"), 0)


def test_keys_without_a_relay_and_stray_releases_send_nothing() -> None:
    logic = RelayButtons(["pump", None])
    assert press(logic, 1, at=0.0) is None
    assert press(logic, 5, at=0.0) is None
    assert logic.handle(ButtonEvent(0, False, 1.0)) is None  # held when the service started


# -- any sequence of reads --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=120),
       st.lists(st.sampled_from(["on", "off", "auto"]), max_size=5))
def test_any_reads_never_raise_and_give_at_most_one_command_per_press(
        reads: list[int], reported: list[str]) -> None:
    debouncer = Debouncer()
    logic = RelayButtons([f"r{i}" for i in range(6)])  # keys 6, 7 have no relay
    presses = [0] * 8
    commands = [0] * 8
    for i, mask in enumerate(reads):
        now = i * POLL_S
        if reported and i % 7 == 0:
            logic.observe("r0", report(reported[i % len(reported)]))
        orders = logic.tick(now)
        for event in debouncer.feed(mask, now):
            if event.pressed:
                presses[event.key] += 1
                assert commands[event.key] <= presses[event.key] - 1  # earlier ones settled
            order = logic.handle(event)
            if order is not None:
                orders.append(order)
        for order in orders:
            assert isinstance(order.command, RelayCommand)
            assert RelayCommand.decode(order.command.encode()) == order.command
            commands[order.key] += 1
            assert commands[order.key] <= presses[order.key]
    assert all(c <= p for c, p in zip(commands, presses, strict=True))
    assert commands[6] == commands[7] == 0


# -- GPIO push-buttons ------------------------------------------------------------------------


def test_the_gpiod_names_gpio_buttons_call_exist() -> None:
    fields = set(inspect.signature(gpiod.LineSettings).parameters)
    assert {"direction", "edge_detection", "bias", "active_low", "debounce_period",
            "event_clock"} <= fields
    for name in ("event_type", "timestamp_ns", "line_offset"):
        assert name in gpiod.EdgeEvent.__annotations__
    for name in ("wait_edge_events", "read_edge_events", "release"):
        assert callable(getattr(gpiod.LineRequest, name))
    assert {"chip", "lines", "debounce_us"} <= set(inspect.signature(GpiodButtons).parameters)
