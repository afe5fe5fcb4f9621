"""The automation service against a real mosquitto: device states in, wishes, states and
events out; hostile payloads, the enabled switch, a restart mid-run. The contract pieces it
added (AutomationSwitch, the automation/<relay>/set topic) are checked here too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt import publish

from services.app.root_config import root_model, settings_for
from services.automation.discovery import STATUS_WORDS, STATUSES, automation_discovery
from services.automation.service import AutomationService, wish_expiry_s
from services.core.bus import Bus
from services.core.contract import AutomationSwitch, Rejection, TopicKind, Topics
from tests.conftest import Broker, Message, Watcher

RELAY = "water-heater"


def config_data(tmp_path: Path, broker: Broker, prefix: str) -> dict[str, Any]:
    """A water heater routed on the Linky's export, ticking twice a second."""
    return {
        "general": {"data_dir": str(tmp_path / "data")},
        # States expire in 6 s, so an unchanged one is republished every 2 s.
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix,
                 "state_expiry_s": 6},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "automation": {
            "tick_s": 0.5,
            "signals": {"grid": {"source": "teleinfo/linky", "field": "net_power_va",
                                 "stale_after_s": 60}},
            "surplus": {"grid": "grid", "smoothing_s": 0, "reserve_w": 50, "step_s": 0},
            "loads": [{"relay": RELAY, "power_w": 2000,
                       "surplus": {"margin_w": 100, "on_after_s": 0, "off_import_w": 200,
                                   "off_after_s": 600}}],
        },
    }


class Harness:
    """An AutomationService in this process and the means to poke at it."""

    def __init__(self, tmp_path: Path, broker: Broker, prefix: str, w: Watcher) -> None:
        self.broker, self.prefix, self.w = broker, prefix, w
        self.config: Any = root_model().model_validate(config_data(tmp_path, broker, prefix))
        self.service: AutomationService | None = None
        self.auto_topic = f"{prefix}/relays/{RELAY}/auto"
        self.state_topic = f"{prefix}/automation/{RELAY}/state"

    def start(self) -> AutomationService:
        bus = Bus(self.config.mqtt, "automation")
        self.service = AutomationService(settings_for("automation", self.config), bus)
        bus.start()
        assert bus.wait_connected(10)
        self.service.start()
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service.bus.stop()
            self.service = None

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        publish.single(f"{self.prefix}/{topic}", payload, qos=1, retain=retain,
                       hostname=self.broker.host, port=self.broker.port)

    def home(self, net_power_va: float, relay_output: str = "off",
             source: str = "default") -> None:
        """The meter and the relay, as teleinfo and relays publish them (retained)."""
        now = datetime.now(UTC).isoformat()
        self.publish("teleinfo/linky/state", json.dumps(
            {"net_power_va": net_power_va, "apparent_power_va": 100, "ts": now}), retain=True)
        self.publish(f"relays/{RELAY}/state", json.dumps(
            {"state": relay_output, "mode": "auto", "source": source, "ts": now}), retain=True)

    def wish(self, pred: Callable[[Message], bool], after: int = 0,
             timeout: float = 15) -> Message:
        return self.w.wait_for(lambda m: m.topic == self.auto_topic and pred(m), timeout, after)

    def state(self, pred: Callable[[dict[str, Any]], bool], after: int = 0,
              timeout: float = 15) -> dict[str, Any]:
        msg = self.w.wait_for(lambda m: m.topic == self.state_topic and bool(m.payload)
                              and pred(json.loads(m.payload)), timeout, after)
        data: dict[str, Any] = json.loads(msg.payload)
        return data

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        with self.w.lock:
            msgs = self.w.messages[after:]
        return [json.loads(m.payload) for m in msgs
                if m.topic == f"{self.prefix}/automation/events"]


def wish_is(value: str) -> Callable[[Message], bool]:
    return lambda m: bool(m.payload) and json.loads(m.payload).get("state") == value


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(tmp_path, broker, prefix, watch(f"{prefix}/#"))
    yield h
    h.stop()


# -- contract -------------------------------------------------------------------------------

@pytest.mark.parametrize(("payload", "enabled"), [
    (b"ON", True), (b"off", False), (b" On\n", True), (b'{"enabled": true}', True),
    (b'{"enabled": false}', False)])
def test_switch_decodes(payload: bytes, enabled: bool) -> None:
    assert AutomationSwitch.decode(payload) == AutomationSwitch(enabled)
    assert AutomationSwitch.decode(AutomationSwitch(enabled).encode()) == AutomationSwitch(
        enabled)


