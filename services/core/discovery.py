"""Home Assistant MQTT device-based discovery (one message per device, many components)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services import __version__
from services.core.contract.topics import Topics, discovery_topic, slug
from services.core.fields import FieldSpec

ORIGIN = {
    "name": "enerbox",
    "sw_version": __version__,
    "support_url": "https://github.com/enerbox/enerbox",
}


def _value(spec: FieldSpec, item: str) -> str:
    """Jinja expression of a present value, as HA expects it on this platform."""
    if spec.component == "binary_sensor":
        return f"('true' if {item} else 'false')"  # payload_on / payload_off below
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
    if spec.options is not None:
        comp["device_class"] = "enum"
        comp["options"] = list(spec.options)
    if spec.precision is not None:
        comp["suggested_display_precision"] = spec.precision
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
    base_uid = slug(f"{topics.prefix}_{topics.service}_{device}").replace("-", "_")
    topic = topics.state(device)
    comps: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec.discover or spec.key not in reading:
            continue
        value = reading[spec.key]
        if spec.mapping and isinstance(value, Mapping):
            for sub in value:
                uid = f"{base_uid}_{spec.key}_{slug(sub).replace('-', '_')}"
                comps[uid] = _component(spec, uid, f"{spec.name} {sub}", topic,
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
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of a device-based discovery message."""
    object_id = slug(f"{topics.prefix}_{topics.service}_{device}").replace("-", "_")
    payload = {
        "device": {"identifiers": [object_id], **device_info},
        "origin": ORIGIN,
        "availability": [
            {"topic": topics.status},
            {"topic": topics.availability(device)},
        ],
        "availability_mode": "all",
        "qos": 1,
        "components": comps,
    }
    return discovery_topic(discovery_prefix, object_id), payload
