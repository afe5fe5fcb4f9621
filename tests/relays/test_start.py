"""A start of the relays service never puts anything on the wire but safe states and what
was commanded: a recording fake MCP23017 and PCF8574, switch relays active-high and
active-low, and fil pilote zones (issue 11, item 5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.app.root_config import root_model
from services.relays import drivers
from services.relays.drivers.fake_smbus import FakeSMBus, Write, open_bus
from services.relays.drivers.mcp23017 import IODIRA, OLATA
from tests.conftest import Broker, Watcher
from tests.relays.harness import MCP, PAIRS, Clock, Harness

PCF = 0x38


@dataclass(frozen=True)
class Load:
    """Where a relay is and what its outputs may show."""

    id: str
    address: int
    channels: tuple[int, ...]
    allowed: frozenset[tuple[int, ...]]  # pin levels: the safe state and what is commanded


def switch(relay: str, address: int, channel: int, active_low: bool,
           commanded: bool = False) -> Load:
    levels = {(int(active_low),)} | ({(int(not active_low),)} if commanded else set())
    return Load(relay, address, (channel,), frozenset(levels))


def fil_pilote(relay: str, address: int, first: int, *orders: str) -> Load:
    return Load(relay, address, (first, first + 1),
                frozenset({PAIRS["arret"], *(PAIRS[o] for o in orders)}))


LOADS = [
    fil_pilote("living", MCP, 0, "confort", "hors-gel"),  # default confort, then a command
    fil_pilote("bedroom", MCP, 2, "eco"),  # default eco
    switch("heater-high", MCP, 8, active_low=False, commanded=True),
    switch("heater-low", MCP, 9, active_low=True),
    switch("fan-low", PCF, 0, active_low=True, commanded=True),
    switch("light-high", PCF, 1, active_low=False),
    fil_pilote("attic", PCF, 2),  # default arret
]


def config(tmp_path: Path, broker: Broker, prefix: str) -> Any:
    board_file = f"fake:{tmp_path / 'board.json'}"
    return root_model().model_validate({
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery": False},
        "relays": {
            "boards": [{"id": "remora", "driver": "mcp23017", "bus": board_file,
                        "address": MCP},
                       {"id": "relays8", "driver": "pcf8574", "bus": board_file,
                        "address": PCF}],
            "relays": [
                {"id": "living", "kind": "fil_pilote", "board": "remora", "channels": [0, 1]},
                {"id": "bedroom", "kind": "fil_pilote", "board": "remora", "channels": [2, 3],
                 "default": "eco"},
                {"id": "heater-high", "board": "remora", "channel": 8},
                {"id": "heater-low", "board": "remora", "channel": 9, "active_low": True},
                {"id": "fan-low", "board": "relays8", "channel": 0, "active_low": True},
                {"id": "light-high", "board": "relays8", "channel": 1},
                {"id": "attic", "kind": "fil_pilote", "board": "relays8", "channels": [2, 3],
                 "default": "arret"},
            ],
            "shedding_grace_s": 3600,
        },
    })


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[FakeSMBus]:
    """Every fake bus the service opens, to read what it wrote."""
    buses: list[FakeSMBus] = []

    def recording(spec: int | str, chips: Mapping[int, str] | None = None) -> Any:
        bus = open_bus(spec, chips)
        assert isinstance(bus, FakeSMBus)
        buses.append(bus)
        return bus

    monkeypatch.setattr(drivers, "open_bus", recording)
    return buses


def replay(writes: list[Write], start: dict[int, list[int]]) -> list[str]:
    """Apply the writes to the chips' registers one by one; what any driven output showed
    that it may not have."""
    regs = {address: list(values) for address, values in start.items()}
    bad = []
    for write in writes:
        chip = regs[write.address]
        if write.register is None:
            chip[0] = write.value
        else:
            chip[write.register] = write.value
        for load in LOADS:
            if load.address != write.address:
                continue
            if write.register is None:  # PCF8574: every pin is driven
                levels = tuple(chip[0] >> ch & 1 for ch in load.channels)
            else:
                port = load.channels[0] // 8
                if chip[IODIRA + port] != 0x00:
                    continue  # still inputs: nothing of ours on the wire
                levels = tuple(chip[OLATA + port] >> (ch % 8) & 1 for ch in load.channels)
            if levels not in load.allowed:
                bad.append(f"{load.id} showed {levels} after {write}")
    return bad


def snapshot(path: Path) -> dict[int, list[int]]:
    fake = FakeSMBus(path)
    return {address: list(chip.regs) for address, chip in fake.chips.items()}


def prepare(path: Path, how: str) -> None:
    fake = FakeSMBus(path)
    fake.add_mcp23017(MCP)
    fake.add_pcf8574(PCF)
    if how == "everything-on":  # outputs on, every relay energised, zones on Confort
        fake.write_byte_data(MCP, 0x15, 0xFF)
        fake.write_byte_data(MCP, 0x14, 0x00)
        fake.write_byte_data(MCP, 0x00, 0x00)
        fake.write_byte_data(MCP, 0x01, 0x00)
        fake.write_byte(PCF, 0x02)


@pytest.mark.parametrize("how", ["power-up", "everything-on"])
def test_start_writes_only_safe_then_commanded(
    how: str, tmp_path: Path, broker: Broker, prefix: str,
    watch: Callable[[str], Watcher], opened: list[FakeSMBus],
) -> None:
    board_file = tmp_path / "board.json"
    prepare(board_file, how)
    start = snapshot(board_file)
    h = Harness(config(tmp_path, broker, prefix), Clock(), watch(f"{prefix}/#"), broker,
                prefix)
    try:
        h.start()
        h.state("living", lambda s: s["order"] == "confort" and s["readback_ok"] is True)
        h.state("bedroom", lambda s: s["order"] == "eco" and s["readback_ok"] is True)
        assert h.command("living", '{"order": "hors-gel"}').applied
        assert h.command("heater-high", "on").applied
        assert h.command("fan-low", "on").applied
        h.state("living", lambda s: s["order"] == "hors-gel")
        h.state("fan-low", lambda s: s["state"] == "on" and s["readback_ok"] is True)
        h.state("heater-high", lambda s: s["state"] == "on" and s["readback_ok"] is True)
    finally:
        h.stop()
    writes = [w for bus in opened for w in bus.writes]
    assert writes
    assert replay(writes, start) == []


def test_a_board_that_kept_the_safe_levels_is_not_written(
    tmp_path: Path, broker: Broker, prefix: str, watch: Callable[[str], Watcher],
    opened: list[FakeSMBus],
) -> None:
    cfg = config(tmp_path, broker, prefix)
    data = cfg.model_dump(mode="json")
    for relay in data["relays"]["relays"]:  # every default is the safe state
        relay["default"] = "arret" if relay["kind"] == "fil_pilote" else "off"
    data["mqtt"].pop("password", None)
    cfg = root_model().model_validate(data)
    h = Harness(cfg, Clock(), watch(f"{prefix}/#"), broker, prefix)
    h.start()
    h.state("living", lambda s: s["readback_ok"] is True)
    h.stop()  # a clean stop leaves the safe states: the next start finds them
    opened.clear()
    h.start()
    try:
        h.state("attic", lambda s: s["readback_ok"] is True, after=h.w.count())
        for relay in ("living", "bedroom", "heater-high", "heater-low", "fan-low"):
            h.state(relay, lambda s: s["readback_ok"] is True)
        assert [w for bus in opened for w in bus.writes] == []
    finally:
        h.stop()