@pytest.mark.parametrize("payload", [
    b"", b"yes", b"1", b'{"enabled": "true"}', b'{"enabled": 1}', b'{"enabled": true, "x": 1}',
    b"[" * 5000, b"\xff\xfe", b"ON" * 1000, b'{"enabled": NaN}', b"[true]"])
def test_switch_rejects(payload: bytes) -> None:
    assert isinstance(AutomationSwitch.decode(payload), Rejection)


def test_switch_topic_is_built_and_parsed() -> None:
    t = Topics("enerbox/site-42", "api")
    assert t.automation_set("water-heater") == "enerbox/site-42/automation/water-heater/set"
    parsed = t.parse(t.automation_set("water-heater"))
    assert parsed is not None and parsed.kind == TopicKind.AUTOMATION_SET
    assert parsed.device == "water-heater"
    assert t.parse(t.automation_state("water-heater")).kind == TopicKind.STATE  # type: ignore[union-attr]
    assert t.parse(t.relay_set("water-heater")).kind == TopicKind.RELAY_SET  # type: ignore[union-attr]


def test_wish_expiry_is_three_ticks_at_least_30_s() -> None:
    assert wish_expiry_s(0.5) == 30
    assert wish_expiry_s(5) == 30
    assert wish_expiry_s(20) == 60
    assert wish_expiry_s(10.2) == 31


def test_discovery_has_the_load_entities() -> None:
    t = Topics("enerbox", "automation")
    topic, payload = automation_discovery(t, RELAY, "homeassistant")
    assert topic == "homeassistant/device/enerbox_automation_water_heater/config"
    comps = payload["components"]
    platforms = sorted(c["platform"] for c in comps.values())
    # The load's four sensors and switch, and the service's status (binary, diagnostic).
    assert platforms == ["binary_sensor", "sensor", "sensor", "sensor", "sensor", "switch"]
    switch = next(c for c in comps.values() if c["platform"] == "switch")
    assert switch["command_topic"] == "enerbox/automation/water-heater/set"
    status = next(c for c in comps.values() if c.get("device_class") == "enum")
    assert status["options"] == [STATUS_WORDS[s] for s in STATUSES]  # in words
    assert payload["availability"] == [{"topic": "enerbox/automation/status"}]


# -- the service on a real broker --------------------------------------------------------------

def test_export_switches_the_heater_on(harness: Harness) -> None:
    harness.home(-3000)
    harness.start()
    msg = harness.wish(wish_is("on"))
    assert msg.retain is False or msg.retain is True  # live delivery to an existing subscriber
    assert msg.expiry is not None and 0 < msg.expiry <= 30
    state = harness.state(lambda s: s["status"] == "surplus")
    assert state["wish"] == "on" and state["enabled"] is True and state["reason"]
    assert {"hold", "on_today_s", "remaining_s", "min_on_s", "by", "latest_start",
            "starts_today", "ts"} <= set(state)
    event = harness.w.wait_for(lambda m: m.topic.endswith("/automation/events")
                               and json.loads(m.payload)["type"] == "decision")
    data = json.loads(event.payload)
    assert (data["relay"], data["wish"], data["status"]) == (RELAY, "on", "surplus")
    # HA discovery, retained, with the switch on its set topic.
    disc = harness.w.wait_for(lambda m: m.topic.startswith(f"{harness.prefix}/ha/device/"))
    assert f"{harness.prefix}/automation/{RELAY}/set" in disc.payload.decode()
    # The wish is re-sent every tick (its expiry is its freshness).
    count = harness.w.count()
    harness.wish(wish_is("on"), after=count)
    assert (Path(harness.config.general.data_dir) / "automation.json").exists()


HOSTILE: list[bytes] = [
    b"", b"\x00\xff garbage", b"x" * 200_000, b"[" * 100_000, b"{" * 50 + b"}" * 50,
    b'{"net_power_va": [1, 2], "ts": "yesterday"}', b'{"net_power_va": NaN}', b"[1, 2, 3]",
    b'{"state": 5, "source": ["auto"]}', b'{"order": "furnace"}', b'{"enabled": "yes"}',
    b"null", b"12", b'"online"', b"maybe",
]


