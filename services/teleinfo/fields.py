"""TIC labels -> normalized teleinfo fields (DESIGN.md), for both modes.

Index names are shared by both modes so the historian can follow one meter across a mode
switch: ``base``, ``hc``/``hp``, ``ejp_normal``/``ejp_peak``, ``blue_hc`` … ``red_hp``;
standard-mode indexes of an unknown supplier calendar keep their label (``easf01``).
``tariff_period`` is the name of the index running now.
"""

from __future__ import annotations

from typing import Any

from services.core.fields import FieldSpec
from services.teleinfo.protocol import Frame, Mode

_DIAG = "diagnostic"
_PHASES = ("L1", "L2", "L3")
_COLOURS = ("blue", "white", "red")
_TEMPO_OPTIONS = (*_COLOURS, "unknown")  # unknown: said explicitly, so no old colour lingers
# Historique has no injection label: PAPP counts drawn power only. With PAPP at 0 and a
# current flowing, the house is feeding in; LinkyMonitor's estimate is -IINST x 230 V.
NOMINAL_VOLTAGE_V = 230
# What HA shows for the raw values (the JSON keeps them): the page's French words.
INDEX_WORDS = (
    ("base", "Base"), ("hc", "HC"), ("hp", "HP"), ("ejp_normal", "EJP normal"),
    ("ejp_peak", "EJP pointe mobile"), ("blue_hc", "HC bleu"), ("blue_hp", "HP bleu"),
    ("white_hc", "HC blanc"), ("white_hp", "HP blanc"), ("red_hc", "HC rouge"),
    ("red_hp", "HP rouge"),
)
_TEMPO_WORDS = (("blue", "Bleu"), ("white", "Blanc"), ("red", "Rouge"), ("unknown", "Inconnue"))
_OPTION_WORDS = (("base", "Base"), ("hc", "Heures creuses"), ("ejp", "EJP"),
                 ("tempo", "Tempo"), ("producer", "Producteur"))

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="meter_id", name="Identifiant du compteur", entity_category=_DIAG,
              icon="mdi:meter-electric",
              description="ADCO (historique) or ADSC (standard)."),
    FieldSpec(key="tic_mode", name="Mode TIC", entity_category=_DIAG,
              options=("historique", "standard")),
    FieldSpec(key="tariff_option", name="Option tarifaire", words=_OPTION_WORDS,
              description="base, hc, ejp, tempo, producer, or the supplier's calendar name."),
    FieldSpec(key="tariff_period", name="Période tarifaire", icon="mdi:clock-outline",
              words=INDEX_WORDS,
              description="Key of the running index in energy_import_by_index_wh."),
    FieldSpec(key="tariff_label", name="Libellé tarifaire", enabled=False,
              description="The meter's own text for the running period (PTEC or LTARF)."),
    FieldSpec(key="subscribed_current_a", name="Intensité souscrite", unit="A",
              device_class="current", entity_category=_DIAG, description="ISOUSC."),
    FieldSpec(key="subscribed_power_kva", name="Puissance souscrite", unit="kVA",
              device_class="apparent_power", entity_category=_DIAG, description="PREF."),
    FieldSpec(key="cutoff_power_kva", name="Puissance de coupure", unit="kVA",
              device_class="apparent_power", entity_category=_DIAG, description="PCOUP."),
    FieldSpec(key="apparent_power_va", name="Puissance apparente", unit="VA",
              device_class="apparent_power", state_class="measurement",
              description="PAPP or SINSTS: drawn from the grid."),
    FieldSpec(key="apparent_power_phase_va", name="Puissance apparente", unit="VA",
              device_class="apparent_power", state_class="measurement", item_names=_PHASES,
              description="SINSTS1..3, one per phase."),
    FieldSpec(key="injected_power_va", name="Puissance injectée", unit="VA",
              device_class="apparent_power", state_class="measurement",
              description="SINSTI: fed into the grid (producers)."),
    FieldSpec(key="current_a", name="Intensité", unit="A", device_class="current",
              state_class="measurement", item_names=_PHASES,
              description="IINST, IINST1..3 or IRMS1..3, one per phase."),
    FieldSpec(key="voltage_v", name="Tension", unit="V", device_class="voltage",
              state_class="measurement", item_names=_PHASES, description="URMS1..3."),
    FieldSpec(key="energy_import_wh", name="Index total", unit="Wh", device_class="energy",
              state_class="total_increasing",
              description="EAST, or the sum of the tariff indexes in historique."),
    FieldSpec(key="energy_import_by_index_wh", name="Index", unit="Wh",
              device_class="energy", state_class="total_increasing", mapping=True,
              words=INDEX_WORDS,
              description="One counter per tariff index, named as tariff_period."),
    FieldSpec(key="energy_export_wh", name="Index injection", unit="Wh", device_class="energy",
              state_class="total_increasing", description="EAIT (producers)."),
    FieldSpec(key="overload", name="Dépassement", component="binary_sensor",
              device_class="problem",
              description="ADPS/ADIRx present, or STGE 'reference power exceeded'."),
    FieldSpec(key="overload_phases", name="Phases en dépassement", discover=False,
              description="Phase numbers over the limit."),
    FieldSpec(key="ejp_notice", name="Préavis pointe mobile", component="binary_sensor",
              description="PEJP present, or STGE mobile-peak notice."),
    FieldSpec(key="net_power_va", name="Puissance nette", unit="VA", device_class="apparent_power",
              state_class="measurement", icon="mdi:transmission-tower",
              description="+ drawn, - fed in: SINSTS - SINSTI, or PAPP (historique; when "
                          "PAPP is 0 and IINST is not, -IINST x 230, flagged)."),
    FieldSpec(key="net_power_estimated", name="Puissance nette estimée", component="binary_sensor",
              entity_category=_DIAG,
              description="net_power_va is the historique export estimate from IINST."),
    FieldSpec(key="tempo_today", name="Couleur Tempo du jour", options=_TEMPO_OPTIONS,
              words=_TEMPO_WORDS,
              description="PTEC, STGE bits 24-25, else LTARF's colour; unknown on a Tempo "
                          "meter that names none."),
    FieldSpec(key="tempo_tomorrow", name="Couleur Tempo demain", options=_TEMPO_OPTIONS,
              words=_TEMPO_WORDS,
              description="DEMAIN or STGE bits 26-27; unknown when DEMAIN is ---- (blue "
                          "is never announced) or the bits are 0."),
    FieldSpec(key="relay_closed", name="Contact sec du compteur", component="binary_sensor",
              description="STGE bit 0: the dry contact (water heater relay) is closed."),
    FieldSpec(key="breaker_closed", name="Organe de coupure fermé", component="binary_sensor",
              device_class="power", description="STGE bits 1-3: the cut-off device is closed."),
    FieldSpec(key="meter_time", name="Horloge du compteur", device_class="timestamp",
              entity_category=_DIAG, description="DATE, ISO 8601 with the meter's offset."),
)
FIELD_KEYS = frozenset(f.key for f in FIELDS)

