"""SunSpec, pure: the real SMA images decode to their README values; discovery on synthetic
images; properties of decoding and request planning (hypothesis)."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inverter.decode import ImageReader
from services.inverter.sunspec import (
    MAX_MODELS,
    DiscoveryError,
    decode_model,
    discover,
    normalize,
    requests_for,
)
from services.inverter.sunspec_points import MODELS, Point
from services.inverter.types import ModelRef
from tests.conftest import fixture

SMA_CHAIN = [1, 11, 12, 101, 120, 121, 122, 123, 124, 126, 127, 128, 131, 132, 160, 129, 130]
SMA_ID = {"manufacturer": "SMA", "model": "SB3.6-1AV-41", "serial": "3005067415"}


def read_image(name: str) -> tuple[list[int], list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """Chain ids, decoded models and the one device group of a fixture image."""
    image = json.loads(fixture("sunspec", name).read_text())
    reader = ImageReader(image["base"], image["registers"])
    chain = discover(reader)
    models = []
    for model in chain.models:
        regs = [r for a, c in requests_for(model) for r in reader(a, c)]
        assert len(regs) == model.length
        decoded = decode_model(model.model_id, regs)
        if decoded is not None:
            models.append((model.model_id, decoded))
    (device,) = normalize(models)
    assert device.kind == "inverter"
    return chain.ids, models, {"fields": device.fields, "raw": device.raw}


def test_day_image_decodes_to_its_readme_values() -> None:
    ids, _, got = read_image("sma_sunnyboy36_20230810.json")
    assert ids == SMA_CHAIN
    assert got["fields"] == {
        **SMA_ID, "firmware": "4.00.75.R", "status": "mppt", "ac_power_w": 1080,
        "ac_energy_wh": 21707970, "ac_voltage_v": [239.2], "ac_current_a": [4.5],
        "ac_frequency_hz": 49.98, "dc_power_w": 1150, "temperature_c": 42,
        "rated_power_w": 3680,
        "mppt": [{"dc_voltage_v": 322, "dc_current_a": 2.1, "dc_power_w": 670},
                 {"dc_voltage_v": 224, "dc_current_a": 2.1, "dc_power_w": 480}],
    }
    raw = got["raw"]
    assert {k: raw[k] for k in ("101.A", "101.VA", "101.VAr", "101.PF", "101.WH", "101.St",
                                "120.WRtg", "120.ARtg", "160.N")} == {
        "101.A": 4.5, "101.VA": 1090, "101.VAr": 100, "101.PF": -0.996, "101.WH": 21707970,
        "101.St": 4, "120.WRtg": 3680, "120.ARtg": 16.0, "160.N": 6}
    for absent in ("101.PhVphB", "101.PhVphC", "101.DCA", "101.DCV", "101.DCW"):
        assert absent not in raw
    for module in range(3, 7):
        assert not {f"160.module.{module}.{k}" for k in ("DCA", "DCV", "DCW")} & raw.keys()


def test_full_power_image_decodes_to_its_readme_values() -> None:
    ids, _, got = read_image("sma_sunnyboy36_20250518.json")
    assert ids == SMA_CHAIN
    assert got["fields"] == {
        **SMA_ID, "firmware": "4.01.15.R", "status": "mppt", "ac_power_w": 3680,
        "ac_energy_wh": 30388530, "ac_voltage_v": [244.0], "ac_current_a": [15.1],
        "ac_frequency_hz": 49.99, "dc_power_w": 3810, "temperature_c": 44,
        "rated_power_w": 3680,
        "mppt": [{"dc_voltage_v": 301, "dc_current_a": 7.3, "dc_power_w": 2210},
                 {"dc_voltage_v": 242, "dc_current_a": 6.6, "dc_power_w": 1600}],
    }
    assert (got["raw"]["101.VA"], got["raw"]["101.VAr"], got["raw"]["101.PF"]) == (3680, 80, -1.0)


def test_night_image_has_energy_and_no_number_from_a_sentinel() -> None:
    ids, models, got = read_image("sma_sunnyboy36_20250608_night.json")
    assert ids == SMA_CHAIN
    # no status (St 0xFFFF): the service decides "sleeping"; no 0 W from 0x8000
    assert got["fields"] == {**SMA_ID, "firmware": "4.01.15.R", "ac_energy_wh": 30847780,
                             "rated_power_w": 3680}
    inverter = dict(models)[101]
    assert not {"A", "PhVphA", "Hz", "W", "VA", "VAr", "PF", "St"} & inverter.keys()
    assert all(not {"DCA", "DCV", "DCW"} & m.keys() for m in dict(models)[160]["module"])


def test_model_160_is_read_in_two_requests_split_between_modules() -> None:
    assert requests_for(ModelRef(160, 40621, 128)) == [(40623, 8 + 5 * 20), (40731, 20)]
    assert requests_for(ModelRef(101, 40185, 50)) == [(40187, 50)]


# --- discovery on synthetic images ---------------------------------------------------------


class Regs:
    """A sparse register map; reading any missing register raises, as a device would."""

    def __init__(self, values: dict[int, int]) -> None:
        self.values = values
        self.reads = 0

    def __call__(self, address: int, count: int) -> Sequence[int]:
        self.reads += 1
        try:
            return [self.values[a] for a in range(address, address + count)]
        except KeyError:
            raise OSError(f"illegal data address {address}") from None


def chain_image(marker_at: int, models: Sequence[tuple[int, int]], end_length: bool = True
                ) -> Regs:
    regs = [0x5375, 0x6E53]
    for model_id, length in models:
        regs += [model_id, length, *([0] * length)]
    regs += [0xFFFF, 0] if end_length else [0xFFFF]
    return Regs({marker_at + i: v for i, v in enumerate(regs)})


@pytest.mark.parametrize("marker_at", [40000, 0, 50000, 40001, 1, 50001])
def test_discovery_at_each_base_and_the_plus_one_offset(marker_at: int) -> None:
    chain = discover(chain_image(marker_at, [(1, 66), (103, 50), (999, 3), (160, 48)]))
    assert chain.base == marker_at
    assert chain.ids == [1, 103, 999, 160]  # an unknown model is listed
    assert [m.address for m in chain.models] == [marker_at + 2, marker_at + 70,
                                                 marker_at + 122, marker_at + 127]
    assert decode_model(999, [0, 0, 0]) is None  # ...and skipped when decoding


def test_an_end_model_without_its_length() -> None:
    assert discover(chain_image(40000, [(1, 66), (101, 50)], end_length=False)).ids == [1, 101]


def test_a_chain_running_past_the_readable_range_keeps_what_it_read() -> None:
    image = chain_image(40000, [(1, 66), (101, 50)])
    for address in (40120, 40121):  # the end model unreadable
        del image.values[address]
    assert discover(image).ids == [1, 101]


def test_a_reader_that_raises_means_not_there() -> None:
    image = chain_image(50000, [(1, 66)])
    assert discover(image).base == 50000
    assert image.reads == 5 + 2  # 40000, 40001, 0, 1, 50000; then model 1 and the end


def test_garbage_after_the_marker_is_bounded() -> None:
    def garbage(address: int, count: int) -> list[int]:
        return [0x5375, 0x6E53] if address == 40000 else [7, 1][:count]

    assert len(discover(garbage).models) == MAX_MODELS
    insane = Regs({40000: 0x5375, 40001: 0x6E53, 40002: 1, 40003: 60000})
    assert discover(insane).ids == []


def test_no_marker_is_a_discovery_error_naming_the_bases() -> None:
    with pytest.raises(DiscoveryError, match="40000, 40001, 0, 1, 50000, 50001"):
        discover(Regs({40000: 1, 40001: 2}))


# --- properties ----------------------------------------------------------------------------

SENTINELS = {
    "uint16": [[0xFFFF]], "enum16": [[0xFFFF]], "count": [[0xFFFF]], "int16": [[0x8000]],
    "acc32": [[0, 0], [0xFFFF, 0xFFFF]], "bitfield32": [[0xFFFF, 0xFFFF]],
    "uint32": [[0xFFFF, 0xFFFF]], "int32": [[0x8000, 0]],
    "float32": [[0x7FC0, 0], [0xFFC0, 0], [0x7F80, 1], [0x7F80, 0]],  # NaNs, +inf
}


def model_and_regs(model_id: int, modules: int) -> tuple[int, int]:
    model = MODELS[model_id]
    return model_id, model.length + (modules * model.group.length if model.group else 0)


known_models = st.builds(model_and_regs, st.sampled_from(sorted(MODELS)),
                         st.integers(0, 8))


def data_for(length: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 0xFFFF), min_size=length, max_size=length)


def is_number_or_text(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int | str)


@given(known_models.flatmap(lambda m: st.tuples(st.just(m[0]), data_for(m[1]))))
def test_decode_never_raises_and_gives_finite_values(case: tuple[int, list[int]]) -> None:
    model_id, regs = case
    decoded = decode_model(model_id, regs)
    assert isinstance(decoded, dict)
    for value in decoded.values():
        items = value if isinstance(value, list) else [{"v": value}]
        assert all(is_number_or_text(v) for item in items for v in item.values())
    normalize([(1, {}), (model_id, decoded)])  # never raises either


@given(st.sampled_from(sorted(MODELS)), st.data())
def test_sentinels_of_every_type_are_never_numbers(model_id: int, data: st.DataObject) -> None:
    model = MODELS[model_id]
    regs = data.draw(data_for(model.length))
    points = [p for p in model.points if p.type in SENTINELS or p.type == "string"]
    point = data.draw(st.sampled_from(points))
    if point.type == "string":  # a string starting with NUL, whatever follows
        regs[point.offset] &= 0x00FF
    else:
        pattern = data.draw(st.sampled_from(SENTINELS[point.type]))
        regs[point.offset:point.offset + point.size] = pattern
    decoded = decode_model(model_id, regs)
    assert decoded is not None and point.name not in decoded


@given(st.sampled_from([m for m in sorted(MODELS) if any(p.sf for p in MODELS[m].points)]),
       st.data())
def test_a_scale_factor_not_implemented_hides_its_values(model_id: int,
                                                         data: st.DataObject) -> None:
    model = MODELS[model_id]
    regs = data.draw(data_for(model.length))
    sf = data.draw(st.sampled_from([p for p in model.points if p.type == "sunssf"]))
    regs[sf.offset] = 0x8000
    decoded = decode_model(model_id, regs)
    assert decoded is not None
    assert not {p.name for p in model.points if p.sf == sf.name} & decoded.keys()


def wide_spans(model_id: int, length: int) -> list[tuple[int, int]]:
    """(first, last) register of every multi-register point within ``length``."""
    model = MODELS.get(model_id)
    if model is None:
        return []
    spans = [(p.offset, p.offset + p.size - 1) for p in model.points if p.size > 1]
    if model.group is not None:
        start = model.length
        while start + model.group.length <= length:
            spans += [(start + p.offset, start + p.offset + p.size - 1)
                      for p in model.group.points if p.size > 1]
            start += model.group.length
    return [s for s in spans if s[1] < length]


@given(st.sampled_from([*sorted(MODELS), 64001]), st.integers(0, 2000), st.integers(0, 60000))
def test_requests_never_exceed_125_nor_split_a_32_bit_value(model_id: int, length: int,
                                                             address: int) -> None:
    requests = requests_for(ModelRef(model_id, address, length))
    assert all(0 < count <= 125 for _, count in requests)
    covered = [a for start, count in requests for a in range(start, start + count)]
    assert covered == list(range(address + 2, address + 2 + length))
    cuts = {start - address - 2 for start, _ in requests}
    assert not any(first < cut <= last for first, last in wide_spans(model_id, length)
                   for cut in cuts)


# --- a meter image built by hand -----------------------------------------------------------


def build(model_id: int, length: int, values: dict[str, int | float]) -> list[int]:
    """Data registers of a model: every point "not implemented" but those given (raw words;
    floats for float32 points)."""
    table = MODELS[model_id]
    regs = [0] * length
    by_name: dict[str, Point] = {p.name: p for p in table.points}
    for p in table.points:
        fill = SENTINELS.get(p.type, [[0x8000]] if p.type == "sunssf" else [[0] * p.size])[0]
        regs[p.offset:p.offset + p.size] = fill
    for name, value in values.items():
        p = by_name[name]
        if p.type == "float32":
            regs[p.offset:p.offset + 2] = struct.unpack(">HH", struct.pack(">f", value))
        elif p.size == 2:
            regs[p.offset:p.offset + 2] = [int(value) >> 16, int(value) & 0xFFFF]
        else:
            regs[p.offset] = int(value) & 0xFFFF
    return regs


def test_a_hand_built_meter_decodes_to_its_fields() -> None:
    common = build(1, 66, {})
    common[0:2] = [0x4142, 0x4300]  # "ABC"
    meter = build(203, 105, {
        "W": -1234, "WphA": -500, "WphB": -400, "WphC": -334, "W_SF": 0,
        "PhVphA": 2301, "PhVphB": 2312, "PhVphC": 2325, "V_SF": -1 & 0xFFFF,
        "Hz": 5002, "Hz_SF": -2 & 0xFFFF,
        "TotWhImp": 1234567, "TotWhExp": 0, "TotWh_SF": 1})
    inverter_side = build(201, 105, {"W": 5, "W_SF": 0})
    (device,) = normalize([(1, decode_model(1, common) or {}),
                           (203, decode_model(203, meter) or {})])
    assert device.kind == "meter"
    assert device.fields == {
        "manufacturer": "ABC", "power_w": -1234, "power_phase_w": [-500, -400, -334],
        "energy_import_wh": 12345670,  # TotWhExp 0: an accumulator of 0 is absent
        "ac_voltage_v": [230.1, 231.2, 232.5], "ac_frequency_hz": 50.02}
    assert device.raw["203.W"] == -1234 and "203.TotWhExp" not in device.raw
    assert decode_model(201, inverter_side) == {"W": 5}


def test_a_float_meter_and_two_device_groups_in_one_chain() -> None:
    meter = build(213, 124, {"W": 812.5, "WphA": 812.5, "TotWhImp": 98765.0,
                             "Hz": 49.97, "PhVphA": 239.2})
    inverter = build(101, 50, {"W": 300, "W_SF": 0, "St": 2})
    groups = normalize([(1, {"Mn": "Inv"}), (101, decode_model(101, inverter) or {}),
                        (160, {"module": []}), (1, {"Mn": "Meter"}),
                        (213, decode_model(213, meter) or {})])
    assert [(g.kind, g.fields.get("manufacturer")) for g in groups] == [
        ("inverter", "Inv"), ("meter", "Meter")]
    assert groups[0].fields == {"manufacturer": "Inv", "status": "sleeping", "ac_power_w": 300}
    assert groups[1].fields == {"manufacturer": "Meter", "power_w": 812.5,
                                "power_phase_w": [812.5], "energy_import_wh": 98765,
                                "ac_voltage_v": [239.2], "ac_frequency_hz": 49.97}
