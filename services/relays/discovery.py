"""Home Assistant discovery for a relay: a switch or an order select, a mode select, and
sensors for the shed flag, read-back and on-time."""

from __future__ import annotations

from typing import Any

from services.core.contract import ORDERS, Topics, slug
from services.core.discovery import device_config
from services.relays.config import RelayConfig


def relay_discovery(
    topics: Topics, cfg: RelayConfig, discovery_prefix: str
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of the relay's device discovery message."""
    state = topics.relay_state(cfg.id)
    uid = slug(f"{topics.prefix}_relays_{cfg.id}").replace("-", "_")
    common = {"state_topic": state, "command_topic": topics.relay_set(cfg.id)}
    comps: dict[str, dict[str, Any]] = {}
    if cfg.kind == "switch":
        comps[f"{uid}_switch"] = {
            "platform": "switch", "unique_id": f"{uid}_switch", "name": None, **common,
            "payload_on": "ON", "payload_off": "OFF", "state_on": "on", "state_off": "off",
            "value_template": "{{ value_json.state }}",
        }
    else:
        comps[f"{uid}_order"] = {
            "platform": "select", "unique_id": f"{uid}_order", "name": "Order", **common,
            "options": list(ORDERS), "value_template": "{{ value_json.order }}",
            "command_template": '{"order": "{{ value }}"}', "icon": "mdi:radiator",
        }
    comps[f"{uid}_mode"] = {
        "platform": "select", "unique_id": f"{uid}_mode", "name": "Mode", **common,
        "options": ["auto", "on", "off"], "value_template": "{{ value_json.mode }}",
        "command_template": '{"mode": "{{ value }}"}', "entity_category": "config",
    }
    comps[f"{uid}_shed"] = {
        "platform": "binary_sensor", "unique_id": f"{uid}_shed", "name": "Shed",
        "state_topic": state, "device_class": "problem",
        "value_template": "{{ 'ON' if value_json.shed else 'OFF' }}",
    }
    comps[f"{uid}_readback"] = {
        "platform": "binary_sensor", "unique_id": f"{uid}_readback", "name": "Output fault",
        "state_topic": state, "device_class": "problem",
        "entity_category": "diagnostic",
        "value_template": "{{ 'OFF' if value_json.readback_ok else 'ON' }}",
    }
    comps[f"{uid}_on_time"] = {
        "platform": "sensor", "unique_id": f"{uid}_on_time", "name": "On time today",
        "state_topic": state, "device_class": "duration", "unit_of_measurement": "s",
        "state_class": "total_increasing", "value_template": "{{ value_json.on_time_today_s }}",
    }
    topic, payload = device_config(
        topics=topics, device=cfg.id,
        device_info={"name": cfg.name or cfg.id, "manufacturer": "enerbox",
                     "model": "fil pilote zone" if cfg.kind == "fil_pilote" else "relay"},
        comps=comps, discovery_prefix=discovery_prefix,
    )
    # Relays have no per-device availability topic: the service's status is enough.
    payload["availability"] = [{"topic": topics.status}]
    payload.pop("availability_mode", None)
    return topic, payload
