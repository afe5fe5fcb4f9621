"""Relays service scenarios: real mosquitto, gpiozero MockFactory, fake SMBus on a file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from paho.mqtt import publish

from services.app.root_config import root_model, settings_for
from services.core.bus import Bus
from services.relays.drivers.fake_smbus import FakeSMBus
from services.relays.service import RelaysService
from tests.conftest import Broker, Watcher

MCP = 0x20


class Clock:
    """Wall clock the test can move forward (forced-mode expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(autouse=True)
def mock_gpio() -> Iterator[MockFactory]:
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = None


def make_config(tmp_path: Path, broker: Broker, prefix: str, **relays: Any) -> Any:
    board_file = tmp_path / "board.json"
    data = {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "relays": {
            "boards": [
                {"id": "gpio", "driver": "gpio"},
                {"id": "remora", "driver": "mcp23017", "bus": f"fake:{board_file}",
                 "address": MCP},
            ],
            "relays": [
                {"id": "water-heater", "board": "gpio", "channel": 17, "active_low": True},
                {"id": "pump", "board": "gpio", "channel": 27, "min_off_s": 30},
                {"id": "living", "kind": "fil_pilote", "board": "remora", "channels": [0, 1]},
                {"id": "bedroom", "kind": "fil_pilote", "board": "remora", "channels": [2, 3],
                 "default": "eco"},
            ],
            "reassert_interval_s": 0.3,
            **relays,
        },
    }
    return root_model().model_validate(data)


class Harness:
    """A running RelaysService and the means to poke at it."""

    def __init__(self, config: Any, clock: Clock, watcher: Watcher, broker: Broker,
                 prefix: str) -> None:
        self.config, self.clock, self.w, self.broker, self.prefix = (
            config, clock, watcher, broker, prefix)
        self.service: RelaysService | None = None

    def start(self) -> RelaysService:
        bus = Bus(self.config.mqtt, "relays")
        self.service = RelaysService(settings_for("relays", self.config), bus, clock=self.clock)
        bus.start()
        assert bus.wait_connected(10)
        self.service.start()
        return self.service

    def stop(self, clean: bool = True) -> None:
        if self.service is None:
            return
        if clean:
            self.service.stop()
        else:  # a crash: the thread dies with the process, nothing is written at exit
            self.service.stop_event.set()
            self.service.thread.join(5)
        self.service.bus.stop()
        self.service = None

    def send(self, relay: str, payload: str, leaf: str = "set", retain: bool = False) -> None:
        publish.single(f"{self.prefix}/relays/{relay}/{leaf}", payload, qos=1, retain=retain,
                       hostname=self.broker.host, port=self.broker.port)

    def state(self, relay: str, pred: Callable[[dict[str, Any]], bool],
              timeout: float = 10) -> dict[str, Any]:
        topic = f"{self.prefix}/relays/{relay}/state"
        msg = self.w.wait_for(lambda m: m.topic == topic and pred(json.loads(m.payload)),
                              timeout)
        data: dict[str, Any] = json.loads(msg.payload)
        return data

    def event(self, kind: str, timeout: float = 10, after: int = 0) -> dict[str, Any]:
        msg = self.w.wait_for(lambda m: m.topic.endswith("/relays/events")
                              and json.loads(m.payload)["type"] == kind, timeout, after)
        data: dict[str, Any] = json.loads(msg.payload)
        return data


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(make_config(tmp_path, broker, prefix), Clock(), watch(f"{prefix}/#"), broker,
                prefix)
    yield h
    h.stop()


def board(tmp_path: Path) -> FakeSMBus:
    return FakeSMBus(tmp_path / "board.json")


def olat(tmp_path: Path) -> int:
    return board(tmp_path).read_byte_data(MCP, 0x14)


# Remora mapping on (a, b): confort 00, eco 11, hors-gel 10, arret 01.
PAIRS = {"confort": (0, 0), "eco": (1, 1), "hors-gel": (1, 0), "arret": (0, 1)}


def zone(tmp_path: Path, first: int) -> tuple[int, int]:
    latch = olat(tmp_path)
    return (latch >> first) & 1, (latch >> (first + 1)) & 1


def test_start_applies_defaults_and_discovery(harness: Harness, tmp_path: Path,
                                              mock_gpio: MockFactory) -> None:
    harness.start()
    assert harness.state("living", lambda s: s["order"] == "confort")["source"] == "default"
    assert harness.state("bedroom", lambda s: s["order"] == "eco")["readback_ok"] is True
    assert zone(tmp_path, 0) == PAIRS["confort"] and zone(tmp_path, 2) == PAIRS["eco"]
    heater = harness.state("water-heater", lambda s: s["state"] == "off")
    assert heater["mode"] == "auto" and heater["readback_ok"] is True
    assert mock_gpio.pin(17).state is True  # active low: off = pin high
    config = harness.w.wait_for(lambda m: m.topic.endswith("/config") and "living" in m.topic)
    comps = json.loads(config.payload)["components"].values()
    select = next(c for c in comps if c["platform"] == "select" and c["name"] == "Order")
    assert select["command_topic"] == f"{harness.prefix}/relays/living/set"
    assert "arret" in select["options"]


def test_every_command_form(harness: Harness, tmp_path: Path, mock_gpio: MockFactory) -> None:
    harness.start()
    harness.send("water-heater", "ON")
    assert harness.state("water-heater", lambda s: s["state"] == "on")["source"] == "user"
    assert mock_gpio.pin(17).state is False  # active low: on = pin low
    harness.send("water-heater", "auto")
    harness.state("water-heater", lambda s: s["state"] == "off" and s["mode"] == "auto")
    harness.send("water-heater", '{"mode": "on", "for_s": 3600}')
    assert harness.state("water-heater", lambda s: s["until"] is not None)["mode"] == "on"
    harness.send("living", '{"order": "hors-gel"}')
    harness.state("living", lambda s: s["order"] == "hors-gel")
    assert zone(tmp_path, 0) == PAIRS["hors-gel"]
    harness.send("living", "OFF")
    harness.state("living", lambda s: s["order"] == "arret" and s["mode"] == "off")
    assert zone(tmp_path, 0) == PAIRS["arret"]


@pytest.mark.parametrize(("relay", "payload", "reason"), [
    ("water-heater", "BLINK", "neither ON, OFF, AUTO nor a JSON object"),
    ("water-heater", '{"mode": "turbo"}', "mode 'turbo' is not one of on, off, auto"),
    ("water-heater", '{"order": "eco"}', "'order' is for fil pilote zones"),
    ("living", '{"order": "sauna"}', "order 'sauna' is not one of"),
    ("living", '{"mode": "on", "for_s": -5}', "for_s must be between"),
    ("living", '{"mode": "on", "extra": 1}', "unknown key(s): extra"),
    ("garage", "ON", "unknown relay 'garage'"),
])
def test_bad_commands_are_rejected_with_the_reason(harness: Harness, relay: str,
                                                   payload: str, reason: str) -> None:
    harness.start()
    harness.state("living", lambda s: s["order"] == "confort")
    harness.send(relay, payload)
    event = harness.event("rejected")
    assert event["relay"] == relay and reason in event["reason"]
    harness.send("living", "ON")  # still alive and serving
    harness.state("living", lambda s: s["mode"] == "on")


def test_forced_mode_expires_back_to_auto(harness: Harness) -> None:
    harness.start()
    harness.send("water-heater", '{"mode": "on", "for_s": 60}')
    harness.state("water-heater", lambda s: s["state"] == "on")
    harness.clock.offset = 61
    state = harness.state("water-heater", lambda s: s["state"] == "off")
    assert (state["mode"], state["until"], state["source"]) == ("auto", None, "default")
    harness.event("forced_expired")


def test_shed_wins_and_user_order_applies_on_restore(harness: Harness, tmp_path: Path) -> None:
    harness.start()
    harness.send("living", '{"shed": true, "reason": "phase 1 at 95%"}', "shed", retain=True)
    state = harness.state("living", lambda s: s["shed"] is True)
    assert (state["order"], state["source"]) == ("arret", "shed")
    assert zone(tmp_path, 0) == PAIRS["arret"]
    harness.send("living", '{"order": "eco"}')  # while shed: remembered, not applied
    event = harness.event("command")
    assert event["applied"] is False
    time.sleep(0.5)
    assert zone(tmp_path, 0) == PAIRS["arret"]
    harness.send("living", '{"shed": false}', "shed", retain=True)
    state = harness.state("living", lambda s: s["shed"] is False)
    assert (state["order"], state["source"], state["mode"]) == ("eco", "user", "on")
    assert zone(tmp_path, 0) == PAIRS["eco"]


def test_restart_while_shed_never_unsheds(harness: Harness, tmp_path: Path) -> None:
    harness.start()
    harness.send("living", '{"shed": true, "reason": "peak"}', "shed", retain=True)
    harness.state("living", lambda s: s["shed"] is True)
    time.sleep(0.5)  # the control pass persisted the flag
    harness.stop(clean=False)
    # The broker lost the retained shed message (restart without persistence): the state
    # file alone must keep the load shed. A power cut mid-write leaves a torn temp file.
    harness.send("living", "", "shed", retain=True)
    (tmp_path / "data" / ".relays.json.tmp").write_text('{"living": {"sh', encoding="utf-8")
    count = harness.w.count()
    harness.start()
    state = harness.state("living", lambda s: True)
    assert harness.w.count() >= count
    assert state["shed"] is True and state["order"] == "arret"
    assert zone(tmp_path, 0) == PAIRS["arret"]


def test_corrupt_state_file_is_kept_aside(harness: Harness, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "relays.json").write_text("{not json", encoding="utf-8")
    harness.start()
    harness.state("living", lambda s: s["order"] == "confort")
    assert (data / "relays.json.corrupt").exists()


def test_expander_reset_is_caught_by_read_back(harness: Harness, tmp_path: Path) -> None:
    harness.start()
    harness.send("living", '{"order": "arret"}')
    harness.state("living", lambda s: s["order"] == "arret")
    count = harness.w.count()
    board(tmp_path).power_cycle(MCP)  # all pins inputs: the radiator would go to Confort
    event = harness.event("board_reset", after=count)
    assert event["board"] == "remora"
    deadline = time.monotonic() + 5
    while zone(tmp_path, 0) != PAIRS["arret"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zone(tmp_path, 0) == PAIRS["arret"]
    fake = board(tmp_path)
    assert fake.read_byte_data(MCP, 0x00) == 0x00  # IODIRA: outputs again


def test_min_off_time_protects_the_pump(harness: Harness) -> None:
    harness.start()
    harness.send("pump", "ON")
    time.sleep(0.6)
    state = harness.state("pump", lambda s: True)
    assert state["state"] == "off"  # the start counts as a change: 30 s off first
    harness.send("pump", '{"shed": true}', "shed")  # shedding is exempt, and it turns off
    harness.state("pump", lambda s: s["shed"] is True)


def test_shedding_offline_keeps_loads_shed_and_says_so(harness: Harness) -> None:
    harness.start()
    harness.send("bedroom", '{"shed": true, "reason": "peak"}', "shed", retain=True)
    harness.state("bedroom", lambda s: s["shed"] is True)
    publish.single(f"{harness.prefix}/shedding/status", "online", hostname=harness.broker.host,
                   port=harness.broker.port)
    publish.single(f"{harness.prefix}/shedding/status", "offline",
                   hostname=harness.broker.host, port=harness.broker.port)
    event = harness.event("shedding_offline")
    assert event["relays"] == ["bedroom"] and "stay shed" in event["reason"]
    assert harness.state("bedroom", lambda s: True)["shed"] is True


def test_clean_stop_leaves_safe_states(harness: Harness, tmp_path: Path,
                                       mock_gpio: MockFactory) -> None:
    harness.start()
    harness.send("water-heater", "ON")
    harness.send("living", '{"order": "confort"}')
    harness.state("water-heater", lambda s: s["state"] == "on")
    harness.stop()
    assert mock_gpio.pin(17).state is True  # off (active low)
    assert zone(tmp_path, 0) == PAIRS["arret"]
    saved = json.loads((tmp_path / "data" / "relays.json").read_text(encoding="utf-8"))
    assert saved["water-heater"]["mode"] == "on"  # the user's order survives the restart


def test_missing_board_does_not_stop_the_others(tmp_path: Path, broker: Broker, prefix: str,
                                                watch: Callable[[str], Watcher]) -> None:
    config = make_config(tmp_path, broker, prefix)
    data = config.model_dump(mode="json")
    data["relays"]["boards"].append({"id": "attic", "driver": "pcf8574",
                                     "bus": str(tmp_path / "no-i2c-bus"), "address": 0x27})
    data["relays"]["relays"].append({"id": "fan", "board": "attic", "channel": 3})
    for section in ("mqtt",):
        data[section].pop("password", None)
    h = Harness(root_model().model_validate(data), Clock(), watch(f"{prefix}/#"), broker,
                prefix)
    try:
        h.start()
        h.state("living", lambda s: s["order"] == "confort")
        event = h.event("board_error")
        assert event["board"] == "attic" and "cannot open" in event["error"]
        assert h.state("fan", lambda s: True)["readback_ok"] is False
        time.sleep(1)  # retried every pass, announced once
        errors = [m for m in h.w.messages if b"board_error" in m.payload]
        assert len(errors) == 1
    finally:
        h.stop()
