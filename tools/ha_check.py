"""Validate every Home Assistant discovery component the services publish against HA's own
MQTT platform schemas (and its sensor unit / device class / state class tables).

Run by ``make ha-check`` (not by ``make test``): it needs Home Assistant in its own venv,

    python3.13 -m venv /tmp/ha13 && /tmp/ha13/bin/pip install homeassistant==2025.4.4
    .venv/bin/python -m services.app.ha_catalog > /tmp/ha-catalog.json
    /tmp/ha13/bin/python tools/ha_check.py /tmp/ha-catalog.json

With an HA that has device-based discovery (2024.11 or newer; 2025.4.4 is the newest that
installs on Python 3.13.0) each message goes through HA's own steps: abbreviations,
DEVICE_DISCOVERY_SCHEMA, the shared options merged into each component, then the
platform's DISCOVERY_SCHEMA; a warning HA logs on the way counts as a problem.
With HA 2024.3.3 (the newest on Python 3.11, before device-based discovery) each component
is checked alone with the device's shared keys merged in, as HA expands a device message.
Either way a key the schema drops (HA ignores unknown keys) counts as a rejection too: it
would silently do nothing.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import voluptuous as vol  # type: ignore[import-not-found, unused-ignore]
from homeassistant.components.mqtt import (  # type: ignore[import-not-found, unused-ignore]
    discovery as disc,
)
from homeassistant.components.sensor import (  # type: ignore[import-not-found, unused-ignore]
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
)
from homeassistant.const import __version__  # type: ignore[import-not-found, unused-ignore]
from homeassistant.core import HomeAssistant  # type: ignore[import-not-found, unused-ignore]
from homeassistant.helpers import frame  # type: ignore[import-not-found, unused-ignore]

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


class _Warnings(logging.Handler):
    """HA's MQTT code logs (rather than raises) some problems, e.g. a unit the device class
    does not allow: collect them as problems."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def check_device(payload: dict[str, Any]) -> dict[str, list[str]]:
    """{component id: problems} for one device message, through HA's own discovery steps
    (homeassistant/components/mqtt/discovery.py, async_discovery_message_received)."""
    device = disc.MQTTDiscoveryPayload(copy.deepcopy(payload))
    disc._replace_all_abbreviations(device)
    try:
        disc.DEVICE_DISCOVERY_SCHEMA(device)
    except vol.Invalid as err:
        return {"(device)": [f"device schema: {err}"]}
    out: dict[str, list[str]] = {}
    for uid, config in device["components"].items():
        platform = config.pop("platform")
        conf = disc.MQTTDiscoveryPayload(config)
        conf["device"], conf["origin"] = device["device"], device.get("origin")
        disc._merge_common_device_options(conf, device)
        if "~" in conf:
            disc._replace_topic_base(conf)
        out[uid] = _platform(platform, dict(conf))
        # a device-level qos passes the device schema but is not a shared option
        if "qos" in device and "qos" not in config and platform in _QOS_PLATFORMS:
            out[uid].append("qos only at device level: HA ignores it (not in SHARED_OPTIONS)")
    return out


_QOS_PLATFORMS = {"sensor", "binary_sensor", "switch", "select", "number", "button", "text"}


def _platform(platform: str, conf: dict[str, Any]) -> list[str]:
    module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
    warnings = _Warnings()
    logger = logging.getLogger(module.__name__)
    logger.addHandler(warnings)
    try:
        valid = module.DISCOVERY_SCHEMA(conf)
    except vol.Invalid as err:
        return [f"schema: {err}"]
    finally:
        logger.removeHandler(warnings)
    problems = [f"HA warns: {line}" for line in warnings.lines]
    problems += [f"key ignored by HA: {k}" for k in conf if k not in valid]
    if platform == "sensor":
        problems += _sensor({**conf, **valid})
    return problems


def _device_based() -> bool:
    return hasattr(disc, "DEVICE_DISCOVERY_SCHEMA")  # HA 2024.11 and newer


async def _run(catalog: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(topic, component, problem) for every problem, inside a bare HomeAssistant: newer HA
    validates templates against the running instance."""
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        frame.async_setup(hass)
        found = []
        for topic, payload in catalog.items():
            for uid, problems in check_device(payload).items():
                found += [(topic, uid, p) for p in problems]
        await hass.async_stop(force=True)
    return found


def main(path: str) -> int:
    catalog: dict[str, dict[str, Any]] = json.loads(Path(path).read_text(encoding="utf-8"))
    count = sum(len(p["components"]) for p in catalog.values())
    if _device_based():
        found = asyncio.run(_run(catalog))
        how = "device-based discovery"
    else:
        found = [(topic, uid, problem) for topic, payload in catalog.items()
                 for uid, comp in payload["components"].items()
                 for problem in check(comp, payload)]
        how = "each component alone"
    for topic, uid, problem in found:
        print(f"{topic} {uid}: {problem}")
    print(f"Home Assistant {__version__} ({how}): {count} components in {len(catalog)} "
          f"discovery messages, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
