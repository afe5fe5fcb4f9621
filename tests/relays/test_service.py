"""Relays service scenarios: real mosquitto, gpiozero MockFactory, fake SMBus on a file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped, unused-ignore]

from services.app.root_config import root_model
from services.core.contract.messages import parse_ts
from tests.conftest import Broker, Watcher
from tests.relays.harness import MCP, PAIRS, Clock, Harness, board, make_config, zone


def test_start_applies_defaults_and_discovery(harness: Harness, tmp_path: Path,
                                              mock_gpio: MockFactory) -> None:
    harness.start()
    assert harness.state("living", lambda s: s["order"] == "confort")["source"] == "default"
    assert harness.state("bedroom", lambda s: s["order"] == "eco")["readback_ok"] is True
    assert zone(tmp_path, 0) == PAIRS["confort"] and zone(tmp_path, 2) == PAIRS["eco"]
    heater = harness.state("water-heater", lambda s: s["state"] == "off")
    assert heater["mode"] == "auto" and heater["readback_ok"] is True
    assert parse_ts(heater["ts"]) is not None  # its own time, not the historian's arrival
    assert mock_gpio.pin(17).state is True  # active low: off = pin high
    config = harness.w.wait_for(lambda m: m.topic.endswith("/config") and "living" in m.topic)
    comps = json.loads(config.payload)["components"].values()
    select = next(c for c in comps if c["platform"] == "select" and c["name"] == "Ordre")
    assert select["command_topic"] == f"{harness.prefix}/relays/living/set"
    assert "Arrêt" in select["options"] and select["qos"] == 1  # words; "arret" is sent


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
    # configure() writes the latch, then the direction: wait for both (the test reads the
    # board between the service's writes).
    deadline = time.monotonic() + 10

    def fixed() -> bool:
        iodir_a = board(tmp_path).read_byte_data(MCP, 0x00)  # outputs again
        return zone(tmp_path, 0) == PAIRS["arret"] and iodir_a == 0x00

    while not fixed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fixed()


def test_min_off_time_protects_the_pump(harness: Harness) -> None:
    harness.start()
    harness.send("pump", "ON")
    time.sleep(0.6)
    state = harness.state("pump", lambda s: True)
    assert state["state"] == "off"  # the start counts as a change: 30 s off first
    harness.send("pump", '{"shed": true}', "shed")  # shedding is exempt, and it turns off
    harness.state("pump", lambda s: s["shed"] is True)


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
