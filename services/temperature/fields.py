"""Normalized temperature field (DESIGN.md), with its Home Assistant description."""

from __future__ import annotations

from services.core.fields import FieldSpec

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="temperature_c", name="Température", unit="°C", device_class="temperature",
              state_class="measurement", precision=1,
              description="The probe's last good read (CRC YES, not all-zero, -55..125 °C, not "
              "the 85 °C power-on value, a jump confirmed by the next read); a failed read "
              "publishes nothing."),
)
