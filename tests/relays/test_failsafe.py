"""When shedding is gone, relays put every load it could shed in its safe state after a
grace period, whatever its mode, and normal rules resume when it is back (DESIGN.md
"Control"; issue 11, item 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped, unused-ignore]
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import Broker, Watcher
from tests.relays.harness import PAIRS, Clock, Harness, Proc, make_config, zone


@pytest.fixture
def fast(tmp_path: Path, broker: Broker, prefix: str,
         watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    """A harness whose fail-safe grace period is 1 s."""
    h = Harness(make_config(tmp_path, broker, prefix, shedding_grace_s=1), Clock(),
                watch(f"{prefix}/#"), broker, prefix)
    yield h
    h.stop()


def iso(seconds_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def publish_v5(h: Harness, topic: str, payload: str, retain: bool = True,
               expiry_s: int | None = None) -> None:
    """A message with an MQTT v5 message expiry, as the services publish them."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(h.broker.host, h.broker.port)
    client.loop_start()
    props = None
    if expiry_s is not None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = expiry_s
    client.publish(topic, payload, qos=1, retain=retain, properties=props).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def shedding_alive(h: Harness) -> None:
    """Shedding's status online and a fresh heartbeat (a long interval: it stays fresh)."""
    h.publish(f"{h.prefix}/shedding/status", "online", retain=True)
    h.publish(f"{h.prefix}/shedding/heartbeat",
              json.dumps({"ts": iso(), "interval_s": 60}), retain=True)


def test_kill_9_of_shedding_puts_its_loads_in_their_safe_state(
    fast: Harness, tmp_path: Path, procs: list[Proc], mock_gpio: MockFactory,
) -> None:
    h = fast

    def shedding() -> Proc:
        proc = Proc(["-m", "tests.relays.fake_shedding", h.broker.host, str(h.broker.port),
                     h.prefix, "1", "water-heater", "living"], tmp_path / "shedding.log")
        procs.append(proc.start())
        return proc

    shed = shedding()
    h.w.payload(f"{h.prefix}/shedding/status", b"online", timeout=30)
    h.w.topic(f"{h.prefix}/shedding/heartbeat", timeout=30)
    h.start()
    # Loads on: a user's forced-on water heater and a radiator on Confort.
    assert h.command("water-heater", "on").applied
    assert h.command("living", '{"order": "confort"}').applied
    h.state("water-heater", lambda s: s["state"] == "on" and s["source"] == "user")
    h.state("living", lambda s: s["order"] == "confort" and s["source"] == "user")
    count = h.w.count()
    shed.kill9()
    killed = time.monotonic()
    took: dict[str, float] = {}
    for relay, key, safe in (("water-heater", "state", "off"), ("living", "order", "arret")):
        state = h.state(relay, lambda s: s["source"] == "failsafe", timeout=30, after=count)
        took[relay] = time.monotonic() - killed
        assert state[key] == safe and state["shed_reason"] == "shedding offline"
        assert state["mode"] == "on"  # the user's order is kept for later
    print("\nkill -9 of shedding -> safe state (grace 1 s): "
          + ", ".join(f"{r} {t:.2f} s" for r, t in took.items()))
    event = h.event("shedding_offline", after=count)
    assert event["relays"] == ["living", "water-heater"] and event["reason"] == "shedding offline"
    assert zone(tmp_path, 0) == PAIRS["arret"]
    assert mock_gpio.pin(17).state is True  # active low: off
    assert zone(tmp_path, 2) == PAIRS["eco"]  # bedroom is not under shedding: untouched
    # Shedding back and fresh: the normal rules resume (the user's orders apply again).
    count = h.w.count()
    shedding()
    h.event("shedding_back", timeout=30, after=count)
    h.state("water-heater", lambda s: s["state"] == "on" and s["source"] == "user", after=count)
    h.state("living", lambda s: s["order"] == "confort" and s["source"] == "user", after=count)


FAULTS: dict[str, tuple[str, Callable[[Harness], None], Callable[[Harness], None]]] = {
    # name: (reason, how it goes, how it comes back)
    "status-offline": (
        "shedding offline",
        lambda h: h.publish(f"{h.prefix}/shedding/status", "offline", retain=True),
        lambda h: h.publish(f"{h.prefix}/shedding/status", "online", retain=True),
    ),
    "heartbeat-lost": (
        "shedding heartbeat lost",
        lambda h: h.publish(f"{h.prefix}/shedding/heartbeat",
                            json.dumps({"ts": iso(100), "interval_s": 1}), retain=True),
        shedding_alive,
    ),
    "meter-stale": (
        "shedding data stale (meter linky)",
        lambda h: h.publish(f"{h.prefix}/shedding/linky/state",
                            json.dumps({"stale": True, "ts": iso()}), retain=True),
        lambda h: h.publish(f"{h.prefix}/shedding/linky/state",
                            json.dumps({"stale": False, "ts": iso()}), retain=True),
    ),
    "state-expired": (
        "shedding state expired",
        lambda h: publish_v5(h, f"{h.prefix}/shedding/linky/state",
                             json.dumps({"stale": False, "ts": iso()}), expiry_s=1),
        lambda h: publish_v5(h, f"{h.prefix}/shedding/linky/state",
                             json.dumps({"stale": False, "ts": iso()}), expiry_s=600),
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_shedding_gone_then_back(fast: Harness, fault: str) -> None:
    reason, go, back = FAULTS[fault]
    h = fast
    shedding_alive(h)
    h.start()
    h.send("water-heater", '{"shed": false}', "shed")  # now under shedding
    assert h.command("water-heater", "on").applied
    h.state("water-heater", lambda s: s["state"] == "on" and s["source"] == "user")
    count = h.w.count()
    go(h)
    state = h.state("water-heater", lambda s: s["source"] == "failsafe", after=count)
    assert state["state"] == "off" and state["shed_reason"] == reason
    assert h.event("shedding_offline", after=count)["reason"] == reason
    reply = h.command("water-heater", '{"mode": "on", "for_s": 3600}')
    assert reply.accepted and reply.applied is False  # held: applied when restored
    count = h.w.count()
    back(h)
    h.event("shedding_back", after=count)
    h.state("water-heater", lambda s: s["state"] == "on" and s["source"] == "user",
            after=count)


def test_no_news_of_shedding_since_start(fast: Harness) -> None:
    h = fast
    h.start()
    h.send("pump", '{"shed": false}', "shed")  # a flag, but no status nor heartbeat ever
    state = h.state("pump", lambda s: s["source"] == "failsafe")
    assert state["shed_reason"] == "no news of shedding since start"
    h.state("water-heater", lambda s: s["source"] == "default")  # not under shedding
    count = h.w.count()
    shedding_alive(h)
    h.event("shedding_back", after=count)
    h.state("pump", lambda s: s["source"] == "default", after=count)


def test_under_shedding_is_remembered_across_restarts(fast: Harness) -> None:
    h = fast
    shedding_alive(h)
    h.start()
    h.send("living", '{"shed": false}', "shed")
    h.state("living", lambda s: s["source"] == "default")
    assert h.command("living", "on").applied
    h.stop()  # persisted: living is under shedding
    h.publish(f"{h.prefix}/shedding/status", "offline", retain=True)
    count = h.w.count()
    h.start()
    state = h.state("living", lambda s: s["source"] == "failsafe", after=count)
    assert state["order"] == "arret" and state["mode"] == "on"
