"""Normalized vedirect fields: units, absent values, enumerations, product names."""

from __future__ import annotations

import pytest

from services.vedirect.fields import FIELD_KEYS, firmware, normalize
from services.vedirect.protocol import Decoder
from tests.conftest import vedirect_fixture
from tests.vedirect.test_protocol import COUNTS, decode


def test_bmv700_excerpt() -> None:
    (raw,), _ = decode(vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes())
    r = normalize(raw)
    assert (r["product_id"], r["product_name"], r["firmware"]) == ("0x0203", "BMV-700", "3.08")
    assert r["battery_voltage_v"] == 12.164
    assert r["battery_current_a"] == -2.674
    assert r["power_w"] == -33
    assert r["consumed_ah"] == -65.887
    assert r["soc_pct"] == 83.7
    assert r["time_to_go_min"] == 2199
    assert r["alarm"] is False and r["relay_on"] is False
    assert r["h17_discharged_kwh"] == 68.43


def test_phoenix_excerpt() -> None:
    (raw,), _ = decode(vedirect_fixture("excerpt_phoenix_inverter_one_block.bin").read_bytes())
    r = normalize(raw)
    assert r["product_name"] == "Phoenix Inverter 12V 1200VA 120V"
    assert (r["mode"], r["mode_code"]) == ("inverter", 2)
    assert (r["charge_state"], r["charge_state_code"]) == ("inverting", 9)
    assert (r["ac_out_voltage_v"], r["ac_out_current_a"]) == (120.03, 0.2)
    assert r["battery_voltage_v"] == 13.308
    assert (r["off_reason"], r["off_reason_code"]) == ([], 0)
    assert r["serial"] == "HQ2017JGK6S"


def test_dashes_mean_absent_never_zero() -> None:
    (raw,), _ = decode(vedirect_fixture("charger_bluesmart_ip22_hex_kindr.bin").read_bytes())
    assert raw["T"] == "---"
    assert "temperature_c" not in normalize(raw)


def test_mppt_yield_and_tracker() -> None:
    (raw, *_), _ = decode(
        vedirect_fixture("mppt_smartsolar_150-70_0xA06C_hex_kindr.bin").read_bytes()
    )
    r = normalize(raw)
    assert (r["yield_total_kwh"], r["yield_today_kwh"], r["max_power_today_w"]) == (
        11.58, 0.77, 479)
    assert (r["tracker_mode"], r["tracker_mode_code"]) == ("mpp tracker active", 2)
    assert r["firmware"] == "3.16"  # FWE 316FF


def test_enumerations_keep_unknown_numbers() -> None:
    r = normalize({"PID": "0xBEEF", "CS": "77", "ERR": "999", "AR": "16385",
                   "OR": "0x00000041", "MON": "-9", "LOAD": "On", "Relay": "off"})
    assert r["product_name"] == "Unknown (0xBEEF)"
    assert (r["charge_state"], r["charge_state_code"]) == ("unknown (77)", 77)
    assert r["error"] == "unknown (999)"
    assert r["alarm_reason"] == ["low voltage", "bit 14"]
    assert r["off_reason"] == ["no input power", "bms"]
    assert r["monitor_mode"] == "solar charger"
    assert r["load_on"] is True and r["relay_on"] is False


def test_bad_values_are_left_out() -> None:
    r = normalize({"V": "12x00", "I": "", "TTG": "-1", "LOAD": "MAYBE", "SOC": "---",
                   "PID": "zzz"})
    assert r == {}


@pytest.mark.parametrize(("wire", "version"), [
    ("0308", "3.08"), ("150", "1.50"), ("C208", "2.08-c"), ("316FF", "3.16"),
    ("0413FF", "4.13"), ("31605", "3.16-beta-05"),
])
def test_firmware_versions(wire: str, version: str) -> None:
    assert firmware(wire) == version


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_emitted_key_is_declared(name: str) -> None:
    decoder = Decoder()
    for raw in decoder.feed(vedirect_fixture(name).read_bytes()):
        assert set(normalize(raw)) <= FIELD_KEYS