# --- historique ------------------------------------------------------------------------------

_HIST_INDEXES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("BASE", "base"),),
    (("HCHC", "hc"), ("HCHP", "hp")),
    (("EJPHN", "ejp_normal"), ("EJPHPM", "ejp_peak")),
    (("BBRHCJB", "blue_hc"), ("BBRHPJB", "blue_hp"), ("BBRHCJW", "white_hc"),
     ("BBRHPJW", "white_hp"), ("BBRHCJR", "red_hc"), ("BBRHPJR", "red_hp")),
)
_PTEC = {
    "TH..": "base", "HC..": "hc", "HP..": "hp", "HN..": "ejp_normal", "PM..": "ejp_peak",
    "HCJB": "blue_hc", "HPJB": "blue_hp", "HCJW": "white_hc", "HPJW": "white_hp",
    "HCJR": "red_hc", "HPJR": "red_hp",
}
_DEMAIN = {"BLEU": "blue", "BLAN": "white", "ROUG": "red"}

# --- standard --------------------------------------------------------------------------------

# Supplier index order per calendar (NGTF); EASFnn is the nn-th name.
_STD_CALENDARS: dict[str, tuple[str, tuple[str, ...]]] = {
    "TEMPO": ("tempo", ("blue_hc", "blue_hp", "white_hc", "white_hp", "red_hc", "red_hp")),
    "BASE": ("base", ("base",)),
    "H PLEINE/CREUSE": ("hc", ("hc", "hp")),
    "HC": ("hc", ("hc", "hp")),
    "EJP": ("ejp", ("ejp_normal", "ejp_peak")),
    "PRODUCTEUR": ("producer", ()),
}
_EASF = tuple(f"EASF{i:02d}" for i in range(1, 11))
_PHASE_LABELS = {p: (f"{p}1", f"{p}2", f"{p}3") for p in ("IINST", "SINSTS", "IRMS", "URMS")}
_STD_NUMBERS = (
    ("PREF", "subscribed_power_kva"), ("PCOUP", "cutoff_power_kva"),
    ("SINSTS", "apparent_power_va"), ("SINSTI", "injected_power_va"),
    ("EAST", "energy_import_wh"), ("EAIT", "energy_export_wh"),
)
_STGE_COLOUR = (None, "blue", "white", "red")
_LTARF_COLOURS = (
    ("blue", ("BLEU", "HCJB", "HPJB")), ("white", ("BLANC", "HCJW", "HPJW")),
    ("red", ("ROUGE", "HCJR", "HPJR")),
)


