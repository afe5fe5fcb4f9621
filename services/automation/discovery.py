"""Home Assistant discovery for one steered load: its status and reason, today's on-time,
what is left of its daily minimum, and its "automation enabled" switch."""

from __future__ import annotations

from typing import Any

from services.core.contract import Topics, slug
from services.core.discovery import device_config

# DESIGN.md's statuses, and `disabled` (the load's switch is off): the enum sensor's options.
STATUSES = ("idle", "surplus", "catch_up", "required", "scheduled", "blocked", "done",
            "unreachable", "stale", "disabled")


def automation_discovery(
    topics: Topics, relay: str, discovery_prefix: str, name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of the load's device discovery message."""
    state = topics.automation_state(relay)
    uid = slug(f"{topics.prefix}_automation_{relay}").replace("-", "_")
    comps: dict[str, dict[str, Any]] = {
        f"{uid}_status": {
            "platform": "sensor", "unique_id": f"{uid}_status", "name": "Status",
            "state_topic": state, "device_class": "enum", "options": list(STATUSES),
            # An unknown status (a newer engine) reads as unknown, not as an HA error.
            "value_template": "{{ value_json.status if value_json.status in "
                              f"{list(STATUSES)!r} else None }}",
            "icon": "mdi:robot",
        },
        f"{uid}_reason": {
            "platform": "sensor", "unique_id": f"{uid}_reason", "name": "Reason",
            "state_topic": state, "value_template": "{{ value_json.reason }}",
            "icon": "mdi:comment-text-outline",
        },
        f"{uid}_on_today": {
            "platform": "sensor", "unique_id": f"{uid}_on_today", "name": "On time today",
            "state_topic": state, "device_class": "duration", "unit_of_measurement": "s",
            "state_class": "total_increasing",
            "value_template": "{{ value_json.on_today_s | round(0) }}",
        },
        f"{uid}_remaining": {
            "platform": "sensor", "unique_id": f"{uid}_remaining",
            "name": "Daily minimum remaining", "state_topic": state,
            "device_class": "duration", "unit_of_measurement": "s",
            # No daily minimum: null, which HA shows as unknown.
            "value_template": "{{ value_json.remaining_s | round(0) "
                              "if value_json.remaining_s is not none else None }}",
        },
        f"{uid}_enabled": {
            "platform": "switch", "unique_id": f"{uid}_enabled", "name": "Automation enabled",
            "state_topic": state, "command_topic": topics.automation_set(relay),
            "payload_on": "ON", "payload_off": "OFF", "state_on": "on", "state_off": "off",
            "value_template": "{{ 'on' if value_json.enabled else 'off' }}",
            "entity_category": "config", "icon": "mdi:robot-outline",
        },
    }
    topic, payload = device_config(
        topics=topics, device=relay,
        device_info={"name": f"Automation {name or relay}", "manufacturer": "enerbox",
                     "model": "automation"},
        comps=comps, discovery_prefix=discovery_prefix,
    )
    # No per-load availability topic: the service's status (its last will) says it all.
    payload["availability"] = [{"topic": topics.status}]
    payload.pop("availability_mode", None)
    return topic, payload
