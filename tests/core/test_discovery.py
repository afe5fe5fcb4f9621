"""Home Assistant discovery on the MQTT level: a field that leaves a reading keeps its
component (which then renders "unknown") and loses its retained per-field value."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from paho.mqtt import publish

from services.core.bus import Bus
from services.core.config import MqttConfig
from services.core.device import DevicePublisher
from services.core.discovery import value_template
from services.core.fields import FieldSpec
from tests.conftest import Broker, Watcher

SPECS = (
    FieldSpec(key="power_va", name="Power", unit="VA"),
    FieldSpec(key="tempo_tomorrow", name="Tempo tomorrow", options=("blue", "white", "red")),
    FieldSpec(key="current_a", name="Current", unit="A", item_names=("L1", "L2", "L3")),
    FieldSpec(key="overload", name="Overload", component="binary_sensor"),
)


@pytest.fixture
def bus(broker: Broker, prefix: str) -> Iterator[Bus]:
    b = Bus(MqttConfig(host=broker.host, port=broker.port, prefix=prefix), "demo")
    b.start()
    assert b.wait_connected(10)
    yield b
    b.stop()


def retained(watch: Callable[[str], Watcher], broker: Broker, base: str) -> dict[str, bytes]:
    """Every retained message under ``base`` as a new subscriber gets it: the broker sends
    them before a marker published after the subscription."""
    late = watch(f"{base}/#")
    publish.single(f"{base}/marker", "end", hostname=broker.host, port=broker.port)
    late.topic(f"{base}/marker")
    with late.lock:
        return {m.topic: m.payload for m in late.messages if m.retain}


def discovery(w: Watcher, after: int) -> dict[str, Any]:
    msg = w.wait_for(lambda m: m.topic.endswith("/config"), after=after)
    data: dict[str, Any] = json.loads(msg.payload)
    return data


def test_a_field_that_leaves_keeps_its_component_and_loses_its_value(
    bus: Bus, broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    ha = watch(f"{prefix}/ha/#")
    base = f"{prefix}/demo/linky"
    live = watch(f"{base}/#")
    out = DevicePublisher(bus, "linky", SPECS, f"{prefix}/ha")
    out.publish({"power_va": 900, "tempo_tomorrow": "red", "current_a": [4], "overload": False})
    first = discovery(ha, 0)  # published last
    uids = set(first["components"])
    assert retained(watch, broker, base)[f"{base}/tempo_tomorrow"] == b"red"

    count = ha.count()
    out.publish({"power_va": 950, "current_a": [4]})  # the meter sent DEMAIN ----
    live.payload(f"{base}/power_va", b"950")  # published after the clearing, on one connection
    now = retained(watch, broker, base)
    assert f"{base}/tempo_tomorrow" not in now  # cleared: a new subscriber gets nothing
    assert f"{base}/overload" not in now
    assert now[f"{base}/power_va"] == b"950"
    assert json.loads(now[f"{base}/state"]).keys() == {"power_va", "current_a", "ts"}
    # The components stay announced (the same discovery, so none was re-sent), and the
    # last one sent reads the state JSON with a template that gives None when absent.
    assert ha.count() == count
    (config,) = retained(watch, broker, f"{prefix}/ha").values()
    latest = json.loads(config)
    assert set(latest["components"]) == uids
    tomorrow = next(c for c in latest["components"].values() if c["name"] == "Tempo tomorrow")
    assert tomorrow["state_topic"] == f"{base}/state"
    assert tomorrow["value_template"] == (
        "{{ value_json['tempo_tomorrow'] if value_json['tempo_tomorrow'] is defined "
        "else None }}")


def test_a_field_that_comes_later_adds_to_what_was_announced(
    bus: Bus, broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    ha = watch(f"{prefix}/ha/#")
    out = DevicePublisher(bus, "linky", SPECS, f"{prefix}/ha")
    out.publish({"power_va": 900, "tempo_tomorrow": "red"})
    first = discovery(ha, 0)
    count = ha.count()
    out.publish({"power_va": 900, "current_a": [4, 5, 6]})
    second = discovery(ha, count)
    assert set(first["components"]) < set(second["components"])
    names = {c["name"] for c in second["components"].values()}
    assert {"Tempo tomorrow", "Current L1", "Current L3"} <= names


def test_a_restart_clears_values_a_previous_run_left(
    bus: Bus, broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    base = f"{prefix}/demo/linky"
    live = watch(f"{base}/#")
    DevicePublisher(bus, "linky", SPECS, None).publish({"power_va": 1, "tempo_tomorrow": "red"})
    live.payload(f"{base}/tempo_tomorrow", b"red")  # the last one published
    assert f"{base}/tempo_tomorrow" in retained(watch, broker, base)
    # A new process (a new publisher) whose first reading has no Tempo tomorrow.
    DevicePublisher(bus, "linky", SPECS, None).publish({"power_va": 2})
    live.payload(f"{base}/power_va", b"2")  # published after the clearing
    now = retained(watch, broker, base)
    assert f"{base}/tempo_tomorrow" not in now and now[f"{base}/power_va"] == b"2"


def test_templates_say_none_when_the_value_is_absent() -> None:
    power, _, current, overload = SPECS
    assert value_template(current, 2) == (
        "{{ value_json['current_a'][2] if value_json['current_a'] is defined and "
        "value_json['current_a'] | length > 2 else None }}")
    assert value_template(overload) == (
        "{{ ('true' if value_json['overload'] else 'false') if value_json['overload'] "
        "is defined else None }}")
    assert "value_json['idx']['BBRHCJB']" in value_template(
        FieldSpec(key="idx", name="Index", mapping=True), "BBRHCJB")
    assert value_template(power).endswith("else None }}")
