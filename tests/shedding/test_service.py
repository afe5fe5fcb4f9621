"""Shedding service against a real mosquitto: meter states in, shed decisions and events out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from paho.mqtt import publish

from services.app.root_config import root_model, settings_for
from services.core.bus import Bus
from services.shedding.service import SheddingService
from tests.conftest import Broker, Watcher


class Harness:
    def __init__(self, tmp_path: Path, broker: Broker, prefix: str, w: Watcher) -> None:
        self.broker, self.prefix, self.w = broker, prefix, w
        self.config: Any = root_model().model_validate({
            "general": {"data_dir": str(tmp_path / "data")},
            "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
            "shedding": {"restore_delay_s": 1, "stale_after_s": 2, "loads": [
                {"relay": "heater", "priority": 1, "power_w": 2000},
                {"relay": "radiator", "priority": 2, "power_w": 1000},
            ]},
        })
        self.service: SheddingService | None = None

    def start(self) -> None:
        bus = Bus(self.config.mqtt, "shedding")
        self.service = SheddingService(settings_for("shedding", self.config), bus)
        bus.start()
        assert bus.wait_connected(10)
        self.service.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service.bus.stop()
            self.service = None

    def meter(self, va: int, **extra: Any) -> None:
        state = {"subscribed_power_kva": 9, "apparent_power_va": va, "overload": False,
                 "overload_phases": [], **extra}
        publish.single(f"{self.prefix}/teleinfo/linky/state", json.dumps(state), qos=1,
                       hostname=self.broker.host, port=self.broker.port)

    def availability(self, value: str) -> None:
        publish.single(f"{self.prefix}/teleinfo/linky/availability", value, qos=1,
                       retain=True, hostname=self.broker.host, port=self.broker.port)

    def shed(self, relay: str, value: bool, after: int = 0, timeout: float = 10) -> int:
        topic = f"{self.prefix}/relays/{relay}/shed"
        self.w.wait_for(lambda m: m.topic == topic and m.payload != b""
                        and json.loads(m.payload)["shed"] is value, timeout, after)
        return self.w.count()

    def event(self, kind: str, after: int = 0, timeout: float = 10) -> dict[str, Any]:
        msg = self.w.wait_for(lambda m: m.topic.endswith("/shedding/events")
                              and json.loads(m.payload)["type"] == kind, timeout, after)
        data: dict[str, Any] = json.loads(msg.payload)
        return data


def test_shed_event_and_restore(harness: Harness) -> None:
    harness.start()
    start = harness.shed("heater", False)  # every load's decision published at start
    harness.availability("online")
    harness.meter(8500)
    harness.shed("heater", True, after=start)
    event = harness.event("shed")
    assert (event["relay"], event["phase"], event["load_va"], event["limit_va"]) == (
        "heater", 1, 8500, 9000)
    assert "94%" in event["reason"]
    # (a state saying stale may come first: before the first reading there is no data)
    msg = harness.w.wait_for(lambda m: m.topic == f"{harness.prefix}/shedding/linky/state"
                             and json.loads(m.payload)["shed"] == ["heater"])
    assert json.loads(msg.payload)["stale"] is False
    mark = harness.w.count()
    time.sleep(1.1)
    harness.meter(2000)
    harness.shed("heater", False, after=mark)
    assert harness.event("restore", after=mark)["relay"] == "heater"


def test_stale_meter_holds_the_shed_and_says_so(harness: Harness) -> None:
    harness.start()
    harness.availability("online")
    harness.meter(8500)
    mark = harness.shed("heater", True)
    event = harness.event("stale", after=mark, timeout=10)
    assert event["held"] == ["heater"]
    harness.availability("offline")
    time.sleep(1.2)  # past the restore delay; data low but not trustworthy
    harness.meter(1000)  # a late message while the meter is offline
    time.sleep(0.5)
    topic = f"{harness.prefix}/relays/heater/shed"
    assert not [m for m in harness.w.messages[mark:]
                if m.topic == topic and not json.loads(m.payload)["shed"]]


def test_restart_keeps_what_was_shed(harness: Harness) -> None:
    harness.start()
    harness.availability("online")
    harness.meter(8500)
    harness.shed("heater", True)
    harness.stop()
    # The broker forgets the retained decision; the service's own file does not.
    publish.single(f"{harness.prefix}/relays/heater/shed", "", retain=True,
                   hostname=harness.broker.host, port=harness.broker.port)
    mark = harness.w.count()
    harness.start()
    harness.shed("heater", True, after=mark)