def test_hostile_payloads_change_nothing(harness: Harness) -> None:
    harness.home(-3000, "on", "auto")
    service = harness.start()
    harness.w.wait_for(lambda m: m.topic.endswith("/automation/events")
                       and json.loads(m.payload)["status"] == "surplus")  # after its state
    before = harness.w.count()
    topics = ["teleinfo/linky/state", "teleinfo/linky/availability", "teleinfo/status",
              f"relays/{RELAY}/state", "relays/status", f"automation/{RELAY}/set",
              "automation/nowhere/set", "ha/status"]
    for topic in topics:
        for payload in HOSTILE:
            if payload == b"" and topic.endswith(("status", "availability")):
                continue  # an empty status is a cleared one: offline, by the contract
            harness.publish(topic, payload)
    # Rejections are reported; the service still ticks and still wants what it wanted.
    harness.w.wait_for(lambda m: m.topic.endswith("/automation/events")
                       and json.loads(m.payload)["type"] == "rejected", after=before)
    mark = harness.w.count()
    harness.wish(wish_is("on"), after=mark)
    harness.wish(wish_is("on"), after=harness.w.count())
    assert service.healthy() and service.thread.is_alive()
    with harness.w.lock:
        later = [m for m in harness.w.messages[before:] if m.topic == harness.auto_topic]
    assert later and all(json.loads(m.payload)["state"] == "on" for m in later)
    assert not [e for e in harness.events(before) if e["type"] == "decision"]
    # And it still obeys a valid switch.
    harness.publish(f"automation/{RELAY}/set", "OFF")
    harness.state(lambda s: s["status"] == "disabled", after=mark)


def test_switch_off_clears_the_wish_and_on_brings_it_back(harness: Harness) -> None:
    harness.home(-3000)
    harness.start()
    harness.wish(wish_is("on"))
    start = harness.w.count()
    harness.publish(f"automation/{RELAY}/set", "OFF")
    harness.wish(lambda m: m.payload == b"", after=start)  # cleared, retained
    state = harness.state(lambda s: s["status"] == "disabled", after=start)
    assert state["enabled"] is False and state["wish"] is None
    # Once: no wish while disabled, however many ticks pass.
    ticks = harness.w.count()
    harness.state(lambda s: True, after=ticks, timeout=20)  # a later state (unchanged: ≤2 s)
    with harness.w.lock:
        wishes = [m for m in harness.w.messages[start:] if m.topic == harness.auto_topic]
    assert [m.payload for m in wishes] == [b""]
    harness.publish(f"automation/{RELAY}/set", '{"enabled": true}')
    back = harness.w.count()
    harness.wish(wish_is("on"), after=back)
    state = harness.state(lambda s: s["enabled"] is True, after=back)
    assert state["status"] == "surplus"


def test_restart_mid_run_publishes_no_wish_change(harness: Harness) -> None:
    harness.home(-3000)
    harness.start()
    harness.wish(wish_is("on"))
    # The relay follows the wish, as the relays service would report it.
    harness.home(-1000, "on", "auto")
    harness.state(lambda s: s["status"] == "surplus" and s["starts_today"] == 1)
    harness.publish(f"automation/{RELAY}/set", "ON")  # a no-op: already enabled
    harness.stop()
    restart = harness.w.count()
    harness.start()
    # Several ticks after the restart: every wish says on, no decision event.
    for _ in range(4):
        harness.wish(lambda m: True, after=harness.w.count())
    with harness.w.lock:
        wishes = [m for m in harness.w.messages[restart:] if m.topic == harness.auto_topic]
    assert wishes and all(wish_is("on")(m) for m in wishes), [m.payload for m in wishes]
    assert not [e for e in harness.events(restart) if e["type"] == "decision"]
    state = harness.state(lambda s: True, after=restart)
    assert state["status"] == "surplus"


# The events say why in the automation's language (`reason`, what the page shows) and in
# English (`reason_en`, for logs and an English page), as its state does.
def test_decision_event_reason_in_french_and_english(harness: Harness) -> None:
    harness.home(-3000)  # exporting: the heater goes on, a decision event says why
    harness.start()
    state = harness.state(lambda s: s["status"] == "surplus")
    event = harness.w.wait_for(lambda m: m.topic.endswith("/automation/events")
                               and json.loads(m.payload)["type"] == "decision")
    data = json.loads(event.payload)
    assert data["relay"] == RELAY
    assert data["reason"] == state["reason"]  # the language's words (fr by default)
    assert data["reason_en"].startswith("surplus: ") and data["reason"] != data["reason_en"]
