"""SunSpec register images for the simulators and tests: values in, uint16 registers out.

Pure: no I/O, no clock. The point layouts below are written out from the SunSpec model
definitions (sunspec/models json/model_N.json) for the models a simulated inverter and meter
serve: 1, 101, 103, 120, 160 and 203; tests/sim/test_sunspec_image.py checks every offset against
those definitions. Scaled points take physical values (W, V, A, Hz, Wh) and are stored as
``round(value / 10**SF)`` with the model's scale factor; every point left unset holds its
"not implemented" pattern (0xFFFF, 0x8000, 0xFFFFFFFF, 0x80000000, NUL string, acc32 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MARKER = (0x5375, 0x6E53)  # "SunS"
END_ID = 0xFFFF
BASES = (40000, 0, 50000, 40001)  # the usual ones, and SMA's off-by-one

Value = float | int | str | None
Values = Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a model: its name, SunSpec type, size in registers and scale factor."""

    name: str
    type: str
    size: int = 1
    sf: str | None = None


def _pts(*spec: tuple[Any, ...]) -> tuple[Point, ...]:
    """Points from (name, type[, size[, sf]]) rows."""
    return tuple(Point(*s) for s in spec)


_COMMON = _pts(("Mn", "string", 16), ("Md", "string", 16), ("Opt", "string", 8),
               ("Vr", "string", 8), ("SN", "string", 16), ("DA", "uint16"), ("Pad", "pad"))

# Models 101 (single phase), 102 (split) and 103 (three phase) share one layout.
_INVERTER = _pts(
    ("A", "uint16", 1, "A_SF"), ("AphA", "uint16", 1, "A_SF"), ("AphB", "uint16", 1, "A_SF"),
    ("AphC", "uint16", 1, "A_SF"), ("A_SF", "sunssf"),
    ("PPVphAB", "uint16", 1, "V_SF"), ("PPVphBC", "uint16", 1, "V_SF"),
    ("PPVphCA", "uint16", 1, "V_SF"), ("PhVphA", "uint16", 1, "V_SF"),
    ("PhVphB", "uint16", 1, "V_SF"), ("PhVphC", "uint16", 1, "V_SF"), ("V_SF", "sunssf"),
    ("W", "int16", 1, "W_SF"), ("W_SF", "sunssf"), ("Hz", "uint16", 1, "Hz_SF"),
    ("Hz_SF", "sunssf"), ("VA", "int16", 1, "VA_SF"), ("VA_SF", "sunssf"),
    ("VAr", "int16", 1, "VAr_SF"), ("VAr_SF", "sunssf"), ("PF", "int16", 1, "PF_SF"),
    ("PF_SF", "sunssf"), ("WH", "acc32", 2, "WH_SF"), ("WH_SF", "sunssf"),
    ("DCA", "uint16", 1, "DCA_SF"), ("DCA_SF", "sunssf"), ("DCV", "uint16", 1, "DCV_SF"),
    ("DCV_SF", "sunssf"), ("DCW", "int16", 1, "DCW_SF"), ("DCW_SF", "sunssf"),
    ("TmpCab", "int16", 1, "Tmp_SF"), ("TmpSnk", "int16", 1, "Tmp_SF"),
    ("TmpTrns", "int16", 1, "Tmp_SF"), ("TmpOt", "int16", 1, "Tmp_SF"), ("Tmp_SF", "sunssf"),
    ("St", "enum16"), ("StVnd", "enum16"), ("Evt1", "bitfield32", 2), ("Evt2", "bitfield32", 2),
    ("EvtVnd1", "bitfield32", 2), ("EvtVnd2", "bitfield32", 2), ("EvtVnd3", "bitfield32", 2),
    ("EvtVnd4", "bitfield32", 2),
)

