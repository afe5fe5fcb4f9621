"""The automation on the API: its per-relay state on /api/relays and the WebSocket, hostile
states ignored, and the "automation enabled" switch (the api alone, on a real broker)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import websockets
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.api.alone import Api, run_api
from tests.conftest import Broker, Watcher, wait_until

TOKEN = "automation-test-token-0123"
SECTIONS: dict[str, Any] = {
    "relays": {
        "boards": [{"id": "gpio", "driver": "gpio"}],
        "relays": [{"id": "water-heater", "name": "Chauffe-eau", "board": "gpio", "channel": 17},
                   {"id": "pump", "name": "Pompe", "board": "gpio", "channel": 27}],
    },
    "automation": {"loads": [{"relay": "water-heater"}]},
}
STATE: dict[str, Any] = {
    "wish": "on", "status": "catch_up", "hold": None,
    "reason": "rattrapage heures creuses : 1 h 20 restantes avant 06:00",
    "on_today_s": 6000, "remaining_s": 4800, "min_on_s": 10800, "by": "06:00",
    "latest_start": "2026-12-02T03:20:00+01:00", "starts_today": 2, "enabled": True,
    "ts": "2026-12-02T02:00:00.000Z",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def client(broker: Broker) -> Iterator[mqtt.Client]:
    """A connected MQTT v5 client."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        yield c
    finally:
        c.disconnect()
        c.loop_stop()


def put(broker: Broker, topic: str, payload: bytes | str, expiry_s: int | None = None) -> None:
    """Publish a retained message (with a message expiry when given) and wait for the ack."""
    props = None
    if expiry_s is not None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = expiry_s
    with client(broker) as c:
        c.publish(topic, payload, qos=1, retain=True, properties=props).wait_for_publish(5)


@pytest.fixture
def api(broker: Broker, prefix: str, tmp_path: Path) -> Iterator[Api]:
    """The api alone with two relays, the water heater a load of the automation; a
    retained automation state for it is there before the api starts."""
    put(broker, f"{prefix}/automation/water-heater/state", json.dumps(STATE))
    with run_api(tmp_path, broker, prefix, {"token": TOKEN, "command_timeout_s": 2},
                 sections=SECTIONS) as running:
        wait_until(lambda: automation(running, "water-heater") is not None, 15,
                   "the retained automation state never reached /api/relays")
        yield running


def relay(api: Api, relay_id: str) -> dict[str, Any]:
    """One relay as /api/relays shows it."""
    found: dict[str, Any] = next(r for r in httpx.get(f"{api.url}/api/relays", timeout=5).json()
                                 if r["id"] == relay_id)
    return found


def automation(api: Api, relay_id: str) -> dict[str, Any] | None:
    """The relay's automation object."""
    found: dict[str, Any] | None = relay(api, relay_id)["automation"]
    return found


def test_retained_automation_state_appears_on_relays(api: Api) -> None:
    auto = automation(api, "water-heater")
    assert auto is not None
    assert auto["status"] == "catch_up" and auto["enabled"] is True and auto["hold"] is None
    assert auto["reason"] == STATE["reason"]
    assert (auto["on_today_s"], auto["min_on_s"], auto["remaining_s"]) == (6000, 10800, 4800)
    assert auto["latest_start"] == STATE["latest_start"] and auto["by"] == "06:00"
    assert auto["starts_today"] == 2 and auto["stale"] is False
    assert relay(api, "water-heater")["automated"] is True
    pump = relay(api, "pump")  # no automation drives it
    assert pump["automation"] is None and pump["automated"] is False
    state = httpx.get(f"{api.url}/api/state", timeout=5).json()
    assert not any(d["service"] == "automation" for d in state["devices"])  # not a device


def test_stale_when_the_message_expired_or_the_automation_is_offline(
        api: Api, broker: Broker, prefix: str) -> None:
    topic = f"{prefix}/automation/water-heater/state"
    put(broker, f"{prefix}/automation/status", "offline")
    wait_until(lambda: automation(api, "water-heater")["stale"] is True, 10,  # type: ignore[index]
               "automation offline, yet its state is not stale")
    put(broker, f"{prefix}/automation/status", "online")
    wait_until(lambda: automation(api, "water-heater")["stale"] is False, 10,  # type: ignore[index]
               "automation back online, yet its state is still stale")
    put(broker, topic, json.dumps({**STATE, "status": "surplus"}), expiry_s=1)
    wait_until(lambda: automation(api, "water-heater")["status"] == "surplus", 10)  # type: ignore[index]
    wait_until(lambda: automation(api, "water-heater")["stale"] is True, 10,  # type: ignore[index]
               "the state's message expiry ran out, yet it is not stale")
    put(broker, topic, b"")  # cleared: the automation no longer drives it
    wait_until(lambda: automation(api, "water-heater") is None, 10)


HOSTILE = [b"[" * 100_000, b"x" * 300_000, b"\xff\xfe" * 50, b"null", b'{"status": 5}',
           b'{"status": "sauna"}', b'{"a":' * 50_000, b'{"status": "idle", "ts": NaN}']


