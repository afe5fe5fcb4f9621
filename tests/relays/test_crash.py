"""After a kill -9 of relays, its status says offline at once (last will) and its retained
state, which says readback_ok, is gone once its short message expiry runs out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import Broker, Watcher
from tests.relays.harness import Proc, config_data

EXPIRY_S = 3


def retained(broker: Broker, topic_filter: str, marker: str) -> dict[str, bytes]:
    """What a fresh subscriber is given as retained under the filter: everything that arrives
    before our own marker message, published once the subscription is in place."""
    got: dict[str, bytes] = {}
    done = threading.Event()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            got[msg.topic] = bytes(msg.payload)

    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe([(topic_filter, 1), (marker, 1)])
        assert subscribed.wait(5)
        client.publish(marker, b"x", qos=1)
        assert done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_kill_9_leaves_no_readback_ok_behind(tmp_path: Path, broker: Broker, prefix: str,
                                             watch: Callable[[str], Watcher],
                                             procs: list[Proc]) -> None:
    data = config_data(tmp_path, broker, prefix, state_expiry_s=EXPIRY_S)
    data["relays"]["boards"] = [b for b in data["relays"]["boards"] if b["id"] != "gpio"]
    data["relays"]["relays"] = [r for r in data["relays"]["relays"] if r["board"] != "gpio"]
    data["homeassistant"] = {"discovery": False}
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    w = watch(f"{prefix}/#")
    relays = Proc(["-m", "services.relays"], tmp_path / "relays.log",
                  {"ENERBOX_CONFIG": str(path)})
    procs.append(relays.start())
    state_topic = f"{prefix}/relays/living/state"
    msg = w.wait_for(lambda m: m.topic == state_topic and m.retain is False
                     and json.loads(m.payload)["readback_ok"] is True, timeout=30)
    assert msg.expiry is not None and 0 < msg.expiry <= EXPIRY_S
    # Re-published before it runs out: still there after more than one expiry.
    count = w.count()
    w.wait_for(lambda m: m.topic == state_topic, timeout=EXPIRY_S * 2, after=count)
    relays.kill9()
    killed = time.monotonic()
    now = retained(broker, f"{prefix}/relays/#", f"{prefix}/test/marker-0")
    assert now[f"{prefix}/relays/status"] == b"offline"  # the last will, at once
    deadline = killed + EXPIRY_S + 30
    polls = 0
    while state_topic in now and time.monotonic() < deadline:
        polls += 1
        time.sleep(0.2)
        now = retained(broker, f"{prefix}/relays/#", f"{prefix}/test/marker-{polls}")
    gone = time.monotonic() - killed
    print(f"\nkill -9 of relays: retained state gone after {gone:.1f} s (expiry {EXPIRY_S} s)")
    assert state_topic not in now
    assert "Traceback" not in relays.log, relays.log
