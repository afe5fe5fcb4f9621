"""Home Assistant discovery for one steered load: its status and reason, today's on-time,
what is left of its daily minimum, and its "automation enabled" switch."""

from __future__ import annotations

from typing import Any

from services.core.contract import Topics
from services.core.discovery import QOS, device_config, object_id

# DESIGN.md's statuses, and `disabled` (the load's switch is off): the enum sensor's options.
STATUSES = ("idle", "surplus", "catch_up", "required", "scheduled", "blocked", "done",
            "unreachable", "stale", "disabled")
STATUS_WORDS = {
    "idle": "En attente", "surplus": "Surplus solaire", "catch_up": "Rattrapage",
    "required": "Minimum du jour", "scheduled": "Programmé", "blocked": "Bloqué",
    "done": "Terminé", "unreachable": "Injoignable", "stale": "Données trop vieilles",
    "disabled": "Désactivé",
}


def automation_discovery(
    topics: Topics, relay: str, discovery_prefix: str, name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of the load's device discovery message."""
    state = topics.automation_state(relay)
    uid = object_id(topics, relay)
    words = [STATUS_WORDS[s] for s in STATUSES]
    comps: dict[str, dict[str, Any]] = {
        f"{uid}_status": {
            "platform": "sensor", "unique_id": f"{uid}_status", "name": "État",
            "state_topic": state, "device_class": "enum", "options": words,
            # An unknown status (a newer engine) reads as unknown, not as an HA error.
            "value_template": f"{{{{ {STATUS_WORDS!r}.get(value_json.status) }}}}",
            "icon": "mdi:robot",
        },
        f"{uid}_reason": {
            "platform": "sensor", "unique_id": f"{uid}_reason", "name": "Raison",
            "state_topic": state, "value_template": "{{ value_json.reason }}",
            "icon": "mdi:comment-text-outline",
        },
        f"{uid}_on_today": {
            "platform": "sensor", "unique_id": f"{uid}_on_today",
            "name": "Temps de marche aujourd'hui",
            "state_topic": state, "device_class": "duration", "unit_of_measurement": "s",
            "state_class": "total_increasing",
            "value_template": "{{ value_json.on_today_s | round(0) }}",
            "suggested_display_precision": 0,
        },
        f"{uid}_remaining": {
            "platform": "sensor", "unique_id": f"{uid}_remaining",
            "name": "Reste du minimum du jour", "state_topic": state,
            "device_class": "duration", "unit_of_measurement": "s",
            "suggested_display_precision": 0,
            # No daily minimum: null, which HA shows as unknown.
            "value_template": "{{ value_json.remaining_s | round(0) "
                              "if value_json.remaining_s is not none else None }}",
        },
        f"{uid}_enabled": {
            "platform": "switch", "unique_id": f"{uid}_enabled", "name": "Automatisme actif",
            "state_topic": state, "command_topic": topics.automation_set(relay),
            "payload_on": "ON", "payload_off": "OFF", "state_on": "on", "state_off": "off",
            "value_template": "{{ 'on' if value_json.enabled else 'off' }}",
            "entity_category": "config", "icon": "mdi:robot-outline", "qos": QOS,
        },
    }
    topic, payload = device_config(
        topics=topics, device=relay,
        device_info={"name": f"Automatisme {name or relay}", "manufacturer": "enerbox",
                     "model": "automation"},
        comps=comps, discovery_prefix=discovery_prefix, own_availability=False,
    )
    return topic, payload
