"""Home Assistant MQTT device-based discovery (one message per device, many components)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services import __version__
from services.core.contract.topics import Topics, discovery_topic, slug
from services.core.fields import FieldSpec
from services.core.store import load_json, save_json

if TYPE_CHECKING:
    from services.core.bus import Bus

log = logging.getLogger(__name__)

ORIGIN = {
    "name": "enerbox",
    "sw_version": __version__,
    "support_url": "https://github.com/enerbox/enerbox",
}


# Decimals HA shows when a field names none: HA's own default rounds 13.499 V to "13 V".
PRECISION_BY_UNIT = {
    "V": 1, "A": 1, "W": 0, "VA": 0, "Wh": 0, "kWh": 2, "°C": 1, "%": 0, "Hz": 2, "s": 0,
    "min": 0, "Ah": 1, "kVA": 0,
}
# HA before 2025.10 refuses kVA for apparent_power: HA sees VA (the value x 1000).
SCALED_UNITS = {"kVA": ("VA", 1000)}
QOS = 1  # on every component: HA ignores a device-level qos (commands went out at QoS 0)


@dataclass(frozen=True, slots=True)
class Identity:
    """The stable base of a service's unique ids and discovery object ids, and the base it
    announced under before (set when the base changed, so the old topics get cleared)."""

    base: str
    previous: str | None = None


_IDENTITIES: dict[tuple[str, str], Identity] = {}


def prefix_base(prefix: str) -> str:
    """The base unique ids had before ``homeassistant.unique_id_base``: the mqtt prefix."""
    return slug(prefix).replace("-", "_")


def resolve_identity(
    configured: str | None, prefix: str, service: str, data_dir: Path
) -> Identity:
    """The unique id base of ``service``, kept in ``<data_dir>/homeassistant/<service>.json``.

    Configured: that base. Not configured: the saved one; on the first start, the prefix
    (what ids were made of before), saved and logged once, so a later prefix change keeps
    the ids. A base that differs from the saved one is remembered as ``previous``: the
    service clears its old discovery topics."""
    path = Path(data_dir) / "homeassistant" / f"{slug(service)}.json"
    saved = load_json(path)
    old = saved.get("unique_id_base") if isinstance(saved, dict) else None
    old = old if isinstance(old, str) and old else None
    if configured:
        base = slug(configured).replace("-", "_")
    elif old is not None:
        base = old
    else:
        base = prefix_base(prefix)
        log.info("service=%s homeassistant unique id base %r (from mqtt.prefix) saved in %s: "
                 "it stays when the prefix changes", service, base, path)
    # The base before a change stays in the file: a service stopped between saving the new
    # base and clearing the old topics clears them at its next start (clearing an empty
    # retained topic again is harmless).
    kept = saved.get("previous") if isinstance(saved, dict) else None
    previous = old if old is not None and old != base else (
        kept if isinstance(kept, str) and kept and kept != base else None)
    if old != base:
        if old is not None:
            log.warning("service=%s homeassistant unique id base %r -> %r: old discovery "
                        "topics cleared, HA makes new devices", service, old, base)
        save_json(path, {"unique_id_base": base, "previous": previous})
    identity = Identity(base, previous)
    _IDENTITIES[(prefix, service)] = identity
    return identity


def _base(topics: Topics) -> str:
    found = _IDENTITIES.get((topics.prefix, topics.service))
    return found.base if found is not None else prefix_base(topics.prefix)


def object_id(topics: Topics, device: str, base: str | None = None) -> str:
    """``<base>_<service>_<device>``: the device's identifier and its unique ids' stem."""
    return slug(f"{base or _base(topics)}_{topics.service}_{device}").replace("-", "_")


def stale_topic(topics: Topics, device: str, discovery_prefix: str) -> str | None:
    """The discovery topic this device had under the previous base, if the base changed."""
    found = _IDENTITIES.get((topics.prefix, topics.service))
    if found is None or found.previous is None:
        return None
    return discovery_topic(discovery_prefix, object_id(topics, device, found.previous))


_CLEARED: set[str] = set()


def announce(bus: Bus, device: str, topic: str, payload: str, discovery_prefix: str) -> None:
    """Publish a discovery message, after clearing (once) the device's topic of before."""
    old = stale_topic(bus.topics, device, discovery_prefix)
    if old is not None and old != topic and old not in _CLEARED:
        _CLEARED.add(old)
        bus.clear_retained(old)
    bus.publish_retained(topic, payload)


def _value(spec: FieldSpec, item: str) -> str:
    """Jinja expression of a present value, as HA expects it on this platform."""
    if spec.component == "binary_sensor":
        return f"('true' if {item} else 'false')"  # payload_on / payload_off below
    if spec.words and not spec.mapping:
        # Raw values shown in words; one not in the table shows as it is.
        return f"{dict(spec.words)!r}.get({item}, {item})"
    if spec.unit in SCALED_UNITS:
        return f"({item} * {SCALED_UNITS[spec.unit][1]})"
    return item


