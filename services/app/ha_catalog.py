"""Every Home Assistant discovery payload the services can publish, built by their own
discovery builders from a reading that has every field (for the checks of
tests/core/test_discovery_payloads.py and tools/ha_check.py).

``python -m services.app.ha_catalog`` prints them as JSON: {topic: payload}.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from services.app.registry import SERVICES
from services.automation.discovery import automation_discovery
from services.core.contract import Topics
from services.core.discovery import components, device_config, diagnostics_component
from services.core.fields import FieldSpec
from services.relays.config import RelayConfig
from services.relays.discovery import relay_discovery
from services.shedding.discovery import shedding_discovery

PREFIX = "enerbox"
DISCOVERY = "homeassistant"


def sample(spec: FieldSpec) -> Any:
    """A value of the field's type: what a device could send."""
    if spec.component == "binary_sensor":
        return True
    if spec.options is not None:
        return spec.options[0]
    if spec.mapping:
        return {raw: 1000 for raw, _ in spec.words} or {"base": 1000}
    if spec.device_class == "timestamp":
        return "2026-01-02T03:04:05+01:00"
    value: Any = 13.499 if spec.unit is not None or spec.state_class else "texte"
    return [value] * len(spec.item_names) if spec.item_names is not None else value


def device_payloads(service: str, specs: tuple[FieldSpec, ...]) -> tuple[str, dict[str, Any]]:
    """A device service's discovery message for a device that sends every field."""
    topics = Topics(PREFIX, service)
    reading = {s.key: sample(s) for s in specs}
    comps = {**components(topics, "dev", specs, reading), **diagnostics_component(topics, "dev")}
    return device_config(topics=topics, device="dev", device_info={"name": service},
                         comps=comps, discovery_prefix=DISCOVERY)


def catalog() -> dict[str, dict[str, Any]]:
    """{discovery topic: payload} of every service, every kind of device."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in SERVICES.items():
        if entry.fields is None:
            continue
        module, _, attr = entry.fields.partition(":")
        topic, payload = device_payloads(name, getattr(importlib.import_module(module), attr))
        out[topic] = payload
    relays = Topics(PREFIX, "relays")
    for cfg in (RelayConfig(id="water-heater", board="b", channel=0),
                RelayConfig(id="living", kind="fil_pilote", board="b", channels=(1, 2))):
        topic, payload = relay_discovery(relays, cfg, DISCOVERY)
        out[topic] = payload
    topic, payload = automation_discovery(Topics(PREFIX, "automation"), "water-heater",
                                          DISCOVERY, "Chauffe-eau")
    out[topic] = payload
    topic, payload = shedding_discovery(Topics(PREFIX, "shedding"), "linky",
                                        {"water-heater": "Chauffe-eau",
                                         "living": "Radiateur séjour"}, 3, DISCOVERY)
    out[topic] = payload
    return out


if __name__ == "__main__":
    print(json.dumps(catalog(), indent=1, ensure_ascii=False))
