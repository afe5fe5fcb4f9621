"""The services enerbox knows: name -> where its service class and field table live.

Service code is imported lazily, by name, so one broken or absent service never stops
another from starting (their config sections are in ``root_config``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceEntry:
    """Where a service's class is, and what it does."""

    name: str
    service: str  # "module:ClassName" of its Service subclass
    description: str
    fields: str | None = None  # "module:NAME" of its FieldSpec table (device services)


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry(
            "teleinfo",
            "services.teleinfo.service:TeleinfoService",
            "Linky TIC reader (historique and standard modes)",
            "services.teleinfo.fields:FIELDS",
        ),
        ServiceEntry(
            "vedirect",
            "services.vedirect.service:VedirectService",
            "Victron VE.Direct reader (battery monitors, MPPT chargers, inverters, chargers)",
            "services.vedirect.fields:FIELDS",
        ),
        ServiceEntry(
            "inverter",
            "services.inverter.service:InverterService",
            "PV inverters and meters: SunSpec over Modbus TCP/RTU, ABB Aurora on RS485",
            "services.inverter.fields:FIELDS",
        ),
        ServiceEntry(
            "temperature",
            "services.temperature.service:TemperatureService",
            "1-Wire DS18B20 temperature probes, read through the kernel's w1 sysfs tree",
            "services.temperature.fields:FIELDS",
        ),
        ServiceEntry(
            "pulses",
            "services.pulses.service:PulsesService",
            "S0 pulse meters (MID sub-meters) on GPIO: count, power, persisted index",
            "services.pulses.fields:FIELDS",
        ),
        ServiceEntry(
            "relays",
            "services.relays.service:RelaysService",
            "Relays and fil pilote radiators: user orders, automations, shedding, safe states",
        ),
        ServiceEntry(
            "shedding",
            "services.shedding.service:SheddingService",
            "Load shedding before the Linky breaker trips",
        ),
        ServiceEntry(
            "automation",
            "services.automation.service:AutomationService",
            "Automation: surplus routing, tariff rules, schedules and daily minimums per load",
        ),
        ServiceEntry(
            "historian",
            "services.historian.service:HistorianService",
            "Local history, daily energy ledger, InfluxDB and emoncms, store-and-forward",
        ),
        ServiceEntry(
            "display",
            "services.display.service:DisplayService",
            "Local display: OLED screens, a TM1638 board, indicator LEDs, buttons to relays",
        ),
        ServiceEntry(
            "api",
            "services.api.service:ApiService",
            "REST API, WebSocket and web page (port 8080)",
        ),
    )
}


def load(ref: str) -> Any:
    """Import 'module:attribute'."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