_NAMEPLATE = _pts(
    ("DERTyp", "enum16"), ("WRtg", "uint16", 1, "WRtg_SF"), ("WRtg_SF", "sunssf"),
    ("VARtg", "uint16", 1, "VARtg_SF"), ("VARtg_SF", "sunssf"),
    ("VArRtgQ1", "int16", 1, "VArRtg_SF"), ("VArRtgQ2", "int16", 1, "VArRtg_SF"),
    ("VArRtgQ3", "int16", 1, "VArRtg_SF"), ("VArRtgQ4", "int16", 1, "VArRtg_SF"),
    ("VArRtg_SF", "sunssf"), ("ARtg", "uint16", 1, "ARtg_SF"), ("ARtg_SF", "sunssf"),
    ("PFRtgQ1", "int16", 1, "PFRtg_SF"), ("PFRtgQ2", "int16", 1, "PFRtg_SF"),
    ("PFRtgQ3", "int16", 1, "PFRtg_SF"), ("PFRtgQ4", "int16", 1, "PFRtg_SF"),
    ("PFRtg_SF", "sunssf"), ("WHRtg", "uint16", 1, "WHRtg_SF"), ("WHRtg_SF", "sunssf"),
    ("AhrRtg", "uint16", 1, "AhrRtg_SF"), ("AhrRtg_SF", "sunssf"),
    ("MaxChaRte", "uint16", 1, "MaxChaRte_SF"), ("MaxChaRte_SF", "sunssf"),
    ("MaxDisChaRte", "uint16", 1, "MaxDisChaRte_SF"), ("MaxDisChaRte_SF", "sunssf"),
    ("Pad", "pad"),
)

_MPPT = _pts(("DCA_SF", "sunssf"), ("DCV_SF", "sunssf"), ("DCW_SF", "sunssf"),
             ("DCWH_SF", "sunssf"), ("Evt", "bitfield32", 2), ("N", "count"),
             ("TmsPer", "uint16"))
# Model 160's repeating group, one per MPPT, scaled by the model's shared factors above.
MPPT_MODULE = _pts(("ID", "uint16"), ("IDStr", "string", 8), ("DCA", "uint16", 1, "DCA_SF"),
                   ("DCV", "uint16", 1, "DCV_SF"), ("DCW", "uint16", 1, "DCW_SF"),
                   ("DCWH", "acc32", 2, "DCWH_SF"), ("Tms", "uint32", 2), ("Tmp", "int16"),
                   ("DCSt", "enum16"), ("DCEvt", "bitfield32", 2))

_PH = ("", "phA", "phB", "phC")
_METER = _pts(
    *((f"A{p}", "int16", 1, "A_SF") for p in ("", "phA", "phB", "phC")), ("A_SF", "sunssf"),
    *((f"{n}", "int16", 1, "V_SF") for n in ("PhV", "PhVphA", "PhVphB", "PhVphC", "PPV",
                                              "PhVphAB", "PhVphBC", "PhVphCA")),
    ("V_SF", "sunssf"), ("Hz", "int16", 1, "Hz_SF"), ("Hz_SF", "sunssf"),
    *((f"W{p}", "int16", 1, "W_SF") for p in _PH), ("W_SF", "sunssf"),
    *((f"VA{p}", "int16", 1, "VA_SF") for p in _PH), ("VA_SF", "sunssf"),
    *((f"VAR{p}", "int16", 1, "VAR_SF") for p in _PH), ("VAR_SF", "sunssf"),
    *((f"PF{p}", "int16", 1, "PF_SF") for p in _PH), ("PF_SF", "sunssf"),
    *((f"TotWh{d}{p}", "acc32", 2, "TotWh_SF") for d in ("Exp", "Imp")
      for p in ("", "PhA", "PhB", "PhC")), ("TotWh_SF", "sunssf"),
    *((f"TotVAh{d}{p}", "acc32", 2, "TotVAh_SF") for d in ("Exp", "Imp")
      for p in ("", "PhA", "PhB", "PhC")), ("TotVAh_SF", "sunssf"),
    *((f"TotVArh{d}{p}", "acc32", 2, "TotVArh_SF")
      for d in ("ImpQ1", "ImpQ2", "ExpQ3", "ExpQ4") for p in ("", "PhA", "PhB", "PhC")),
    ("TotVArh_SF", "sunssf"), ("Evt", "bitfield32", 2),
)

