"""The simulator's SunSpec images, decoded by a tiny reader built from the SunSpec model json.

The reader below knows nothing of services.sim.sunspec_image's layouts: it walks the chain and
reads every point at the offset sunspec/models' json/model_N.json gives, so a wrong offset in the
image builder shows up as a wrong value here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest

from services.sim import sunspec_image as si
from tests.conftest import SHARED

MODELS = None if SHARED is None else SHARED / "fixtures" / "sunspec" / "models"
needs_models = pytest.mark.skipif(MODELS is None, reason="../shared/fixtures not found")
_MISSING = {"uint16": 0xFFFF, "enum16": 0xFFFF, "count": 0xFFFF, "bitfield16": 0xFFFF,
            "int16": 0x8000, "sunssf": 0x8000, "pad": 0x8000, "uint32": 0xFFFFFFFF,
            "bitfield32": 0xFFFFFFFF, "int32": 0x80000000, "acc32": 0}


@cache
def _definition(model_id: int) -> dict[str, Any]:
    assert MODELS is not None
    with (MODELS / f"model_{model_id}.json").open() as f:
        d: dict[str, Any] = json.load(f)
    return d


def _raw_points(points: list[dict[str, Any]], regs: Sequence[int], at: int
                ) -> tuple[dict[str, Any], int]:
    """Raw values (None when not implemented) of ``points`` from ``regs[at:]``, and the end."""
    out: dict[str, Any] = {}
    for p in points:
        size = p.get("size", 1)
        words = regs[at:at + size]
        at += size
        if p["type"] == "string":
            data = b"".join(w.to_bytes(2, "big") for w in words)
            out[p["name"]] = None if data[:1] == b"\0" else data.rstrip(b"\0").decode()
            continue
        value = 0
        for w in words:
            value = value << 16 | w
        if value == _MISSING[p["type"]]:
            out[p["name"]] = None
            continue
        if p["type"] in ("int16", "sunssf") and value >= 0x8000:
            value -= 0x10000
        out[p["name"]] = value
    return out, at


def _scaled(points: list[dict[str, Any]], raw: dict[str, Any], sfs: dict[str, Any]
            ) -> dict[str, Any]:
    out = dict(raw)
    for p in points:
        sf = p.get("sf")
        if isinstance(sf, str) and raw[p["name"]] is not None:
            out[p["name"]] = None if sfs.get(sf) is None else raw[p["name"]] * 10.0 ** sfs[sf]
    return out


def read_chain(image: si.SunSpecImage) -> list[tuple[int, int, dict[str, Any]]]:
    """[(model id, address, decoded points)] from the marker to the end model."""
    regs = image.registers
    assert list(regs[:2]) == [0x5375, 0x6E53]
    out = []
    at = 2
    while regs[at] != 0xFFFF:
        model_id, length = regs[at], regs[at + 1]
        body = regs[at:at + 2 + length]
        assert len(body) == 2 + length, f"model {model_id} runs past the image"
        if (MODELS / f"model_{model_id}.json").exists():  # type: ignore[operator]
            group = _definition(model_id)["group"]
            raw, end = _raw_points(group["points"], body, 0)
            assert raw["ID"] == model_id and raw["L"] == length
            values = _scaled(group["points"], raw, raw)
            for sub in group.get("groups", []):  # model 160's modules
                values[sub["name"]] = []
                while end < len(body):
                    mod, end = _raw_points(sub["points"], body, end)
                    values[sub["name"]].append(_scaled(sub["points"], mod, raw))
            assert end == len(body), f"model {model_id}: L {length}, points end at {end - 2}"
            out.append((model_id, image.base + at, values))
        else:
            out.append((model_id, image.base + at, {}))
        at += 2 + length
    return out


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@needs_models
@pytest.mark.parametrize("model_id", [1, 101, 103, 120, 160, 203])
def test_layout_lengths_match_the_definitions(model_id: int) -> None:
    """Every point in the same order, name, type and size as the SunSpec json."""
    group = _definition(model_id)["group"]
    want = [(p["name"], p["type"], p.get("size", 1)) for p in group["points"][2:]]
    assert [(p.name, p.type, p.size) for p in si.LAYOUTS[model_id]] == want
    if model_id == 160:
        sub = group["groups"][0]["points"]
        assert [(p.name, p.type, p.size) for p in si.MPPT_MODULE] == \
            [(p["name"], p["type"], p.get("size", 1)) for p in sub]


@needs_models
def test_three_phase_inverter_decodes_to_its_values() -> None:
    r = si.InverterReading(w=6123.0, wh=12_345_678.0, phases=3, volts=231.4, hz=50.02,
                           mppt=((345.6, 3100.0), (298.1, 3023.0)))
    chain = read_chain(si.inverter_image(r, serial="INV42"))
    assert [(m, a) for m, a, _ in chain] == [(1, 40002), (103, 40070), (120, 40122),
                                            (160, 40150)]
    common, inv, plate, mppt = (v for _m, _a, v in chain)
    assert (common["Mn"], common["SN"], common["Opt"]) == ("enerbox", "INV42", None)
    assert inv["W"] == 6123 and inv["W_SF"] == 0 and inv["St"] == 4
    assert _close(inv["Hz"], 50.02) and inv["Hz_SF"] == -2 and inv["V_SF"] == -1
    assert _close(inv["PhVphC"], 231.4) and inv["WH"] == 12_345_678
    assert _close(inv["AphA"], round(6123 / 3 / 231.4, 2))
    assert _close(inv["PF"], 1.0) and inv["DCW"] == 6123
    # Not set: not implemented, whatever its type.
    assert inv["PPVphAB"] is None and inv["TmpSnk"] is None and inv["Evt1"] is None
    assert inv["StVnd"] is None
    assert plate["WRtg"] == 8100 and plate["DERTyp"] == 4
    assert mppt["N"] == 2 and len(mppt["module"]) == 2
    m1, m2 = mppt["module"]
    assert (m1["ID"], m1["IDStr"], m1["DCW"], _close(m1["DCV"], 345.6)) == (1, "PV1", 3100, True)
    assert _close(m2["DCA"], round(3023 / 298.1, 2)) and m2["DCWH"] is None


@needs_models
def test_single_phase_with_device_scale_factors() -> None:
    r = si.InverterReading(w=3680.0, wh=30_388_530.0, phases=1, volts=244.0)
    img = si.inverter_image(r, sf={"W_SF": 1, "WH_SF": 1})
    _common, (model_id, _, inv), *_ = read_chain(img)
    assert model_id == 101
    assert inv["W_SF"] == 1 and inv["W"] == 3680 and inv["WH"] == 30_388_530
    assert img.at(img.base + 2 + 68 + 14) == 368  # W raw: 3680 W at W_SF +1
    assert inv["PhVphB"] is None and inv["AphB"] is None and _close(inv["PhVphA"], 244.0)


@needs_models
@pytest.mark.parametrize("base", si.BASES)
def test_bases(base: int) -> None:
    img = si.inverter_image(si.InverterReading(w=100.0, wh=1.0), base=base)
    assert img.base == base and img.at(base) == 0x5375
    assert read_chain(img)[0][0] == 1


@needs_models
def test_night_is_not_implemented_but_energy_stays() -> None:
    r = si.InverterReading(w=0.0, wh=30_847_780.0, phases=1, mppt=((0.0, 0.0),) * 2)
    chain = read_chain(si.inverter_image(r, asleep=True, sf={"WH_SF": 1}))
    inv = chain[1][2]
    for name in ("W", "VA", "VAr", "PF", "Hz", "A", "PhVphA", "St", "DCW"):
        assert inv[name] is None, name
    raw_w = si.inverter_image(r, asleep=True).at(40000 + 2 + 68 + 14)
    assert raw_w == 0x8000
    assert inv["WH"] == 30_847_780 and inv["W_SF"] == 0 and inv["Hz_SF"] == -2
    for module in chain[3][2]["module"]:
        assert module["DCA"] is None and module["DCV"] is None and module["DCW"] is None


@needs_models
def test_fronius_zero_frame() -> None:
    r = si.InverterReading(w=4000.0, wh=5_000_000.0, mppt=((300.0, 2000.0),) * 2)
    inv = read_chain(si.inverter_image(r, zero_frame=True))[1][2]
    assert inv["St"] == 7
    assert inv["W"] == 0 and inv["Hz"] == 0 and inv["PhVphA"] == 0 and inv["PF"] == 0
    assert inv["WH"] is None  # acc32 0: not accumulated


@needs_models
def test_meter_203() -> None:
    chain = read_chain(si.meter_image(w=-2345.0, wh_imp=1_234_567.0, wh_exp=765_432.0,
                                      phases=3, volts=229.9, hz=49.97))
    assert [m for m, _a, _v in chain] == [1, 203]
    meter = chain[1][2]
    assert meter["W"] == -2345 and _close(meter["Hz"], 49.97)
    assert meter["TotWhImp"] == 1_234_567 and meter["TotWhExp"] == 765_432
    assert _close(meter["WphB"], round(-2345 / 3)) and _close(meter["PhVphA"], 229.9)
    assert meter["VAR"] is None and meter["TotVAhExp"] is None and meter["Evt"] is None


@needs_models
def test_unknown_models_and_an_end_without_length() -> None:
    extra = [si.raw_model(64900, [1, 2, 3]), si.raw_model(11, [0] * 13)]
    img = si.inverter_image(si.InverterReading(w=1.0, wh=1.0), extra=extra, end_length=None)
    assert img.registers[-1] == 0xFFFF
    chain = read_chain(img)
    assert [m for m, _a, _v in chain][-2:] == [64900, 11]


def test_every_not_implemented_pattern() -> None:
    assert si.encode_point(si.Point("x", "uint16"), None) == [0xFFFF]
    assert si.encode_point(si.Point("x", "int16"), None) == [0x8000]
    assert si.encode_point(si.Point("x", "uint32", 2), None) == [0xFFFF, 0xFFFF]
    assert si.encode_point(si.Point("x", "int32", 2), None) == [0x8000, 0]
    assert si.encode_point(si.Point("x", "acc32", 2), None) == [0, 0]
    assert si.encode_point(si.Point("x", "string", 2), None) == [0, 0]
    assert si.encode_point(si.Point("x", "int16"), -1) == [0xFFFF]  # a real -1, not a sentinel
    assert si.encode_point(si.Point("x", "acc32", 2), 0x12345678) == [0x1234, 0x5678]


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError):
        si.model(103, {"W": 40000.0})  # int16 at W_SF 0
    with pytest.raises(ValueError):
        si.model(103, {"W": 100.0, "W_SF": None})  # a value without its scale factor
    with pytest.raises(ValueError):
        si.model(1, {"Mn": "x" * 33})
    assert si.model(103, {"W": 40000.0, "W_SF": 1})[14] == 4000
