"""Home Assistant discovery for a relay: a switch or an order select, a mode select, and
sensors for the shed flag and its reason, who decided the output (``source``), until when,
the read-back and the on-time. Names and states in French, as the page."""

from __future__ import annotations

from typing import Any

from services.core.contract import ORDERS, Topics
from services.core.discovery import QOS, device_config, object_id
from services.core.shed_words import jinja_french
from services.relays.config import RelayConfig

# Mode "on" is the user's manual "always on": HA shows it as such.
MODE_WORDS = {"auto": "Automatique", "on": "Manuel : marche", "off": "Manuel : arrêt"}
ORDER_WORDS = {"confort": "Confort", "eco": "Éco", "hors-gel": "Hors-gel", "arret": "Arrêt",
               "confort-1": "Confort -1", "confort-2": "Confort -2"}
SOURCE_WORDS = {"failsafe": "Sécurité (délestage absent)", "shed": "Délestage",
                "user": "Commande", "auto": "Automatisme", "default": "Par défaut"}


def _words(field: str, words: dict[str, str]) -> str:
    """Template: the raw value in words (one not in the table as it is)."""
    return f"{{{{ {words!r}.get(value_json.{field}, value_json.{field}) }}}}"


def _back(words: dict[str, str], key: str) -> str:
    """Command template: the chosen words back to the raw value, as JSON."""
    back = {w: raw for raw, w in words.items()}
    return f'{{"{key}": "{{{{ {back!r}.get(value, value) }}}}"}}'


def relay_discovery(
    topics: Topics, cfg: RelayConfig, discovery_prefix: str
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of the relay's device discovery message."""
    state = topics.relay_state(cfg.id)
    uid = object_id(topics, cfg.id)
    # Commands at QoS 1: a lost "off" would leave a load on.
    common = {"state_topic": state, "command_topic": topics.relay_set(cfg.id), "qos": QOS}
    comps: dict[str, dict[str, Any]] = {}
    if cfg.kind == "switch":
        comps[f"{uid}_switch"] = {
            "platform": "switch", "unique_id": f"{uid}_switch", "name": None, **common,
            "payload_on": "ON", "payload_off": "OFF", "state_on": "on", "state_off": "off",
            "value_template": "{{ value_json.state }}",
        }
    else:
        comps[f"{uid}_order"] = {
            "platform": "select", "unique_id": f"{uid}_order", "name": "Ordre", **common,
            "options": [ORDER_WORDS.get(o, o) for o in ORDERS],
            "value_template": _words("order", ORDER_WORDS),
            "command_template": _back(ORDER_WORDS, "order"), "icon": "mdi:radiator",
        }
    comps[f"{uid}_mode"] = {
        "platform": "select", "unique_id": f"{uid}_mode", "name": "Mode", **common,
        "options": list(MODE_WORDS.values()), "value_template": _words("mode", MODE_WORDS),
        "command_template": _back(MODE_WORDS, "mode"), "entity_category": "config",
    }
    sensor = {"state_topic": state, "qos": QOS}
    comps[f"{uid}_source"] = {
        "platform": "sensor", "unique_id": f"{uid}_source", "name": "Décidé par", **sensor,
        "value_template": _words("source", SOURCE_WORDS), "icon": "mdi:account-question",
    }
    comps[f"{uid}_until"] = {
        "platform": "sensor", "unique_id": f"{uid}_until", "name": "Jusqu'à", **sensor,
        "device_class": "timestamp",
        # No end (a plain command, the default): unknown.
        "value_template": "{{ value_json.until if value_json.until else None }}",
    }
    comps[f"{uid}_shed"] = {
        "platform": "binary_sensor", "unique_id": f"{uid}_shed", "name": "Délesté",
        **sensor, "device_class": "problem",
        "value_template": "{{ 'ON' if value_json.shed else 'OFF' }}",
    }
    comps[f"{uid}_shed_reason"] = {
        "platform": "sensor", "unique_id": f"{uid}_shed_reason", "name": "Raison du délestage",
        **sensor, "icon": "mdi:transmission-tower-off",
        # Not shed: no reason, shown as unknown.
        "value_template": "{{ " + jinja_french("value_json.shed_reason")
                          + " if value_json.shed_reason is defined "
                          "and value_json.shed_reason else None }}",
    }
    comps[f"{uid}_readback"] = {
        "platform": "binary_sensor", "unique_id": f"{uid}_readback", "name": "Défaut de sortie",
        **sensor, "device_class": "problem", "entity_category": "diagnostic",
        "value_template": "{{ 'OFF' if value_json.readback_ok else 'ON' }}",
    }
    comps[f"{uid}_on_time"] = {
        "platform": "sensor", "unique_id": f"{uid}_on_time", "name": "Temps de marche aujourd'hui",
        **sensor, "device_class": "duration", "unit_of_measurement": "s",
        "suggested_display_precision": 0,
        "state_class": "total_increasing", "value_template": "{{ value_json.on_time_today_s }}",
    }
    topic, payload = device_config(
        topics=topics, device=cfg.id,
        device_info={"name": cfg.name or cfg.id, "manufacturer": "enerbox",
                     "model": "zone fil pilote" if cfg.kind == "fil_pilote" else "relais"},
        comps=comps, discovery_prefix=discovery_prefix, own_availability=False,
    )
    return topic, payload
