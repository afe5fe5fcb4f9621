"""Build services from the whole configuration and run them (``enerbox run``,
``python -m services.<name>``)."""

from __future__ import annotations

from typing import Any

from services.app.registry import SERVICES, load
from services.app.root_config import EnerboxConfig, load_config, settings_for
from services.core import service as lifecycle
from services.core.bus import Bus
from services.core.service import Service


def build(name: str, config: EnerboxConfig) -> Service[Any]:
    """Instantiate a registered service with its own settings and its own bus."""
    entry = SERVICES.get(name)
    if entry is None:
        raise KeyError(f"unknown service {name!r} (known: {', '.join(sorted(SERVICES))})")
    cls: type[Service[Any]] = load(entry.service)
    settings = settings_for(name, config)
    bus = Bus(settings.mqtt, name, durable_session_s=cls.session_expiry_s(settings))
    return cls(settings, bus)


def run(names: list[str], config_file: str | None = None) -> int:
    """Run services until SIGTERM/SIGINT; returns the process exit code."""
    return lifecycle.run(names, config_file, load_config=load_config, build=build)