LAYOUTS: dict[int, tuple[Point, ...]] = {
    1: _COMMON, 101: _INVERTER, 102: _INVERTER, 103: _INVERTER, 120: _NAMEPLATE, 160: _MPPT,
    203: _METER,
}

# Scale factors as real devices choose them (set unless the caller overrides or unsets them).
_INVERTER_SF = {"A_SF": -2, "V_SF": -1, "W_SF": 0, "Hz_SF": -2, "VA_SF": 0, "VAr_SF": 0,
                "PF_SF": -3, "WH_SF": 0, "DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "Tmp_SF": -1}
DEFAULT_SF: dict[int, dict[str, int]] = {
    1: {}, 101: _INVERTER_SF, 102: _INVERTER_SF, 103: _INVERTER_SF,
    120: {"WRtg_SF": 0, "VARtg_SF": 0, "VArRtg_SF": 0, "ARtg_SF": -1, "PFRtg_SF": -3,
          "WHRtg_SF": 0, "AhrRtg_SF": 0, "MaxChaRte_SF": 0, "MaxDisChaRte_SF": 0},
    160: {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0},
    203: {"A_SF": -2, "V_SF": -1, "Hz_SF": -2, "W_SF": 0, "VA_SF": 0, "VAR_SF": 0,
          "PF_SF": -3, "TotWh_SF": 0, "TotVAh_SF": 0, "TotVArh_SF": 0},
}

# (lowest, highest, not-implemented pattern) of the raw value of each numeric type.
_RANGES: dict[str, tuple[int, int, int]] = {
    "uint16": (0, 0xFFFE, 0xFFFF), "enum16": (0, 0xFFFE, 0xFFFF), "count": (0, 0xFFFE, 0xFFFF),
    "bitfield16": (0, 0x7FFF, 0xFFFF), "int16": (-0x7FFF, 0x7FFF, 0x8000),
    "sunssf": (-10, 10, 0x8000), "pad": (0, 0, 0x8000),
    "uint32": (0, 0xFFFFFFFE, 0xFFFFFFFF), "bitfield32": (0, 0x7FFFFFFF, 0xFFFFFFFF),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF, 0x80000000), "acc32": (0, 0xFFFFFFFF, 0),
}

# Measured points of the inverter models (what a sleeping or faulted device stops reporting).
INVERTER_MEASURES = tuple(p.name for p in _INVERTER if p.sf is not None and p.name != "WH")


@dataclass(frozen=True, slots=True)
class SunSpecImage:
    """Holding registers from ``base`` (the "SunS" marker) through the end model."""

    base: int
    registers: tuple[int, ...]

    def at(self, address: int) -> int:
        """The register at protocol address ``address``."""
        return self.registers[address - self.base]


def encode_point(point: Point, raw: int | str | None) -> list[int]:
    """``point``'s registers holding ``raw`` (an int, or text); None: not implemented."""
    if point.type == "string":
        text = "" if raw is None else str(raw)
        data = text.encode("ascii")
        if len(data) > 2 * point.size:
            raise ValueError(f"{point.name}: {text!r} is longer than {2 * point.size} bytes")
        data = data.ljust(2 * point.size, b"\0")
        return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    lo, hi, missing = _RANGES[point.type]
    if raw is None:
        value = missing
    elif isinstance(raw, str) or not lo <= raw <= hi:
        raise ValueError(f"{point.name} ({point.type}): {raw!r} is outside {lo}..{hi}")
    else:
        value = raw & (0xFFFFFFFF if point.size == 2 else 0xFFFF)  # two's complement
    if point.size == 2:  # SunSpec 32-bit values: high word first
        return [value >> 16, value & 0xFFFF]
    return [value]