def _int(frame: Frame, label: str) -> int | None:
    group = frame.groups.get(label)
    return None if group is None else group.number


def _phases(frame: Frame, prefix: str) -> list[int] | None:
    """[X1] or [X1, X2, X3]; None when a three-phase list would have a hole."""
    get = frame.groups.get
    values = [None if (grp := get(lab)) is None else grp.number for lab in _PHASE_LABELS[prefix]]
    if values[1] is None and values[2] is None:
        return None if values[0] is None else [values[0]]
    if None in values:
        return None
    return values  # type: ignore[return-value]


def _rejected_label(frame: Frame, *prefixes: bytes) -> bool:
    """Did a group with one of these labels fail its checksum? Then its fact is unknown."""
    return any(raw.startswith(prefixes) for raw in frame.rejected)


def _historique(frame: Frame, out: dict[str, Any]) -> None:
    g = frame.groups
    if "ADCO" in g:
        out["meter_id"] = g["ADCO"].value
    option = frame.value("OPTARIF")
    if option is not None:
        o = option.rstrip(".")
        out["tariff_option"] = {"BASE": "base", "HC": "hc", "EJP": "ejp"}.get(
            o, "tempo" if o.startswith("BBR") else o.lower()
        )
    ptec = frame.value("PTEC")
    if ptec is not None:
        out["tariff_label"] = ptec.rstrip(".")
        out["tariff_period"] = _PTEC.get(ptec, ptec.rstrip(".").lower())
        if ptec[2:] in ("JB", "JW", "JR"):
            out["tempo_today"] = _COLOURS[("JB", "JW", "JR").index(ptec[2:])]
    for label, key in (("ISOUSC", "subscribed_current_a"), ("PAPP", "apparent_power_va")):
        value = _int(frame, label)
        if value is not None:
            out[key] = value
    iinst = _int(frame, "IINST")
    current = [iinst] if iinst is not None else _phases(frame, "IINST")
    if current is not None:
        out["current_a"] = current
    by_index: dict[str, int] = {}
    total = None
    for family in _HIST_INDEXES:
        if not any(lab in g for lab, _ in family):
            continue
        values = [_int(frame, lab) for lab, _ in family]
        for (_, key), value in zip(family, values, strict=True):
            if value is not None:
                by_index[key] = value
        if None not in values:  # a total needs every index of the option
            total = sum(values)  # type: ignore[arg-type]
    if by_index:
        out["energy_import_by_index_wh"] = by_index
    if total is not None:
        out["energy_import_wh"] = total
    demain = frame.value("DEMAIN")
    if demain is not None:  # ---- until the evening, and all day before a blue day
        out["tempo_tomorrow"] = _DEMAIN.get(demain, "unknown")
    if "PEJP" in g:
        out["ejp_notice"] = True
    elif out.get("tariff_option") == "ejp" and not _rejected_label(frame, b"PEJP"):
        out["ejp_notice"] = False
    phases = [1] if "ADPS" in g else [i for i in (1, 2, 3) if f"ADIR{i}" in g]
    if phases or not _rejected_label(frame, b"ADPS", b"ADIR"):
        out["overload"] = bool(phases)
        out["overload_phases"] = phases
    _historique_net(out)