def value_template(spec: FieldSpec, index: int | str | None = None) -> str:
    """HA value template reading one field (one list item, one object key) from the state
    JSON. When the key is absent it renders ``None``, which HA shows as "unknown": an
    empty payload would be ignored and the last value would stay on screen."""
    field = f"value_json[{spec.key!r}]"
    if index is None:
        present, item = f"{field} is defined", field
    elif isinstance(index, int):
        present = f"{field} is defined and {field} | length > {index}"
        item = f"{field}[{index}]"
    else:
        present = f"{field} is defined and {field}[{index!r}] is defined"
        item = f"{field}[{index!r}]"
    return f"{{{{ {_value(spec, item)} if {present} else None }}}}"


def _component(
    spec: FieldSpec, uid: str, name: str, topic: str, template: str
) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "platform": spec.component,
        "unique_id": uid,
        "name": name,
        "state_topic": topic,
        "value_template": template,
    }
    if spec.component == "binary_sensor":
        comp["payload_on"] = "true"
        comp["payload_off"] = "false"
    for key in ("unit", "device_class", "state_class", "entity_category", "icon"):
        value = getattr(spec, key)
        if value is not None:
            comp["unit_of_measurement" if key == "unit" else key] = value
    if spec.unit in SCALED_UNITS:
        comp["unit_of_measurement"] = SCALED_UNITS[spec.unit][0]
    if spec.options is not None:
        words = dict(spec.words)
        comp["device_class"] = "enum"
        comp["options"] = [words.get(o, o) for o in spec.options]
    precision = spec.precision
    if precision is None and spec.unit is not None:
        precision = PRECISION_BY_UNIT.get(spec.unit)
    if precision is None and spec.state_class is not None:
        precision = 0  # a count
    if precision is not None:
        comp["suggested_display_precision"] = precision
    if not spec.enabled:
        comp["enabled_by_default"] = False
    return comp


def components(
    topics: Topics, device: str, specs: Iterable[FieldSpec], reading: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """HA components for the fields present in a reading (lists and objects fan out).

    Every component reads the device's state JSON (not its per-field topic): a field that
    leaves a reading then renders "unknown" in HA through its template, while a cleared
    per-field topic (an empty payload) would leave HA showing the last value."""
    base_uid = object_id(topics, device)
    topic = topics.state(device)
    comps: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec.discover or spec.key not in reading:
            continue
        value = reading[spec.key]
        if spec.mapping and isinstance(value, Mapping):
            words = dict(spec.words)
            for sub in value:
                uid = f"{base_uid}_{spec.key}_{slug(sub).replace('-', '_')}"
                name = f"{spec.name} {words.get(sub, sub)}"
                comps[uid] = _component(spec, uid, name, topic,
                                        value_template(spec, sub))
        elif spec.item_names is not None and isinstance(value, list):
            for i in range(len(value)):
                uid = f"{base_uid}_{spec.key}_{i + 1}"
                name = f"{spec.name} {spec.item_names[i]}" if len(value) > 1 else spec.name
                comps[uid] = _component(spec, uid, name, topic, value_template(spec, i))
        else:
            uid = f"{base_uid}_{spec.key}"
            comps[uid] = _component(spec, uid, spec.name, topic, value_template(spec))
    return comps


def device_config(
    *,
    topics: Topics,
    device: str,
    device_info: Mapping[str, Any],
    comps: dict[str, dict[str, Any]],
    discovery_prefix: str = "homeassistant",
    own_availability: bool = True,
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of a device-based discovery message. A device without its own
    availability topic (a relay, a load's automation, shedding) follows only the service's
    status: its last will says it all."""
    oid = object_id(topics, device)
    comps = {uid: {**comp, "qos": comp.get("qos", QOS)} for uid, comp in comps.items()}
    comps.update(service_components(topics, oid))
    payload = {
        "device": {"identifiers": [oid], **device_info},
        "origin": ORIGIN,
        "availability": [{"topic": topics.status}],
        "qos": 1,
        "components": comps,
    }
    if own_availability:
        payload["availability"] = [{"topic": topics.status},
                                   {"topic": topics.availability(device)}]
        payload["availability_mode"] = "all"
    return discovery_topic(discovery_prefix, oid), payload


def service_components(topics: Topics, oid: str) -> dict[str, dict[str, Any]]:
    """The service's own status on each of its devices, as a diagnostic entity."""
    uid = f"{oid}_service_status"
    return {uid: {
        "platform": "binary_sensor", "unique_id": uid, "name": "Service",
        "state_topic": topics.status, "payload_on": "online", "payload_off": "offline",
        "device_class": "connectivity", "entity_category": "diagnostic", "qos": QOS,
    }}


def diagnostics_component(topics: Topics, device: str) -> dict[str, dict[str, Any]]:
    """A device's diagnostics JSON as one diagnostic entity: its time, the counters as
    attributes."""
    uid = f"{object_id(topics, device)}_diagnostics"
    return {uid: {
        "platform": "sensor", "unique_id": uid, "name": "Diagnostic",
        "state_topic": topics.diagnostics(device), "device_class": "timestamp",
        "value_template": "{{ value_json.ts if value_json.ts is defined else None }}",
        "json_attributes_topic": topics.diagnostics(device),
        "entity_category": "diagnostic", "qos": QOS,
    }}