def _raw(point: Point, value: Value, factors: Mapping[str, int | None]) -> int | str | None:
    """The raw register value of a physical ``value`` (scaled by its point's factor)."""
    if value is None or isinstance(value, str):
        return value
    if point.sf is None:
        return int(value)
    sf = factors.get(point.sf)
    if sf is None:
        raise ValueError(f"{point.name} is set but its scale factor {point.sf} is not")
    return round(value / 10.0 ** sf)


def encode_points(points: Sequence[Point], values: Values,
                  factors: Mapping[str, int | None]) -> list[int]:
    """Registers of ``points`` in order; names missing from ``values`` are not implemented."""
    regs: list[int] = []
    for p in points:
        raw = factors.get(p.name) if p.type == "sunssf" else _raw(p, values.get(p.name), factors)
        regs += encode_point(p, raw)
    return regs


def model(model_id: int, values: Values | None = None, *,
          modules: Sequence[Values] = (), length: int | None = None) -> list[int]:
    """One model (ID, L, points) of a known layout. Scale factors default to DEFAULT_SF; set
    ``"W_SF": 1`` to change one or ``"W_SF": None`` to leave it not implemented. Model 160 takes
    its MPPTs as ``modules`` (N is their count). ``length`` overrides L (a lying device)."""
    if model_id not in LAYOUTS:
        raise ValueError(f"no layout for model {model_id}; use raw_model()")
    vals = dict(values or {})
    factors: dict[str, int | None] = dict(DEFAULT_SF[model_id])
    for name in [n for n in vals if n.endswith("_SF")]:
        sf = vals.pop(name)
        factors[name] = None if sf is None else int(sf)
    if model_id == 1:
        vals.setdefault("Pad", None)
    if model_id == 160:
        vals["N"] = len(modules)
    data = encode_points(LAYOUTS[model_id], vals, factors)
    if model_id == 160:
        for i, module in enumerate(modules, start=1):
            data += encode_points(MPPT_MODULE, {"ID": i, **module}, factors)
    elif modules:
        raise ValueError("only model 160 has modules")
    return [model_id, len(data) if length is None else length, *data]


def raw_model(model_id: int, data: Sequence[int]) -> list[int]:
    """A model of any id with the given data registers (an unknown model for a chain)."""
    return [model_id, len(data), *data]


def image(models: Sequence[Sequence[int]], *, base: int = 40000,
          end_length: int | None = 0) -> SunSpecImage:
    """The marker, ``models`` in chain order and the end model. ``end_length=None``: the end
    model has no length register (some devices stop at 0xFFFF)."""
    regs = [*MARKER]
    for m in models:
        regs += m
    regs.append(END_ID)
    if end_length is not None:
        regs.append(end_length)
    if base + len(regs) > 0x10000:
        raise ValueError(f"{len(regs)} registers do not fit from {base}")
    return SunSpecImage(base, tuple(regs))


def night(values: Values) -> dict[str, Value]:
    """An inverter's values asleep (SMA at night): measures and St not implemented, WH kept."""
    return {k: v for k, v in values.items()
            if k not in INVERTER_MEASURES and k not in ("St", "StVnd")}


def zeros(values: Values, *, keep_energy: bool = False) -> dict[str, Value]:
    """Fronius's frame of zeros: every measure 0 with St 7 (fault); WH 0 (not accumulated)
    unless ``keep_energy``."""
    out: dict[str, Value] = {**values, **dict.fromkeys(INVERTER_MEASURES, 0), "St": 7}
    if not keep_energy:
        out["WH"] = 0
    return out


@dataclass(frozen=True, slots=True)
class InverterReading:
    """What a simulated inverter measures at one instant (SI units)."""

    w: float
    wh: float
    phases: int = 3  # 1: model 101, 3: model 103
    volts: float = 230.0
    hz: float = 50.0
    st: int = 4  # SunSpec St: 2 sleeping, 4 MPPT, 7 fault
    tmp_cab: float = 35.0
    mppt: tuple[tuple[float, float], ...] = ()  # (DCV, DCW) per MPPT


