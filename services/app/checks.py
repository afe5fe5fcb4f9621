"""References between sections, which no single section can check: the one place that
sees every section is here.

Errors stop ``load_config`` (a service would act on a wrong picture of the box); warnings
are only printed by ``enerbox config check`` (a serial adapter may be plugged in later, and
the device services wait for their port).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.app.root_config import EnerboxConfig


def cross_reference_errors(config: EnerboxConfig) -> list[str]:
    """Shedding loads and meter that do not exist, relays sharing a board's output, the
    automation's relays and signals."""
    return [*_shedding_references(config), *_shared_outputs(config),
            *_automation_references(config)]


# Device services DESIGN.md names whose field tables are not in the registry yet: a signal
# may follow them (their fields are checked once they exist).
_FUTURE_DEVICE_SERVICES = frozenset({"inverter", "pulses", "temperature"})


def _automation_references(config: EnerboxConfig) -> list[str]:
    """Loads on relays that exist, with the right kind; sheddable loads with their power;
    signals on a known service and field."""
    from services.automation.conditions import uses_relays  # noqa: PLC0415 (cycle-free)

    auto = config.automation
    relays = {r.id: r for r in config.relays.relays}
    known = ", ".join(relays) or "none"
    shed = {load.relay for load in config.shedding.loads}
    errors = []
    for i, load in enumerate(auto.loads):
        key = f"automation.loads.{i}"
        relay = relays.get(load.relay)
        if relay is None:
            errors.append(f"{key}.relay = {load.relay!r}: no such relay in relays.relays "
                          f"(known: {known})")
        elif relay.kind != "fil_pilote" and any(e.order for e in load.schedule):
            errors.append(f"{key}.schedule: orders are for a fil pilote zone, and relay "
                          f"{load.relay!r} is a switch")
        if load.relay in shed and load.power_w is None:
            errors.append(f"{key}.power_w: relay {load.relay!r} is also a shedding load: "
                          "give its power, the allocator and shedding must agree on it")
        for what, conditions in load.conditions().items():
            for other in sorted(uses_relays(conditions)):
                if other not in relays:
                    errors.append(f"{key}.{what}: relay {other!r} does not exist "
                                  f"(known: {known})")
    errors += _signal_sources(config)
    return errors


def _signal_sources(config: EnerboxConfig) -> list[str]:
    from services.app.registry import SERVICES, load  # noqa: PLC0415 (lazy: field tables)

    errors = []
    for name, signal in config.automation.signals.items():
        service = signal.source.split("/", 1)[0]
        key = f"automation.signals.{name}"
        entry = SERVICES.get(service)
        if entry is None and service not in _FUTURE_DEVICE_SERVICES:
            errors.append(f"{key}.source = {signal.source!r}: no device service {service!r} "
                          f"(known: {', '.join(sorted(SERVICES))})")
        elif entry is not None and entry.fields is not None:
            fields = {spec.key for spec in load(entry.fields)}
            if signal.field not in fields:
                errors.append(f"{key}.field = {signal.field!r}: {service} publishes no such "
                              f"field (e.g. {', '.join(sorted(fields)[:6])}, ...)")
    return errors


def _shedding_references(config: EnerboxConfig) -> list[str]:
    shedding = config.shedding
    relays = [r.id for r in config.relays.relays]
    errors = [
        f"shedding.loads.{i}.relay = {load.relay!r}: no such relay in relays.relays "
        f"(known: {', '.join(relays) or 'none'})"
        for i, load in enumerate(shedding.loads) if load.relay not in relays
    ]
    # Only a shedding that has loads follows a meter: the default meter id must not stop a
    # box whose meter has another id and that sheds nothing.
    meters = [m.id for m in config.teleinfo.meters]
    if shedding.loads and shedding.meter not in meters:
        errors.append(f"shedding.meter = {shedding.meter!r}: no such meter in "
                      f"teleinfo.meters (known: {', '.join(meters) or 'none'})")
    return errors


def _shared_outputs(config: EnerboxConfig) -> list[str]:
    """Two relays (or a zone's two channels) on one output of one board."""
    errors = []
    used: dict[tuple[str, int], str] = {}
    for i, relay in enumerate(config.relays.relays):
        if relay.kind == "fil_pilote" and relay.channels is not None:
            outputs = [(f"relays.relays.{i}.channels.{n}", c) for n, c in enumerate(relay.channels)]
        elif relay.channel is not None:
            outputs = [(f"relays.relays.{i}.channel", relay.channel)]
        else:
            outputs = []
        for key, channel in outputs:
            where = (relay.board, channel)
            if where in used:
                errors.append(f"{key} = {channel}: output {channel} of board {relay.board!r} "
                              f"is already used by {used[where]}")
            else:
                used[where] = f"{key} (relay {relay.id!r})"
    return errors


def _is_device_path(port: str) -> bool:
    """A file path (/dev/...), not a pyserial URL (socket://, rfc2217://, loop://)."""
    return "://" not in port


def warnings(config: EnerboxConfig) -> list[str]:
    """Serial ports that do not exist now (they may be plugged in later)."""
    ports = [(f"teleinfo.meters.{i}.port", m.port) for i, m in enumerate(config.teleinfo.meters)]
    ports += [(f"vedirect.ports.{i}.port", p.port) for i, p in enumerate(config.vedirect.ports)]
    return [
        f"{key} = {port!r}: no such serial port now (the service waits for it to appear)"
        for key, port in ports if _is_device_path(port) and not Path(port).exists()
    ]
