"""Normalized teleinfo fields from real captures and from frames built for the rare cases."""

from __future__ import annotations

from typing import Any

from services.teleinfo.fields import FIELD_KEYS, horodate_iso, normalize
from services.teleinfo.protocol import Decoder, Frame, Mode, encode_frame, encode_group
from tests.conftest import tic_fixture

H, S = Mode.HISTORIQUE, Mode.STANDARD


def frames_of(data: bytes) -> list[Frame]:
    return list(Decoder().feed(data))


def one(name: str) -> dict[str, Any]:
    (frame,) = frames_of(tic_fixture(name).read_bytes())
    return normalize(frame)


def build(mode: Mode, *groups: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    wire = [
        encode_group(g[0], g[-1], mode, g[1] if len(g) == 3 else None)
        for g in groups
    ]
    (frame,) = frames_of(encode_frame(wire))
    return normalize(frame)


def test_historique_tempo_excerpt() -> None:
    assert one("excerpt_hist_mono_tempo_one_frame.bin") == {
        "meter_id": "021861348497",
        "tic_mode": "historique",
        "tariff_option": "tempo",
        "tariff_period": "blue_hc",
        "tariff_label": "HCJB",
        "subscribed_current_a": 30,
        "apparent_power_va": 2840,
        "net_power_va": 2840,
        "net_power_estimated": False,
        "current_a": [12],
        "energy_import_by_index_wh": {
            "blue_hc": 18328856, "blue_hp": 23739545, "white_hc": 1466099,
            "white_hp": 2132883, "red_hc": 860118, "red_hp": 844115,
        },
        "energy_import_wh": 18328856 + 23739545 + 1466099 + 2132883 + 860118 + 844115,
        "tempo_today": "blue",
        "tempo_tomorrow": "red",
        "overload": False,
        "overload_phases": [],
    }


def test_standard_three_phase_tempo_excerpt() -> None:
    r = one("excerpt_std_tri_tempo_valid_frame.bin")
    assert r["meter_id"] == "041776199277"
    assert r["tariff_option"] == "tempo"
    assert r["tariff_period"] == "white_hc"  # NTARF 03 on a TEMPO calendar
    assert r["tariff_label"] == "HC BLANC"
    assert r["energy_import_wh"] == 21849106
    assert r["energy_import_by_index_wh"] == {
        "blue_hc": 4855593, "blue_hp": 14090959, "white_hc": 487131, "white_hp": 1481464,
        "red_hc": 227596, "red_hp": 706363,
    }
    assert r["current_a"] == [3, 6, 3]
    assert r["voltage_v"] == [237, 238, 235]
    assert r["apparent_power_va"] == 2700
    assert r["apparent_power_phase_va"] == [664, 1373, 664]
    assert (r["subscribed_power_kva"], r["cutoff_power_kva"]) == (30, 30)
    # STGE 463A0800: today white, tomorrow blue, no overrun, relay and breaker closed.
    assert (r["tempo_today"], r["tempo_tomorrow"]) == ("white", "blue")
    assert r["overload"] is False and r["ejp_notice"] is False
    assert r["relay_closed"] is True and r["breaker_closed"] is True
    assert r["meter_time"] == "2020-02-14T23:08:04+01:00"
    assert "energy_export_wh" not in r and "injected_power_va" not in r


def test_standard_producer_excerpt() -> None:
    r = one("excerpt_std_mono_producer_frame.bin")
    assert r["tariff_option"] == "producer"
    assert r["energy_export_wh"] == 32781
    assert r["energy_import_wh"] == 0  # the meter says EAST 000000000: a known zero
    assert r["injected_power_va"] == 1253
    assert r["apparent_power_va"] == 0
    assert r["current_a"] == [5] and r["voltage_v"] == [228]
    assert r["relay_closed"] is False  # STGE 002A0301: bit 0 set, dry contact open
    assert r["meter_time"] == "2018-07-16T10:34:23+02:00"


def test_bad_groups_leave_their_fields_out() -> None:
    (frame,) = frames_of(tic_fixture("excerpt_std_tri_tempo_bitflip_frame.bin").read_bytes())
    r = normalize(frame)
    assert "tariff_period" not in r  # NTARF was damaged
    assert r["energy_import_wh"] == 21849108


def test_every_emitted_key_is_declared() -> None:
    for name in ("hist_mono_tempo_pyteleinfo.bin", "std_tri_tempo_noisy_teleinfo-nom.bin",
                 "std_tri_producer_tempo_openhab_rebuilt.bin",
                 "hist_tri_hchp_adir_edited_tasmota_rebuilt.bin"):
        for frame in frames_of(tic_fixture(name).read_bytes()):
            assert set(normalize(frame)) <= FIELD_KEYS


def test_rejected_adps_makes_overload_unknown_not_false() -> None:
    data = tic_fixture("hist_mono_base_adps_edited_tasmota_rebuilt.bin").read_bytes()
    frames = frames_of(data)
    with_bad_adps = [f for f in frames if any(r.startswith(b"ADPS") for r in f.rejected)]
    assert len(with_bad_adps) == 6
    assert all("overload" not in normalize(f) for f in with_bad_adps)
    # ADCO is anonymised with a wrong checksum in this file: never published.
    assert all("meter_id" not in normalize(f) for f in frames)


def test_adps_single_phase_overrun() -> None:
    r = build(H, ("ADCO", "031999000001"), ("OPTARIF", "BASE"), ("ISOUSC", "30"),
              ("BASE", "001234567"), ("PTEC", "TH.."), ("IINST", "032"), ("ADPS", "032"),
              ("IMAX", "090"), ("PAPP", "07450"))
    assert r["overload"] is True and r["overload_phases"] == [1]
    assert r["energy_import_wh"] == 1234567 and r["tariff_period"] == "base"


def test_three_phase_short_frame_with_adir() -> None:
    r = build(H, ("ADCO", "031999000001"), ("ADIR2", "031"), ("IINST1", "004"),
              ("IINST2", "031"), ("IINST3", "002"))
    assert r == {"meter_id": "031999000001", "tic_mode": "historique", "current_a": [4, 31, 2],
                 "overload": True, "overload_phases": [2]}


def test_ejp_notice_and_indexes() -> None:
    r = build(H, ("OPTARIF", "EJP."), ("EJPHN", "000100000"), ("EJPHPM", "000020000"),
              ("PEJP", "30"), ("PTEC", "PM.."))
    assert r["ejp_notice"] is True and r["tariff_period"] == "ejp_peak"
    assert r["energy_import_wh"] == 120000
    r = build(H, ("OPTARIF", "EJP."), ("EJPHN", "000100000"), ("EJPHPM", "000020000"),
              ("PTEC", "HN.."))
    assert r["ejp_notice"] is False and r["tariff_period"] == "ejp_normal"


def test_hc_total_needs_both_indexes() -> None:
    r = build(H, ("OPTARIF", "HC.."), ("HCHC", "000000100"), ("PTEC", "HC.."))
    assert r["energy_import_by_index_wh"] == {"hc": 100}
    assert "energy_import_wh" not in r  # HCHP missing: the total is unknown, never partial


def test_stge_overrun_notice_and_colours() -> None:
    stge = (1 << 7) | (1 << 17) | (3 << 24) | (2 << 26) | (1 << 28) | (1 << 1)
    r = build(S, ("NGTF", "     TEMPO      "), ("NTARF", "06"), ("PREF", "09"),
              ("SINSTS", "09900"), ("IRMS1", "045"), ("STGE", f"{stge:08X}"))
    assert r["overload"] is True and r["overload_phases"] == [1]
    assert (r["tempo_today"], r["tempo_tomorrow"]) == ("red", "white")
    assert r["ejp_notice"] is True and r["breaker_closed"] is False
    assert r["tariff_period"] == "red_hp"


def test_stge_three_phase_overrun_names_the_phase() -> None:
    r = build(S, ("PREF", "12"), ("SINSTS1", "05100"), ("SINSTS2", "01000"),
              ("SINSTS3", "00500"), ("STGE", f"{1 << 7:08X}"))
    assert r["overload_phases"] == [1]


def test_unknown_calendar_keeps_supplier_index_names() -> None:
    r = build(S, ("NGTF", "  SUPER WEEKEND "), ("NTARF", "02"), ("EASF01", "000000010"),
              ("EASF02", "000000020"), ("EASF03", "000000000"))
    assert r["tariff_option"] == "super weekend"
    assert r["tariff_period"] == "easf02"
    assert r["energy_import_by_index_wh"] == {"easf01": 10, "easf02": 20}


def test_horodate() -> None:
    assert horodate_iso("E210414082625") == "2021-04-14T08:26:25+02:00"
    assert horodate_iso("h200214230804") == "2020-02-14T23:08:04+01:00"  # degraded clock
    assert horodate_iso(" 200214060000") == "2020-02-14T06:00:00"
    assert horodate_iso("E2104140826") is None
    assert horodate_iso("E211314082625") is None
