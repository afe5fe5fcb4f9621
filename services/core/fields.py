"""Field descriptions shared by every service: one row per normalized field.

The JSON state, the per-field topics, Home Assistant discovery and docs/MQTT.md all come
from these rows (the homewizard `SensorEntityDescription` habit).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldSpec:
    """How one normalized field is named, typed and shown."""

    key: str
    name: str
    description: str = ""
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    component: str = "sensor"  # HA platform: sensor, binary_sensor
    entity_category: str | None = None  # "diagnostic" for meter ids and settings
    icon: str | None = None
    precision: int | None = None  # HA suggested_display_precision (decimals shown)
    options: tuple[str, ...] | None = None  # values of an enum sensor
    # Raw value -> words shown in HA (a mapping field: its keys' names); the JSON keeps the
    # raw values. An enum's HA options are the words.
    words: tuple[tuple[str, str], ...] = ()
    item_names: tuple[str, ...] | None = None  # names of list items: ("L1", "L2", "L3")
    mapping: bool = False  # value is an object (one HA entity per key)
    enabled: bool = True  # enabled by default in HA
    discover: bool = True  # announced to HA at all


def field_payload(value: Any) -> str:
    """Plain scalar for a per-field topic: numbers and strings as is, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    return json.dumps(value, separators=(",", ":"))
