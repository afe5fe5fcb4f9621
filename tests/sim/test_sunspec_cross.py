"""Cross-check: the service's SunSpec decoder reads the simulator's images as the sim meant them.

The simulator and services/inverter/sunspec.py were written apart, each from the SunSpec model
definitions; this is where the two meet (test_sunspec_image.py checks the images on their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from services.sim import sunspec_image as si

sunspec = pytest.importorskip("services.inverter.sunspec")


def _reader(img: si.SunSpecImage) -> Any:
    def read(address: int, count: int) -> Sequence[int]:
        if address < img.base or address + count > img.base + len(img.registers):
            raise OSError("illegal address")  # what a device answers outside its map
        return img.registers[address - img.base:address - img.base + count]
    return read


def _decode(img: si.SunSpecImage) -> list[Any]:
    read = _reader(img)
    chain = sunspec.discover(read, (40000, 0, 50000))
    assert chain.base == img.base
    models = []
    for ref in chain.models:
        regs: list[int] = []
        for address, count in sunspec.requests_for(ref):  # the data, after ID and L
            regs += read(address, count)
        decoded = sunspec.decode_model(ref.model_id, regs)
        if decoded is not None:
            models.append((ref.model_id, decoded))
    return list(sunspec.normalize(models))


def _fields(img: si.SunSpecImage) -> dict[str, Any]:
    (decoded,) = _decode(img)
    return dict(decoded.fields)


@pytest.mark.parametrize("base", si.BASES)
def test_three_phase_day(base: int) -> None:
    r = si.InverterReading(w=6123.0, wh=12_345_678.0, volts=231.4, hz=50.02,
                           mppt=((345.6, 3100.0), (298.1, 3023.0)))
    f = _fields(si.inverter_image(r, serial="INV42", base=base,
                                  extra=[si.raw_model(64900, [7] * 5)]))
    assert f["serial"] == "INV42" and f["manufacturer"] == "enerbox"
    assert f["status"] == "mppt" and f["ac_power_w"] == 6123
    assert f["ac_energy_wh"] == 12_345_678 and f["ac_frequency_hz"] == pytest.approx(50.02)
    assert f["ac_voltage_v"] == pytest.approx([231.4] * 3) and f["rated_power_w"] == 8100
    assert [m["dc_power_w"] for m in f["mppt"]] == [3100, 3023]


def test_single_phase_sma_scale_factors() -> None:
    r = si.InverterReading(w=3680.0, wh=30_388_530.0, phases=1, volts=244.0)
    f = _fields(si.inverter_image(r, sf={"W_SF": 1, "WH_SF": 1}, end_length=None))
    assert f["ac_power_w"] == 3680 and f["ac_energy_wh"] == 30_388_530
    assert f["ac_voltage_v"] == pytest.approx([244.0])


def test_night_absent_keeps_energy_only() -> None:
    r = si.InverterReading(w=0.0, wh=30_847_780.0, phases=1, mppt=((0.0, 0.0),) * 2)
    f = _fields(si.inverter_image(r, asleep=True))
    assert "ac_power_w" not in f and "status" not in f and "ac_frequency_hz" not in f
    assert f["ac_energy_wh"] == 30_847_780


def test_zero_frame() -> None:
    r = si.InverterReading(w=4000.0, wh=5_000_000.0)
    f = _fields(si.inverter_image(r, zero_frame=True))
    assert f["status"] == "fault" and f["ac_power_w"] == 0 and "ac_energy_wh" not in f


def test_meter() -> None:
    (decoded,) = _decode(si.meter_image(w=-2345.0, wh_imp=1_234_567.0, wh_exp=765_432.0,
                                        phases=3))
    f = decoded.fields
    assert decoded.kind == "meter" and f["power_w"] == -2345
    assert f["energy_import_wh"] == 1_234_567 and f["energy_export_wh"] == 765_432
    assert f["power_phase_w"] == [-782, -782, -782]
