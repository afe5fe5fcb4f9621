"""Junk on every topic the api and the whole stack read stops nothing: the api still serves
its state and a relay command is still answered (the whole `sim stack` is running)."""

from __future__ import annotations

import httpx
from paho.mqtt import publish

from tests.api.conftest import Stack, wait_until

HOSTILE = [b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe" * 50, b"x" * 300_000,
           b'{"type": "shed", "ts": NaN}', b"null", b'{"type": 1}']


def test_junk_on_every_topic_then_the_stack_still_obeys(stack: Stack) -> None:
    topics = ["enerbox/teleinfo/spoof/state", "enerbox/spoof/events", "enerbox/spoof/status",
              "enerbox/teleinfo/spoof/availability", "enerbox/relays/water-heater/set",
              "enerbox/relays/water-heater/shed", "enerbox/relays/water-heater/auto",
              "enerbox/shedding/status", "enerbox/shedding/linky/state",
              "enerbox/teleinfo/linky/availability"]
    for topic in topics:
        for payload in HOSTILE:
            publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=stack.mqtt_port)
    # Of all that junk only the one JSON object is a state (any object is; its fields are
    # typed by whoever reads them); nothing else reached the api's view.
    r = httpx.get(f"{stack.url}/api/state", timeout=5)
    assert r.status_code == 200
    spoofed = [d["state"] for d in r.json()["devices"] if d["device"] == "spoof"]
    assert all(s in (None, {"type": 1}) for s in spoofed), spoofed
    for mode in ("off", "auto"):
        r = httpx.post(f"{stack.url}/api/relays/water-heater", json={"mode": mode},
                       headers=stack.auth, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] is True
    wait_until(lambda: httpx.get(f"{stack.url}/api/health", timeout=2).status_code == 200)