def _historique_net(out: dict[str, Any]) -> None:
    """PAPP, or the export estimate when PAPP is 0 while a current flows."""
    papp = out.get("apparent_power_va")
    if papp is None:
        return
    if papp:
        out["net_power_va"], out["net_power_estimated"] = papp, False
        return
    current = out.get("current_a")
    if current is None:  # 0 VA drawn, but feeding in or idle? unknown
        return
    amps = sum(current)
    out["net_power_va"] = -amps * NOMINAL_VOLTAGE_V
    out["net_power_estimated"] = amps > 0


def _standard(frame: Frame, out: dict[str, Any]) -> None:
    g = frame.groups
    if "ADSC" in g:
        out["meter_id"] = g["ADSC"].value
    names: tuple[str, ...] | None = None
    ngtf = frame.value("NGTF")
    if ngtf is not None:
        calendar = " ".join(ngtf.split())
        option, names = _STD_CALENDARS.get(calendar, (calendar.lower(), None))
        out["tariff_option"] = option
    ltarf = frame.value("LTARF")
    if ltarf is not None:
        out["tariff_label"] = " ".join(ltarf.split())
    ntarf = _int(frame, "NTARF")
    if ntarf is not None and 1 <= ntarf <= 10:
        if names and ntarf <= len(names):
            out["tariff_period"] = names[ntarf - 1]
        elif ngtf is not None:
            out["tariff_period"] = f"easf{ntarf:02d}"
    get = g.get
    for label, key in _STD_NUMBERS:
        grp = get(label)
        if grp is not None and grp.number is not None:
            out[key] = grp.number
    for prefix, key in (("SINSTS", "apparent_power_phase_va"), ("IRMS", "current_a"),
                        ("URMS", "voltage_v")):
        values = _phases(frame, prefix)
        if values is not None and (prefix != "SINSTS" or len(values) == 3):
            out[key] = values
    if ngtf is not None:
        by_index: dict[str, int] = {}
        for i, grp in enumerate(map(get, _EASF)):
            if grp is None or grp.number is None:
                continue
            value, label = grp.number, grp.label
            if names is not None and i < len(names):
                by_index[names[i]] = value
            elif names is None and (value or ntarf == i + 1):
                by_index[label.lower()] = value
        if by_index:
            out["energy_import_by_index_wh"] = by_index
    reg = _stge(frame, out)
    if reg is not None and (reg >> 30) & 3 and out.get("tariff_option") == "ejp":
        out["tariff_period"] = "ejp_peak"  # mobile peak in progress, whatever NTARF said
    _standard_net(frame, out, reg)
    _standard_tempo(out, reg, ltarf)
    date = frame.groups.get("DATE")
    if date is not None and date.horodate:
        stamp = horodate_iso(date.horodate)
        if stamp:
            out["meter_time"] = stamp


