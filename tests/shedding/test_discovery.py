"""The shedding service's HA device on a real broker: announced with the meter's phases
once a reading arrives, and re-sent when Home Assistant comes back online."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt import publish

from services.core.contract import Topics
from services.shedding.discovery import shedding_discovery
from tests.conftest import Broker, Watcher
from tests.shedding.test_service import Harness


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(tmp_path, broker, prefix, watch(f"{prefix}/#"))
    ha = h.config.homeassistant.model_copy(update={"discovery_prefix": f"{prefix}/ha"})
    h.config = h.config.model_copy(update={"homeassistant": ha})
    yield h
    h.stop()


def test_shedding_device_announced_with_its_phases_and_again_for_ha(harness: Harness) -> None:
    w, prefix = harness.w, harness.prefix
    harness.start()
    harness.meter(1200)  # single phase
    msg = w.wait_for(lambda m: m.topic.startswith(f"{prefix}/ha/device/"))
    payload = json.loads(msg.payload)
    names = {c["name"] for c in payload["components"].values()}
    assert {"Charge", "Limite", "Charges délestées", "Délestage heater",
            "Délestage radiator", "Service"} <= names
    load = next(c for c in payload["components"].values() if c["name"] == "Charge")
    assert load["state_topic"] == f"{prefix}/shedding/linky/state"
    assert (load["unit_of_measurement"], load["qos"]) == ("VA", 1)
    count = w.count()
    publish.single(f"{prefix}/ha/status", "online", hostname=harness.broker.host,
                   port=harness.broker.port)
    assert w.wait_for(lambda m: m.topic == msg.topic, after=count).payload == msg.payload


def test_loads_are_named_by_their_relays_names() -> None:
    _, payload = shedding_discovery(Topics("enerbox", "shedding"), "linky",
                                    {"water-heater": "Chauffe-eau", "x": "x"}, 1,
                                    "homeassistant")
    comps = payload["components"].values()
    assert {"Délestage Chauffe-eau", "Délestage x"} <= {c["name"] for c in comps}
    shed = next(c for c in comps if c["name"] == "Charges délestées")
    # HA renders the shed list through this map: names, an unnamed relay's id as is.
    assert '{"water-heater": "Chauffe-eau", "x": "x"}' in shed["value_template"]
    assert "n.get(r, r)" in shed["value_template"]
