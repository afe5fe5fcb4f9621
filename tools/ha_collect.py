"""Collect the discovery messages a running stack left retained on a broker, for
tools/ha_check.py: ``python tools/ha_collect.py HOST PORT OUT.json [DISCOVERY_PREFIX]``.

With ``enerbox sim stack --port 18991`` running, it waits until the count of components
has not changed for 30 s (every simulated device announced), then writes {topic: payload}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

QUIET_S = 30  # no new component for this long: every device has been announced
LIMIT_S = 180


def collect(host: str, port: int, prefix: str = "homeassistant") -> dict[str, Any]:
    """{discovery topic: payload} once no new component came for QUIET_S."""
    seen: dict[str, Any] = {}
    changed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:  # an empty one clears a device
            seen[msg.topic] = json.loads(msg.payload)
            changed.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect(host, port)
    client.subscribe(f"{prefix}/device/+/config", qos=1)
    client.loop_start()
    end = time.monotonic() + LIMIT_S
    try:
        while time.monotonic() < end:
            changed.clear()
            if not changed.wait(QUIET_S) and seen:
                break
    finally:
        client.loop_stop()
        client.disconnect()
    return seen


if __name__ == "__main__":
    host, port, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    found = collect(host, port, *sys.argv[4:5])
    out.write_text(json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(found)} discovery messages, "
          f"{sum(len(p['components']) for p in found.values())} components")
