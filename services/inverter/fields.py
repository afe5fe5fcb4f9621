"""Normalized inverter and meter fields (DESIGN.md), with their Home Assistant descriptions.

SunSpec and Aurora both decode straight to these names (sunspec.py, aurora.py): this table
describes them for the state, the per-field topics, HA discovery and the docs.
"""

from __future__ import annotations

from services.core.fields import FieldSpec
from services.inverter.types import STATUSES

_DIAG = "diagnostic"
_PHASES = ("L1", "L2", "L3")
_STATUS_WORDS = (
    ("off", "Arrêté"), ("sleeping", "En veille (nuit)"), ("starting", "Démarrage"),
    ("mppt", "Production (MPPT)"), ("throttled", "Production bridée"),
    ("shutting_down", "Arrêt en cours"), ("fault", "Défaut"), ("standby", "En attente"),
)

INVERTER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="manufacturer", name="Fabricant", entity_category=_DIAG,
              description="SunSpec model 1 Mn (Aurora: ABB)."),
    FieldSpec(key="model", name="Modèle", entity_category=_DIAG, description="Model 1 Md."),
    FieldSpec(key="serial", name="Numéro de série", entity_category=_DIAG,
              description="Model 1 SN; the device's SunSpec chain is cached by it."),
    FieldSpec(key="firmware", name="Micrologiciel", entity_category=_DIAG, enabled=False,
              description="Model 1 Vr."),
    FieldSpec(key="status", name="État", options=STATUSES, icon="mdi:solar-power",
              words=_STATUS_WORDS,
              description="St (SunSpec operating state); 'sleeping' also when the device "
              "does not answer at night, or reports neither St nor power."),
    FieldSpec(key="ac_power_w", name="Puissance AC", unit="W", device_class="power",
              state_class="measurement", description="W: AC power produced (0 asleep)."),
    FieldSpec(key="ac_energy_wh", name="Énergie produite", unit="Wh", device_class="energy",
              state_class="total_increasing",
              description="WH: lifetime AC energy; never steps back (a step back is an "
              "event), held while asleep, absent when unknown (never 0)."),
    FieldSpec(key="ac_voltage_v", name="Tension AC", unit="V", device_class="voltage",
              state_class="measurement", item_names=_PHASES,
              description="PhVphA..C, one per phase present."),
    FieldSpec(key="ac_current_a", name="Courant AC", unit="A", device_class="current",
              state_class="measurement", item_names=_PHASES,
              description="AphA..C (or A on a single phase)."),
    FieldSpec(key="ac_frequency_hz", name="Fréquence AC", unit="Hz",
              device_class="frequency", state_class="measurement", description="Hz."),
    FieldSpec(key="dc_power_w", name="Puissance DC", unit="W", device_class="power",
              state_class="measurement", description="DCW (or the sum of model 160's)."),
    FieldSpec(key="dc_voltage_v", name="Tension DC", unit="V", device_class="voltage",
              state_class="measurement", description="DCV."),
    FieldSpec(key="dc_current_a", name="Courant DC", unit="A", device_class="current",
              state_class="measurement", description="DCA."),
    FieldSpec(key="mppt", name="Entrées MPPT", discover=False,
              description="Model 160 (or Aurora inputs): a list of {dc_voltage_v, "
              "dc_current_a, dc_power_w} per tracker."),
    FieldSpec(key="temperature_c", name="Température", unit="°C",
              device_class="temperature", state_class="measurement",
              entity_category=_DIAG, description="TmpCab, else TmpSnk."),
    FieldSpec(key="rated_power_w", name="Puissance nominale", unit="W", device_class="power",
              entity_category=_DIAG, description="Model 120 WRtg."),
)

METER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="power_w", name="Puissance", unit="W", device_class="power",
              state_class="measurement", description="W: + drawn, − fed in (SunSpec sign)."),
    FieldSpec(key="power_phase_w", name="Puissance", unit="W", device_class="power",
              state_class="measurement", item_names=_PHASES, description="WphA..C."),
    FieldSpec(key="energy_import_wh", name="Énergie soutirée", unit="Wh",
              device_class="energy", state_class="total_increasing",
              description="TotWhImp; never steps back."),
    FieldSpec(key="energy_export_wh", name="Énergie injectée", unit="Wh",
              device_class="energy", state_class="total_increasing",
              description="TotWhExp; never steps back."),
)

# One table for the registry and the docs: inverter and meter keys do not clash (a meter
# shares only the identity fields, the AC voltage and the frequency with an inverter).
FIELDS: tuple[FieldSpec, ...] = INVERTER_FIELDS + METER_FIELDS

ENERGY_KEYS = ("ac_energy_wh", "energy_import_wh", "energy_export_wh")
