"""VE.Direct labels -> normalized vedirect fields (DESIGN.md), with their HA descriptions.

``---`` means "no value" and leaves the field out; a value that does not parse is left out
too (never published as 0). Enumerations give a name and keep the number in ``<key>_code``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.core.fields import FieldSpec
from services.vedirect import enums
from services.vedirect.pids import product_name

Convert = Callable[[str], Any]
_DIAG = "diagnostic"


def _milli(v: str) -> float:
    return int(v) / 1000


def _centi(v: str) -> float:
    return int(v) / 100


def _deci(v: str) -> float:
    return int(v) / 10


def _on(v: str) -> bool:
    upper = v.upper()  # old BMV firmware sends On/Off
    if upper not in ("ON", "OFF"):
        raise ValueError(v)
    return upper == "ON"


def _ttg(v: str) -> int:
    minutes = int(v)
    if minutes < 0:  # -1: infinite (charging); no number to give
        raise ValueError(v)
    return minutes


def firmware(v: str) -> str:
    """FW '0308' -> '3.08', '150' -> '1.50', 'C208' -> '2.08-c' (release candidate);
    FWE '316FF' -> '3.16' (FF = release), '31605' -> '3.16-beta-05'."""
    if len(v) in (5, 6):
        version, build = v[:-2], v[-2:].upper()
        n = int(version)
        return f"{n // 100}.{n % 100:02d}" + ("" if build == "FF" else f"-beta-{build}")
    if v[:1].isalpha():
        n = int(v[1:])
        return f"{n // 100}.{n % 100:02d}-{v[0].lower()}"
    n = int(v)
    return f"{n // 100}.{n % 100:02d}"


# label -> (normalized key, converter)
SCALARS: dict[str, tuple[str, Convert]] = {
    "SER#": ("serial", str),
    "FW": ("firmware", firmware),
    "FWE": ("firmware", firmware),
    "HC#": ("hardware_revision", str),
    "V": ("battery_voltage_v", _milli),
    "V2": ("battery2_voltage_v", _milli),
    "V3": ("battery3_voltage_v", _milli),
    "VS": ("starter_voltage_v", _milli),
    "VM": ("midpoint_voltage_v", _milli),
    "DM": ("midpoint_deviation_pct", _deci),
    "VPV": ("pv_voltage_v", _milli),
    "PPV": ("pv_power_w", int),
    "I": ("battery_current_a", _milli),
    "I2": ("battery2_current_a", _milli),
    "I3": ("battery3_current_a", _milli),
    "IL": ("load_current_a", _milli),
    "LOAD": ("load_on", _on),
    "Alarm": ("alarm", _on),
    "Relay": ("relay_on", _on),
    "T": ("temperature_c", int),
    "P": ("power_w", int),
    "CE": ("consumed_ah", _milli),
    "SOC": ("soc_pct", _deci),
    "TTG": ("time_to_go_min", _ttg),
    "H1": ("h1_deepest_discharge_ah", _milli),
    "H2": ("h2_last_discharge_ah", _milli),
    "H3": ("h3_average_discharge_ah", _milli),
    "H4": ("h4_charge_cycles", int),
    "H5": ("h5_full_discharges", int),
    "H6": ("h6_cumulative_ah", _milli),
    "H7": ("h7_min_battery_voltage_v", _milli),
    "H8": ("h8_max_battery_voltage_v", _milli),
    "H9": ("h9_since_full_charge_s", int),
    "H10": ("h10_auto_syncs", int),
    "H11": ("h11_low_voltage_alarms", int),
    "H12": ("h12_high_voltage_alarms", int),
    "H13": ("h13_low_starter_voltage_alarms", int),
    "H14": ("h14_high_starter_voltage_alarms", int),
    "H15": ("h15_min_starter_voltage_v", _milli),
    "H16": ("h16_max_starter_voltage_v", _milli),
    "H17": ("h17_discharged_kwh", _centi),
    "H18": ("h18_charged_kwh", _centi),
    "H19": ("yield_total_kwh", _centi),
    "H20": ("yield_today_kwh", _centi),
    "H21": ("max_power_today_w", int),
    "H22": ("h22_yield_yesterday_kwh", _centi),
    "H23": ("h23_max_power_yesterday_w", int),
    "HSDS": ("day_sequence", int),
    "AC_OUT_V": ("ac_out_voltage_v", _centi),
    "AC_OUT_I": ("ac_out_current_a", _deci),
    "AC_OUT_S": ("ac_out_apparent_power_va", int),
    "DC_IN_V": ("dc_in_voltage_v", _centi),
    "DC_IN_I": ("dc_in_current_a", _deci),
    "DC_IN_P": ("dc_in_power_w", int),
}
# label -> (key, table): name in <key>, number in <key>_code
ENUMS: dict[str, tuple[str, dict[int, str]]] = {
    "CS": ("charge_state", enums.CHARGE_STATE),
    "ERR": ("error", enums.ERROR),
    "MPPT": ("tracker_mode", enums.TRACKER),
    "MODE": ("mode", enums.MODE),
    "MON": ("monitor_mode", enums.MONITOR),
}
# label -> (key, bit names, base): list of names in <key>, number in <key>_code
MASKS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "AR": ("alarm_reason", enums.ALARM_BITS, 10),
    "WARN": ("warning", enums.ALARM_BITS, 10),
    "OR": ("off_reason", enums.OFF_REASON_BITS, 16),  # sent as 0x%08X
}


def normalize(raw: dict[str, str]) -> dict[str, Any]:
    """Normalized fields of a merged reading; absent or unparsable values are left out."""
    out: dict[str, Any] = {}
    pid = raw.get("PID")
    if pid is not None:
        try:
            code = int(pid, 16)
        except ValueError:
            pass
        else:
            out["product_id"] = f"0x{code:04X}"
            out["product_name"] = product_name(code)
    for label, value in raw.items():
        if value == "---":
            continue
        try:
            if label in SCALARS:
                key, convert = SCALARS[label]
                out[key] = convert(value)
            elif label in ENUMS:
                key, table = ENUMS[label]
                number = int(value)
                out[key] = enums.name_of(table, number)
                out[f"{key}_code"] = number
            elif label in MASKS:
                key, bits, base = MASKS[label]
                mask = int(value, base)
                out[key] = enums.bit_names(bits, mask)
                out[f"{key}_code"] = mask
        except ValueError:
            continue  # not a number where one is due: leave it out
    return out


def _s(key: str, name: str, unit: str | None = None, dc: str | None = None,
       sc: str | None = "measurement", **kw: Any) -> FieldSpec:
    if unit == "V":  # millivolts on the wire: a battery's 13.49 V, not 13.5
        kw.setdefault("precision", 2)
    return FieldSpec(key=key, name=name, unit=unit, device_class=dc, state_class=sc, **kw)


_V, _A, _W = ("V", "voltage"), ("A", "current"), ("W", "power")
FIELDS: tuple[FieldSpec, ...] = (
    _s("product_id", "Identifiant produit", sc=None, entity_category=_DIAG, enabled=False),
    _s("product_name", "Produit", sc=None, entity_category=_DIAG),
    _s("serial", "Numéro de série", sc=None, entity_category=_DIAG),
    _s("firmware", "Micrologiciel", sc=None, entity_category=_DIAG),
    _s("battery_voltage_v", "Tension batterie", *_V),
    _s("battery2_voltage_v", "Tension batterie 2", *_V),
    _s("battery3_voltage_v", "Tension batterie 3", *_V),
    _s("starter_voltage_v", "Tension batterie de démarrage", *_V),
    _s("midpoint_voltage_v", "Tension point milieu", *_V),
    _s("midpoint_deviation_pct", "Écart point milieu", "%"),
    _s("battery_current_a", "Courant batterie", *_A),
    _s("battery2_current_a", "Courant batterie 2", *_A),
    _s("battery3_current_a", "Courant batterie 3", *_A),
    _s("power_w", "Puissance", *_W),
    _s("soc_pct", "État de charge", "%", "battery"),
    _s("consumed_ah", "Consommé", "Ah", icon="mdi:battery-minus"),
    _s("time_to_go_min", "Autonomie restante", "min", "duration"),
    _s("temperature_c", "Température batterie", "°C", "temperature"),
    _s("pv_voltage_v", "Tension PV", *_V),
    _s("pv_power_w", "Puissance PV", *_W),
    _s("load_current_a", "Courant sortie charge", *_A),
    _s("load_on", "Sortie charge", dc="power", sc=None, component="binary_sensor"),
    _s("charge_state", "Phase de charge", sc=None, icon="mdi:battery-charging"),
    _s("tracker_mode", "Suivi MPP", sc=None),
    _s("error", "Erreur", sc=None, icon="mdi:alert-circle-outline"),
    _s("off_reason", "Raison de l'arrêt", sc=None, discover=False),
    _s("alarm", "Alarme", dc="problem", sc=None, component="binary_sensor"),
    _s("alarm_reason", "Raison de l'alarme", sc=None, discover=False),
    _s("warning", "Avertissement", sc=None, discover=False),
    _s("relay_on", "Relais", component="binary_sensor", sc=None),
    _s("mode", "Mode de l'appareil", sc=None),
    _s("monitor_mode", "Mode du moniteur", sc=None, entity_category=_DIAG),
    _s("yield_total_kwh", "Production totale", "kWh", "energy", "total_increasing"),
    _s("yield_today_kwh", "Production du jour", "kWh", "energy", "total_increasing"),
    _s("max_power_today_w", "Puissance max du jour", *_W, sc=None),
    _s("ac_out_voltage_v", "Tension sortie AC", *_V),
    _s("ac_out_current_a", "Courant sortie AC", *_A),
    _s("ac_out_apparent_power_va", "Puissance sortie AC", "VA", "apparent_power"),
    _s("dc_in_voltage_v", "Tension entrée DC", *_V),
    _s("dc_in_current_a", "Courant entrée DC", *_A),
    _s("dc_in_power_w", "Puissance entrée DC", *_W),
    _s("h1_deepest_discharge_ah", "Décharge la plus profonde", "Ah", enabled=False),
    _s("h2_last_discharge_ah", "Dernière décharge", "Ah", enabled=False),
    _s("h3_average_discharge_ah", "Décharge moyenne", "Ah", enabled=False),
    _s("h4_charge_cycles", "Cycles de charge", sc="total_increasing"),
    _s("h5_full_discharges", "Décharges complètes", sc="total_increasing", enabled=False),
    _s("h6_cumulative_ah", "Ah cumulés tirés", "Ah", enabled=False),
    _s("h7_min_battery_voltage_v", "Tension batterie minimale", *_V, enabled=False),
    _s("h8_max_battery_voltage_v", "Tension batterie maximale", *_V, enabled=False),
    _s("h9_since_full_charge_s", "Depuis la dernière charge complète", "s", "duration"),
    _s("h10_auto_syncs", "Synchronisations automatiques", enabled=False),
    _s("h11_low_voltage_alarms", "Alarmes tension basse", enabled=False),
    _s("h12_high_voltage_alarms", "Alarmes tension haute", enabled=False),
    _s("h13_low_starter_voltage_alarms", "Alarmes tension basse démarrage", enabled=False),
    _s("h14_high_starter_voltage_alarms", "Alarmes tension haute démarrage", enabled=False),
    _s("h15_min_starter_voltage_v", "Tension démarrage minimale", *_V, enabled=False),
    _s("h16_max_starter_voltage_v", "Tension démarrage maximale", *_V, enabled=False),
    _s("h17_discharged_kwh", "Énergie déchargée", "kWh", "energy", "total_increasing"),
    _s("h18_charged_kwh", "Énergie chargée", "kWh", "energy", "total_increasing"),
    _s("h22_yield_yesterday_kwh", "Production d'hier", "kWh", "energy", None),
    _s("h23_max_power_yesterday_w", "Puissance max d'hier", *_W, sc=None, enabled=False),
    _s("day_sequence", "Numéro du jour", sc=None, entity_category=_DIAG, enabled=False),
    _s("hardware_revision", "Révision matérielle", sc=None, entity_category=_DIAG,
       enabled=False),
)
# Enum codes and mask numbers are for scripts; HA gets the names.
FIELDS += tuple(
    _s(f"{key}_code", f"{key} code", sc=None, discover=False)
    for key in ("charge_state", "error", "tracker_mode", "mode", "monitor_mode",
                "alarm_reason", "warning", "off_reason")
)
FIELD_KEYS = frozenset(f.key for f in FIELDS)
# A change in one of these goes out at once, whatever the rate limit.
IMMEDIATE = ("charge_state_code", "error_code", "alarm", "alarm_reason_code", "relay_on",
             "load_on", "mode_code", "off_reason_code", "warning_code")
