"""Home Assistant discovery for the shedding service: the load of each phase against its
limit, which loads are shed and why (each load's shed flag), and whether the meter's data
is too old to decide on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.core.contract import Topics
from services.core.discovery import QOS, device_config, object_id
from services.core.shed_words import jinja_french

PHASES = ("L1", "L2", "L3")


def _phase(uid: str, key: str, name: str, state: str, i: int) -> dict[str, Any]:
    return {
        "platform": "sensor", "unique_id": f"{uid}_{key}_{i + 1}", "name": name,
        "state_topic": state, "qos": QOS, "unit_of_measurement": "VA",
        "device_class": "apparent_power", "state_class": "measurement",
        "suggested_display_precision": 0,
        "value_template": f"{{{{ value_json.{key}[{i}] if value_json.{key} | length > {i} "
                          "else None }}",
    }


def shedding_discovery(
    topics: Topics, meter: str, relays: Mapping[str, str], phases: int, discovery_prefix: str
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of the shedding device's discovery message; ``relays``: the loads'
    relay ids and names; ``phases``: how many the meter has (1 or 3)."""
    state = topics.state(meter)
    uid = object_id(topics, meter)
    comps: dict[str, dict[str, Any]] = {}
    for i in range(phases):
        suffix = f" {PHASES[i]}" if phases > 1 else ""
        comps[f"{uid}_load_va_{i + 1}"] = _phase(uid, "load_va", f"Charge{suffix}", state, i)
        comps[f"{uid}_limit_va_{i + 1}"] = _phase(uid, "limit_va", f"Limite{suffix}", state, i)
    comps[f"{uid}_shed"] = {
        "platform": "sensor", "unique_id": f"{uid}_shed", "name": "Charges délestées",
        "state_topic": state, "qos": QOS, "icon": "mdi:transmission-tower-off",
        # The loads by their names (a relay the config does not name: its id).
        "value_template": "{% set n = " + json.dumps(dict(relays), ensure_ascii=False)
                          + " %}{% if value_json.shed %}{% for r in value_json.shed %}"
                          "{{ n.get(r, r) }}{{ ', ' if not loop.last }}{% endfor %}"
                          "{% else %}aucune{% endif %}",
    }
    comps[f"{uid}_shed_count"] = {
        "platform": "sensor", "unique_id": f"{uid}_shed_count", "name": "Nombre délestées",
        "state_topic": state, "qos": QOS, "state_class": "measurement",
        "suggested_display_precision": 0, "value_template": "{{ value_json.shed | length }}",
    }
    comps[f"{uid}_stale"] = {
        "platform": "binary_sensor", "unique_id": f"{uid}_stale",
        "name": "Données du compteur trop vieilles", "state_topic": state, "qos": QOS,
        "device_class": "problem", "entity_category": "diagnostic",
        "value_template": "{{ 'ON' if value_json.stale else 'OFF' }}",
    }
    for relay, name in relays.items():
        # Why a load is shed (or was restored): the flag the relays service obeys.
        key = f"{uid}_reason_{relay.replace('-', '_')}"
        comps[key] = {
            "platform": "sensor", "unique_id": key, "name": f"Délestage {name}",
            "state_topic": topics.relay_shed(relay), "qos": QOS,
            "icon": "mdi:transmission-tower-off",
            "value_template": "{{ ('Délesté : ' if value_json.shed else 'Rétabli : ') ~ ("
                              + jinja_french("value_json.reason") + ") }}",
        }
    topic, payload = device_config(
        topics=topics, device=meter,
        device_info={"name": f"Délestage {meter}", "manufacturer": "enerbox",
                     "model": "délestage"},
        comps=comps, discovery_prefix=discovery_prefix, own_availability=False,
    )
    return topic, payload
