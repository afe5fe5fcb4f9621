"""The simulated Linky follows the relays over a real mosquitto (services.sim.follow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from services.core.contract import Topics
from services.sim.follow import DEFAULT_RELAY_W, RelayFollower, draws_power, relay_powers
from services.sim.tic import TicMeterSim
from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, Mode
from tests.conftest import ROOT, Broker, wait_until
from tests.sim.test_home import HOME, WALL, t_at

POWERS = {"water-heater": 3000.0, "living": 1500.0}


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def relay_state(client: mqtt.Client, prefix: str, relay: str, **fields: object) -> None:
    """Publish a relay's retained state as the relays service does."""
    topic = Topics(prefix, "relays").relay_state(relay)
    payload = {"mode": "auto", "source": "auto", "ts": "2026-07-01T10:00:00Z", **fields}
    client.publish(topic, json.dumps(payload), qos=1, retain=True).wait_for_publish(5)


def net_power(sim: TicMeterSim, t: float, follower: RelayFollower) -> int:
    decoder = Decoder(sim.mode)
    (frame,) = list(decoder.feed(sim.frame_at(t, WALL, follower.steered_va())))
    value = normalize(frame)["net_power_va"]
    assert isinstance(value, int)
    return value


def test_a_relay_switched_on_shows_on_the_next_frames(
    broker: Broker, prefix: str, publisher: mqtt.Client,
) -> None:
    sim = TicMeterSim(Mode.STANDARD, 1, "tempo", producer=True, profile=HOME)
    t = t_at(13.0)
    with RelayFollower(broker.host, broker.port, prefix, POWERS) as follower:
        assert follower.connected.wait(10)
        bare = net_power(sim, t, follower)
        relay_state(publisher, prefix, "water-heater", state="on")
        wait_until(lambda: follower.steered_va() == 3000.0, 10, "water heater followed")
        assert abs(net_power(sim, t + 1, follower) - bare - 3000) < 200  # noise of 1 s
        # A zone heats in confort only; an unknown relay counts the default power.
        relay_state(publisher, prefix, "living", order="eco")
        relay_state(publisher, prefix, "pump", state="on")
        wait_until(lambda: "pump" in follower.on_relays(), 10, "pump followed")
        assert follower.on_relays() == {"water-heater": 3000.0, "pump": DEFAULT_RELAY_W}
        relay_state(publisher, prefix, "living", order="confort")
        relay_state(publisher, prefix, "water-heater", state="off", source="shed")
        wait_until(lambda: follower.steered_va() == 1500.0 + DEFAULT_RELAY_W, 10, "changes")
        # A state cleared (its retained message deleted): the relay is forgotten.
        publisher.publish(Topics(prefix, "relays").relay_state("pump"), b"", retain=True)
        wait_until(lambda: follower.steered_va() == 1500.0, 10, "pump forgotten")


def test_no_broker_no_loads_then_it_connects_and_follows(tmp_path: Path) -> None:
    own = Broker(tmp_path)  # a broker of this test's own: it starts late and restarts
    follower = RelayFollower(own.host, own.port, "enerbox", POWERS).start()
    try:
        assert follower.steered_va() == 0.0  # nothing to follow, and no crash
        own.start()
        assert follower.connected.wait(30)
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect(own.host, own.port)
        client.loop_start()
        relay_state(client, "enerbox", "water-heater", state="on")
        wait_until(lambda: follower.steered_va() == 3000.0, 10, "followed")
        client.loop_stop()
        client.disconnect()
        own.stop()  # the broker goes: what was on is unknown now
        wait_until(lambda: not follower.connected.is_set(), 30, "disconnect seen")
        assert follower.steered_va() == 0.0
        own.start()  # it comes back (retained states lost): the follower reconnects
        assert follower.connected.wait(30)
    finally:
        follower.stop()
        own.stop()


def test_draws_power_and_relay_powers_from_the_example_config() -> None:
    assert draws_power("on") and draws_power("confort") and draws_power("confort-1")
    assert not any(draws_power(v) for v in ("off", "eco", "hors-gel", "arret"))
    powers = relay_powers(ROOT / "config" / "enerbox.yaml")
    assert powers == {"water-heater": 3000.0, "pool-pump": 750.0, "living": 1500.0,
                      "bedroom": 1000.0}
    assert relay_powers(None) == {}
    assert relay_powers(Path("/nonexistent/enerbox.yaml")) == {}
