"""Validate every Home Assistant discovery component the services publish against HA's own
MQTT platform schemas (and its sensor unit / device class / state class tables).

Run by ``make ha-check`` (not by ``make test``): it needs Home Assistant in its own venv,

    python3 -m venv /tmp/havenv && /tmp/havenv/bin/pip install homeassistant==2024.3.3
    .venv/bin/python -m services.app.ha_catalog > /tmp/ha-catalog.json
    /tmp/havenv/bin/python tools/ha_check.py /tmp/ha-catalog.json

HA 2024.3 predates device-based discovery (2024.11): each component is checked as HA
checks one, with the device's shared keys (device, origin, availability) merged in, the
way HA expands a device message. A key the schema drops (HA ignores unknown keys) counts
as a rejection too: it would silently do nothing.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import voluptuous as vol  # type: ignore[import-not-found, unused-ignore]
from homeassistant.components.sensor import (  # type: ignore[import-not-found, unused-ignore]
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
)

SHARED = ("device", "origin", "availability", "availability_mode")
# Keys newer than the HA that runs on Python 3.11 (device-based discovery itself is 2024.11):
# accepted here, listed apart. Options of an MQTT enum sensor: core PR #123248, HA 2024.9.
NEWER = {("sensor", "options")}


def check(component: dict[str, Any], shared: dict[str, Any]) -> list[str]:
    """Problems HA would have with one component (empty: accepted)."""
    conf = {k: v for k, v in shared.items() if k in SHARED}
    conf.update({k: v for k, v in component.items() if k != "platform"})
    platform = component["platform"]
    module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
    try:
        valid = module.DISCOVERY_SCHEMA(conf)
    except vol.Invalid as err:
        return [f"schema: {err}"]
    problems = [f"key ignored by HA: {k}" for k in conf
                if k not in valid and (platform, k) not in NEWER]
    if platform == "sensor":
        problems += _sensor({**conf, **valid})
    return problems


def _sensor(conf: dict[str, Any]) -> list[str]:
    dc, unit, sc = conf.get("device_class"), conf.get("unit_of_measurement"), conf.get(
        "state_class")
    out: list[str] = []
    if dc is None:
        return out
    dc = SensorDeviceClass(dc)
    units = DEVICE_CLASS_UNITS.get(dc)
    if units is not None and unit not in units:
        out.append(f"unit {unit!r} not allowed for {dc}: {sorted(map(str, units - {None}))}")
    classes = DEVICE_CLASS_STATE_CLASSES.get(dc)
    if sc is not None and classes is not None and sc not in classes:
        out.append(f"state_class {sc} not allowed for {dc}")
    if dc == SensorDeviceClass.ENUM and (unit or sc or not conf.get("options")):
        out.append("enum: options required, no unit nor state_class")
    return out


def main(path: str) -> int:
    catalog: dict[str, dict[str, Any]] = json.loads(Path(path).read_text(encoding="utf-8"))
    count = bad = 0
    for topic, payload in catalog.items():
        for uid, comp in payload["components"].items():
            count += 1
            for problem in check(comp, payload):
                bad += 1
                print(f"{topic} {uid}: {problem}")
    print(f"{count} components in {len(catalog)} discovery messages, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
