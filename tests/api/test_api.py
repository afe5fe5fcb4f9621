"""The REST API and WebSocket against the whole simulated stack and a real broker."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date

import httpx
import pytest
import websockets

from tests.api.conftest import Stack, wait_until


def test_state_shows_devices_relays_and_shedding(stack: Stack) -> None:
    state = httpx.get(f"{stack.url}/api/state").json()
    devices = {(d["service"], d["device"]): d for d in state["devices"]}
    linky = devices[("teleinfo", "linky")]
    assert linky["availability"] == "online" and linky["stale"] is False
    assert isinstance(linky["state"]["apparent_power_va"], int)
    assert state["services"]["teleinfo"] == "online"
    relays = {r["id"]: r for r in state["relays"]}
    assert relays["living"]["kind"] == "fil_pilote" and "eco" in relays["living"]["options"]
    wait_until(lambda: httpx.get(f"{stack.url}/api/relays").json()[0]["state"] is not None)
    one = httpx.get(f"{stack.url}/api/devices/teleinfo/linky").json()
    assert one["device"] == "linky"
    assert httpx.get(f"{stack.url}/api/devices/teleinfo/nope").status_code == 404


def test_relay_command_round_trips_through_mqtt(stack: Stack) -> None:
    r = httpx.post(f"{stack.url}/api/relays/bedroom", json={"order": "hors-gel", "for_s": 600},
                   headers=stack.auth, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] is True
    wait_until(lambda: relay_state(stack, "bedroom")["mode"] == "on", 10)
    relay = {"state": relay_state(stack, "bedroom")}
    if not relay["state"]["shed"]:
        assert relay["state"]["order"] == "hors-gel"
    assert relay["state"]["until"] is not None
    r = httpx.post(f"{stack.url}/api/relays/bedroom", json={"mode": "auto"}, headers=stack.auth,
                   timeout=10)
    assert r.status_code == 200


def relay_state(stack: Stack, relay: str) -> dict[str, object]:
    found = next(x for x in httpx.get(f"{stack.url}/api/relays").json() if x["id"] == relay)
    state: dict[str, object] = found["state"]
    return state


def test_bad_commands_say_why(stack: Stack) -> None:
    def post(relay: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{stack.url}/api/relays/{relay}", json=body, headers=stack.auth,
                          timeout=10)

    r = post("water-heater", {"order": "eco"})
    assert r.status_code == 422 and "fil pilote" in r.json()["detail"]
    r = post("living", {"order": "sauna"})
    assert r.status_code == 422
    r = post("living", {"mode": "auto", "for_s": 60})
    assert r.status_code == 422 and "for_s" in json.dumps(r.json())
    r = post("garage", {"mode": "on"})
    assert r.status_code == 404 and "garage" in r.json()["detail"]


def test_writes_need_the_token(stack: Stack) -> None:
    url = f"{stack.url}/api/relays/living"
    assert httpx.post(url, json={"mode": "on"}, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(url, json={"mode": "on"}, headers=wrong, timeout=10).status_code == 401
    assert httpx.get(f"{stack.url}/api/state").status_code == 200  # reads are open here


def test_request_size_is_bounded(stack: Stack) -> None:
    r = httpx.post(f"{stack.url}/api/relays/living", content=b"{" + b" " * 20000 + b"}",
                   headers={**stack.auth, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_health_and_events(stack: Stack) -> None:
    health = httpx.get(f"{stack.url}/api/health").json()
    assert health["broker_connected"] is True
    assert health["services"]["relays"] == "online"
    httpx.post(f"{stack.url}/api/relays/living", json={"mode": "on"}, headers=stack.auth,
               timeout=10)
    events = httpx.get(f"{stack.url}/api/events", params={"limit": 200}).json()
    assert any(e["type"] == "command" and e["relay"] == "living" for e in events)


@pytest.mark.after_first_minute
def test_history_and_daily_energy(stack: Stack) -> None:
    now = time.time()
    params: dict[str, str | float] = {
        "service": "teleinfo", "device": "linky", "field": "apparent_power_va",
        "start": now - 3600, "end": now + 60, "step": 60,
    }

    def has_points() -> bool:
        r = httpx.get(f"{stack.url}/api/history", params=params)
        return r.status_code == 200 and any(p[2] is not None for p in r.json()["points"])

    wait_until(has_points, 150)  # the minute must close before it is written
    too_big = {**params, "start": now - 86400 * 400}
    r = httpx.get(f"{stack.url}/api/history", params=too_big)
    assert r.status_code == 400 and "range too large" in r.json()["detail"]
    today = date.today().isoformat()
    r = httpx.get(f"{stack.url}/api/energy/daily", params={"start": today, "end": today})
    assert r.status_code == 200 and isinstance(r.json(), list)


def test_websocket_snapshot_then_changes(stack: Stack) -> None:
    async def run() -> tuple[dict[str, object], list[dict[str, object]]]:
        uri = stack.url.replace("http://", "ws://") + "/api/ws"
        async with websockets.connect(uri) as ws:
            first = json.loads(await ws.recv())
            later = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(5)]
        return first, later

    first, later = asyncio.run(run())
    assert first["type"] == "snapshot" and "devices" in first["state"]  # type: ignore[operator]
    assert {m["type"] for m in later} <= {"state", "availability", "relay", "status", "event",
                                          "shedding"}
