"""Field labels for the page's history chooser: the device services' FieldSpec names."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from services.core.fields import FieldSpec

# Services whose fields.py holds the FIELDS table (DESIGN.md's normalized fields).
SERVICES = ("teleinfo", "vedirect", "inverter", "pulses", "temperature")


@cache
def field_labels() -> dict[str, dict[str, str]]:
    """service -> field key -> its human name ("apparent_power_va" -> "Apparent power")."""
    out: dict[str, dict[str, str]] = {}
    for service in SERVICES:
        specs: tuple[FieldSpec, ...] = import_module(f"services.{service}.fields").FIELDS
        out[service] = {spec.key: spec.name for spec in specs}
    return out
