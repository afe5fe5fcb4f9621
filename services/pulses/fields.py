"""Normalized pulse meter fields (DESIGN.md), with their Home Assistant descriptions."""

from __future__ import annotations

from services.core.fields import FieldSpec

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="power_w", name="Puissance", unit="W", device_class="power",
              state_class="measurement",
              description="From the interval between accepted pulses (their span when "
              "several came since the last publication), bounded by one pulse's energy over "
              "the time since the last, 0 after zero_after_s; absent until a first interval "
              "was measured since start."),
    FieldSpec(key="energy_wh", name="Index", unit="Wh", device_class="energy",
              state_class="total_increasing",
              description="The meter's index: the saved (or calibrated) index plus the pulses "
              "counted since × wh_per_pulse; never decreases, saved every save_every_s and "
              "at a clean stop."),
    FieldSpec(key="pulses_total", name="Impulsions", state_class="total_increasing",
              icon="mdi:pulse", entity_category="diagnostic",
              description="Pulses accepted since the meter was first counted (persisted)."),
    FieldSpec(key="wh_per_pulse", name="Énergie par impulsion", unit="Wh",
              entity_category="diagnostic", description="1000 / imp_per_kwh."),
)