def _standard_net(frame: Frame, out: dict[str, Any], reg: int | None) -> None:
    """SINSTS - SINSTI; SINSTS alone only when nothing says an injection went missing."""
    drawn = out.get("apparent_power_va")
    if drawn is None:
        return
    fed = out.get("injected_power_va")
    if fed is None and (_rejected_label(frame, b"SINSTI") or (reg is not None and reg >> 8 & 1)):
        return  # a producer (STGE bit 8) whose SINSTI is missing: its export is unknown
    out["net_power_va"] = drawn - (fed or 0)
    out["net_power_estimated"] = False


def _ltarf_colour(ltarf: str | None) -> str | None:
    """The Tempo colour named in LTARF's text ('HC  BLANC', 'HP BLEU', 'HPJR')."""
    if ltarf is None:
        return None
    text = ltarf.upper()
    for colour, words in _LTARF_COLOURS:
        if any(word in text for word in words):
            return colour
    return None


def _standard_tempo(out: dict[str, Any], reg: int | None, ltarf: str | None) -> None:
    """Colours from STGE, today's from LTARF when STGE's bits are 0; unknown said outright."""
    today = _STGE_COLOUR[reg >> 24 & 3] if reg is not None else None
    today = today or _ltarf_colour(ltarf)
    tomorrow = _STGE_COLOUR[reg >> 26 & 3] if reg is not None else None
    tempo = out.get("tariff_option") == "tempo" or today is not None or tomorrow is not None
    if not tempo:
        return  # a meter without Tempo: no colour fields at all
    if today is not None or reg is not None:
        out["tempo_today"] = today or "unknown"
    if reg is not None:  # without STGE (damaged), tomorrow is not known to be unknown
        out["tempo_tomorrow"] = tomorrow or "unknown"


def _stge(frame: Frame, out: dict[str, Any]) -> int | None:
    """Decode STGE's flags into ``out``; return the register (None if absent or bad)."""
    stge = frame.value("STGE")
    if stge is None or len(stge) != 8:
        return None
    try:
        reg = int(stge, 16)
    except ValueError:
        return None
    out["relay_closed"] = not reg & 1
    out["breaker_closed"] = (reg >> 1) & 7 == 0
    overload = bool(reg >> 7 & 1)
    out["overload"] = overload
    phases: list[int] = []
    if overload:
        per_phase = out.get("apparent_power_phase_va")
        pref = out.get("subscribed_power_kva")
        if per_phase and pref:
            phases = [i + 1 for i, va in enumerate(per_phase) if va * 3 > pref * 1000]
        elif "apparent_power_phase_va" not in out and len(out.get("current_a", ())) == 1:
            phases = [1]
    out["overload_phases"] = phases
    out["ejp_notice"] = bool(reg >> 28 & 3)  # bits 28-29: notice; 30-31: peak in progress
    return reg


def horodate_iso(horodate: str) -> str | None:
    """'E210414082625' -> '2021-04-14T08:26:25+02:00' (E summer, H winter; lower = degraded)."""
    if len(horodate) != 13:
        return None
    season, digits = horodate[0].upper(), horodate[1:]
    if not (digits.isdecimal() and digits.isascii()):
        return None
    offset = {"E": "+02:00", "H": "+01:00"}.get(season, "")
    yy, mo, dd, hh, mi, ss = (digits[i : i + 2] for i in range(0, 12, 2))
    if not ("01" <= mo <= "12" and "01" <= dd <= "31" and hh < "24" and mi < "60" and ss < "60"):
        return None
    return f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}{offset}"


def normalize(frame: Frame) -> dict[str, Any]:
    """Normalized fields of one frame; fields whose groups were missing or bad are left out."""
    if not frame.groups:
        return {}
    out: dict[str, Any] = {}
    if frame.mode is Mode.HISTORIQUE:
        _historique(frame, out)
    else:
        _standard(frame, out)
    out["tic_mode"] = frame.mode.value
    return out


def raw_labels(frame: Frame) -> dict[str, Any]:
    """The meter's own labels, as read: value, or {date, value} for horodated groups."""
    return {
        label: group.value if group.horodate is None
        else {"date": group.horodate, "value": group.value}
        for label, group in frame.groups.items()
    }