def inverter_values(r: InverterReading) -> dict[str, Value]:
    """Model 101/103 values of a reading: AC per phase from W, PF 1, DC totals from the MPPTs."""
    per_phase_a = r.w / r.phases / r.volts
    vals: dict[str, Value] = {
        "A": per_phase_a * r.phases, "W": r.w, "Hz": r.hz, "VA": r.w, "VAr": 0.0,
        "PF": 1.0 if r.w > 0 else None, "WH": r.wh, "TmpCab": r.tmp_cab, "St": r.st,
    }
    for ph in "ABC"[:r.phases]:
        vals[f"Aph{ph}"] = per_phase_a
        vals[f"PhVph{ph}"] = r.volts
    if r.mppt:
        dcw = sum(w for _v, w in r.mppt)
        dcv = max(v for v, _w in r.mppt)
        vals.update(DCW=dcw, DCV=dcv, DCA=dcw / dcv if dcv else 0.0)
    return vals


def mppt_modules(mppt: Sequence[tuple[float, float]]) -> list[Values]:
    """Model 160 modules of (DCV, DCW) pairs."""
    return [{"IDStr": f"PV{i}", "DCV": v, "DCW": w, "DCA": w / v if v else 0.0, "DCSt": 4}
            for i, (v, w) in enumerate(mppt, start=1)]


def inverter_image(r: InverterReading, *, serial: str = "SIM0000001", w_rtg: float = 8100.0,
                   base: int = 40000, asleep: bool = False, zero_frame: bool = False,
                   extra: Sequence[Sequence[int]] = (), end_length: int | None = 0,
                   sf: Mapping[str, int | None] | None = None) -> SunSpecImage:
    """A whole inverter: models 1, 101 or 103, 120 and (with MPPTs) 160, then ``extra``
    models (unknown ones a decoder must skip). ``asleep``: the night pattern; ``zero_frame``:
    Fronius's zeros; ``sf`` overrides model 101/103's scale factors."""
    vals = inverter_values(r)
    if asleep:
        vals = night(vals)
    elif zero_frame:
        vals = zeros(vals)
    vals.update(sf or {})
    mppt_vals = r.mppt
    if asleep or zero_frame:  # DC measures go with the AC ones
        mppt_vals = tuple((0.0, 0.0) for _ in r.mppt)
    modules: list[Values] = mppt_modules(mppt_vals) if not asleep else [
        {"IDStr": f"PV{i}"} for i in range(1, len(r.mppt) + 1)]
    chain = [
        model(1, {"Mn": "enerbox", "Md": f"SIM-{round(w_rtg / 1000)}K-{r.phases}P",
                  "Vr": "1.0.0", "SN": serial, "DA": 1}),
        model(101 if r.phases == 1 else 103, vals),
        model(120, {"DERTyp": 4, "WRtg": w_rtg, "VARtg": w_rtg,
                    "ARtg": w_rtg / r.phases / r.volts}),
    ]
    if r.mppt:
        chain.append(model(160, {}, modules=modules))
    return image([*chain, *extra], base=base, end_length=end_length)


def meter_image(*, w: float, wh_imp: float, wh_exp: float, phases: int = 1,
                volts: float = 230.0, hz: float = 50.0, serial: str = "SIMMETER01",
                base: int = 40000) -> SunSpecImage:
    """A grid meter (models 1 and 203): ``w`` > 0 imported, < 0 exported, split evenly."""
    vals: dict[str, Value] = {"W": w, "Hz": hz, "PhV": volts, "TotWhImp": wh_imp,
                              "TotWhExp": wh_exp, "VA": abs(w), "A": abs(w) / volts}
    for ph in "ABC"[:phases]:
        vals[f"Wph{ph}"] = w / phases
        vals[f"PhVph{ph}"] = volts
        vals[f"Aph{ph}"] = abs(w) / phases / volts
    return image([model(1, {"Mn": "enerbox", "Md": "SIM-METER", "Vr": "1.0.0", "SN": serial,
                            "DA": 2}),
                  model(203, vals)], base=base)