def test_hostile_automation_states_are_ignored(api: Api, broker: Broker, prefix: str) -> None:
    topic = f"{prefix}/automation/water-heater/state"
    for payload in HOSTILE:
        put(broker, topic, payload)
    # Then a state with a known status and every other field mistyped: each reads as absent.
    wrong = {"status": "blocked", "enabled": "yes", "hold": "forever", "reason": 123,
             "on_today_s": "1h", "min_on_s": -5, "remaining_s": 1e300, "latest_start": 7,
             "by": "25:99", "starts_today": True, "ts": []}
    put(broker, topic, json.dumps(wrong))
    wait_until(lambda: automation(api, "water-heater")["status"] == "blocked", 10)  # type: ignore[index]
    auto = automation(api, "water-heater")
    assert auto is not None
    assert {k for k, v in auto.items() if v is not None} == {"status", "stale"}
    # Nothing before it got in: the last good state stood until this one.
    assert relay(api, "water-heater")["state"] is None  # the relay view itself is intact
    assert httpx.get(f"{api.url}/api/state", timeout=5).status_code == 200
    put(broker, topic, json.dumps(STATE))
    wait_until(lambda: automation(api, "water-heater")["status"] == "catch_up", 10)  # type: ignore[index]


def ws_messages(api: Api, action: Callable[[], None], want: Callable[[dict[str, Any]], bool],
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The WebSocket's snapshot, then the first message ``want`` accepts after ``action``."""
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(api.url.replace("http://", "ws://") + "/api/ws") as ws:
            first = json.loads(await ws.recv())
            await asyncio.get_running_loop().run_in_executor(None, action)
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if want(message):
                    return first, message

    return asyncio.run(run())


def test_websocket_carries_the_automation(api: Api, broker: Broker, prefix: str) -> None:
    def changes() -> None:
        # A state for a relay this box does not have, and a relays state for one: neither
        # may break the stream that follows.
        put(broker, f"{prefix}/relays/spoof/state", json.dumps({"state": "on"}))
        put(broker, f"{prefix}/automation/spoof/state", json.dumps(STATE))
        put(broker, f"{prefix}/automation/water-heater/state",
            json.dumps({**STATE, "status": "surplus", "reason": "surplus solaire : 2,4 kW"}))

    def surplus(m: dict[str, Any]) -> bool:
        return (m.get("type") == "relay" and m["relay"]["id"] == "water-heater"
                and (m["relay"]["automation"] or {}).get("status") == "surplus")

    first, later = ws_messages(api, changes, surplus)
    heater = next(r for r in first["state"]["relays"] if r["id"] == "water-heater")
    assert heater["automation"]["status"] == "catch_up"
    assert later["relay"]["automation"]["reason"] == "surplus solaire : 2,4 kW"


def test_switch_needs_the_token_and_publishes(api: Api, watch: Callable[[str], Watcher],
                                             prefix: str) -> None:
    url = f"{api.url}/api/relays/water-heater/automation"
    switches = watch(f"{prefix}/automation/+/set")
    assert httpx.post(url, json={"enabled": False}, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(url, json={"enabled": False}, headers=wrong, timeout=10).status_code == 401
    for body in ({"enabled": "no"}, {"enabled": 0}, {}, {"enabled": False, "x": 1}):
        assert httpx.post(url, json=body, headers=AUTH, timeout=10).status_code == 422, body
    r = httpx.post(f"{api.url}/api/relays/pump/automation", json={"enabled": False},
                   headers=AUTH, timeout=10)
    assert r.status_code == 409 and "pump" in r.json()["detail"]
    r = httpx.post(f"{api.url}/api/relays/garage/automation", json={"enabled": False},
                   headers=AUTH, timeout=10)
    assert r.status_code == 404
    assert switches.count() == 0  # nothing refused was published
    # No automation answers here: the switch is sent, not confirmed.
    r = httpx.post(url, json={"enabled": False}, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["sent"] is True and r.json()["applied"] is False
    seen = switches.topic(f"{prefix}/automation/water-heater/set")
    assert seen.payload == b"OFF" and not seen.retain


def test_switch_is_applied_when_the_automation_confirms(api: Api, broker: Broker,
                                                       prefix: str) -> None:
    state_topic = f"{prefix}/automation/water-heater/state"

    def obey(c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        enabled = msg.payload == b"ON"
        status = "catch_up" if enabled else "disabled"
        c.publish(state_topic, json.dumps({**STATE, "enabled": enabled, "status": status}),
                  qos=1, retain=True)

    subscribed = threading.Event()
    with client(broker) as automation_service:  # stands in for the automation service
        automation_service.on_message = obey
        automation_service.on_subscribe = lambda *_a: subscribed.set()
        automation_service.subscribe(f"{prefix}/automation/+/set", qos=1)
        assert subscribed.wait(5)
        url = f"{api.url}/api/relays/water-heater/automation"
        r = httpx.post(url, json={"enabled": False}, headers=AUTH, timeout=10)
        assert r.status_code == 200 and r.json()["applied"] is True
        assert r.json()["relay"]["automation"]["status"] == "disabled"
        r = httpx.post(url, json={"enabled": True}, headers=AUTH, timeout=10)
        assert r.status_code == 200 and r.json()["applied"] is True
        assert r.json()["relay"]["automation"]["enabled"] is True
