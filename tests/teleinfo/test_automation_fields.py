"""The teleinfo fields the automation rules read (issue 13): net power, Tempo colours, EJP."""

from __future__ import annotations

from typing import Any

from services.teleinfo.fields import FIELDS, normalize
from services.teleinfo.protocol import Decoder, Frame, Mode, encode_frame, encode_group
from tests.conftest import tic_fixture

H, S = Mode.HISTORIQUE, Mode.STANDARD
SPECS = {spec.key: spec for spec in FIELDS}


def frames(name: str) -> list[Frame]:
    return list(Decoder().feed(tic_fixture(name).read_bytes()))


def build(mode: Mode, *groups: tuple[str, str], bad: tuple[str, ...] = ()) -> dict[str, Any]:
    """One frame of these groups; the labels in ``bad`` get a wrong checksum."""
    wire = []
    for label, value in groups:
        group = encode_group(label, value, mode)
        if label in bad:  # flip the checksum character, as a dropped bit would
            group = group[:-2] + bytes([group[-2] ^ 0x01]) + group[-1:]
        wire.append(group)
    (frame,) = Decoder().feed(encode_frame(wire))
    if bad:
        assert frame.invalid == len(bad)
    return normalize(frame)


def stge(*, today: int = 0, tomorrow: int = 0, notice: int = 0, peak: int = 0,
         producer: bool = False) -> tuple[str, str]:
    reg = (1 << 17) | (producer << 8) | (today << 24) | (tomorrow << 26) | (notice << 28)
    return ("STGE", f"{reg | (peak << 30):08X}")


TEMPO = ("NGTF", "     TEMPO      ")
BASE = ("NGTF", "      BASE      ")
EJP = ("NGTF", "      EJP       ")

# --- net_power_va: + drawn, - fed in ---------------------------------------------------------


def test_standard_net_power_is_drawn_minus_injected() -> None:
    (consumer,) = (normalize(f) for f in frames("excerpt_std_tri_tempo_valid_frame.bin"))
    assert consumer["net_power_va"] == 2700  # no SINSTI: SINSTS
    assert consumer["net_power_estimated"] is False
    (producer,) = (normalize(f) for f in frames("excerpt_std_mono_producer_frame.bin"))
    assert producer["net_power_va"] == 0 - 1253
    assert producer["net_power_estimated"] is False


def test_standard_net_power_on_every_frame_of_the_three_phase_producer() -> None:
    seen = 0
    for frame in frames("std_tri_producer_tempo_openhab_rebuilt.bin"):
        g = frame.groups
        if "SINSTS" in g and "SINSTI" in g:
            r = normalize(frame)
            assert r["net_power_va"] == g["SINSTS"].number - g["SINSTI"].number  # type: ignore[operator]
            seen += 1
    assert seen == 2


def test_standard_net_power_unknown_when_the_injection_is() -> None:
    r = build(S, BASE, ("SINSTS", "00000"), ("SINSTI", "01200"), bad=("SINSTI",))
    assert "net_power_va" not in r and "net_power_estimated" not in r
    # A producer (STGE bit 8) whose SINSTI is missing: SINSTS alone would hide the export.
    r = build(S, BASE, ("SINSTS", "00000"), stge(producer=True))
    assert "net_power_va" not in r
    assert build(S, BASE, ("SINSTS", "00450"), stge())["net_power_va"] == 450


def test_historique_net_power_is_papp() -> None:
    for frame in frames("hist_mono_tempo_pyteleinfo.bin"):
        r = normalize(frame)
        assert r["net_power_va"] == frame.groups["PAPP"].number
        assert r["net_power_estimated"] is False


def test_historique_papp_zero_with_current_is_an_export_estimate() -> None:
    """LinkyMonitor's estimate: historique PAPP only counts drawn power, IINST both ways."""
    r = build(H, ("OPTARIF", "BASE"), ("PTEC", "TH.."), ("IINST", "006"), ("PAPP", "00000"))
    assert r["net_power_va"] == -6 * 230 and r["net_power_estimated"] is True
    r = build(H, ("OPTARIF", "BASE"), ("IINST", "000"), ("PAPP", "00000"))
    assert r["net_power_va"] == 0 and r["net_power_estimated"] is False
    r = build(H, ("IINST1", "002"), ("IINST2", "001"), ("IINST3", "000"), ("PAPP", "00000"))
    assert r["net_power_va"] == -3 * 230 and r["net_power_estimated"] is True
    r = build(H, ("IINST", "006"), ("PAPP", "01380"))
    assert r["net_power_va"] == 1380 and r["net_power_estimated"] is False


def test_historique_net_power_unknown_when_a_group_it_needs_is_bad() -> None:
    r = build(H, ("IINST", "006"), ("PAPP", "01380"), bad=("PAPP",))
    assert "net_power_va" not in r
    # PAPP 0 with IINST unreadable: import of 0 or an export, nobody can tell.
    r = build(H, ("IINST", "006"), ("PAPP", "00000"), bad=("IINST",))
    assert "net_power_va" not in r and "net_power_estimated" not in r


# --- Tempo -----------------------------------------------------------------------------------


def test_historique_demain_dashes_say_unknown() -> None:
    """Blue tomorrow is never announced: DEMAIN stays ---- and must not leave red retained."""
    r = build(H, ("OPTARIF", "BBR("), ("PTEC", "HPJW"), ("DEMAIN", "----"), ("PAPP", "00500"))
    assert (r["tempo_today"], r["tempo_tomorrow"]) == ("white", "unknown")
    r = build(H, ("OPTARIF", "BBR("), ("PTEC", "HPJW"), ("DEMAIN", "BLEU"))
    assert r["tempo_tomorrow"] == "blue"
    r = build(H, ("OPTARIF", "BBR("), ("PTEC", "HPJW"), ("DEMAIN", "----"), bad=("DEMAIN",))
    assert "tempo_tomorrow" not in r  # a damaged DEMAIN says nothing


def test_historique_real_capture_announces_red() -> None:
    assert {normalize(f)["tempo_tomorrow"] for f in frames("hist_mono_tempo_pyteleinfo.bin")} \
        == {"red"}


def test_standard_stge_tomorrow_bits_at_zero_say_unknown() -> None:
    r = build(S, TEMPO, ("LTARF", "   HP  BLEU     "), ("NTARF", "02"), stge(today=1))
    assert (r["tempo_today"], r["tempo_tomorrow"]) == ("blue", "unknown")


def test_standard_stge_colour_bits_at_zero_fall_back_to_ltarf() -> None:
    """Some meters under Tempo leave STGE's colour bits at 0: LTARF's text still names it."""
    for ltarf, colour in (("   HC  BLANC    ", "white"), ("   HP  ROUGE    ", "red"),
                          ("    HC  BLEU    ", "blue")):
        r = build(S, TEMPO, ("LTARF", ltarf), stge())
        assert (r["tempo_today"], r["tempo_tomorrow"]) == (colour, "unknown")
    # STGE wins over the text when it says a colour.
    assert build(S, TEMPO, ("LTARF", "   HC  BLANC    "), stge(today=3))["tempo_today"] == "red"


def test_standard_tempo_without_any_colour_says_unknown() -> None:
    r = build(S, TEMPO, ("LTARF", "  TARIF INCONNU "), stge())
    assert (r["tempo_today"], r["tempo_tomorrow"]) == ("unknown", "unknown")


def test_standard_non_tempo_meter_has_no_tempo_fields() -> None:
    r = build(S, BASE, ("LTARF", "      BASE      "), stge())
    assert "tempo_today" not in r and "tempo_tomorrow" not in r
    # The excerpts keep their colours (STGE 463A0800: white today, blue tomorrow).
    (std,) = (normalize(f) for f in frames("excerpt_std_tri_tempo_valid_frame.bin"))
    assert (std["tempo_today"], std["tempo_tomorrow"]) == ("white", "blue")
    (prod,) = (normalize(f) for f in frames("excerpt_std_mono_producer_frame.bin"))
    assert "tempo_today" not in prod and "tempo_tomorrow" not in prod


def test_tempo_options_include_unknown() -> None:
    for key in ("tempo_today", "tempo_tomorrow"):
        assert SPECS[key].options == ("blue", "white", "red", "unknown")


# --- EJP -------------------------------------------------------------------------------------


def test_historique_ejp_periods_and_notice() -> None:
    r = build(H, ("OPTARIF", "EJP."), ("EJPHN", "000100000"), ("EJPHPM", "000020000"),
              ("PTEC", "HN.."), ("PEJP", "30"))
    assert (r["tariff_period"], r["ejp_notice"]) == ("ejp_normal", True)
    r = build(H, ("OPTARIF", "EJP."), ("EJPHN", "000100000"), ("EJPHPM", "000020000"),
              ("PTEC", "PM.."))
    assert (r["tariff_period"], r["ejp_notice"]) == ("ejp_peak", False)
    r = build(H, ("OPTARIF", "EJP."), ("PTEC", "HN.."), ("PEJP", "30"), bad=("PEJP",))
    assert "ejp_notice" not in r


def test_standard_ejp_notice_is_bits_28_29_and_peak_is_bits_30_31() -> None:
    for pm in (1, 2, 3):
        assert build(S, EJP, ("NTARF", "01"), stge(notice=pm))["ejp_notice"] is True
    r = build(S, EJP, ("NTARF", "02"), stge(peak=1))
    assert (r["ejp_notice"], r["tariff_period"]) == (False, "ejp_peak")
    # A peak in progress names the peak index even when NTARF was damaged.
    r = build(S, EJP, ("NTARF", "02"), stge(peak=2), bad=("NTARF",))
    assert r["tariff_period"] == "ejp_peak"
    r = build(S, EJP, ("NTARF", "01"), stge())
    assert (r["ejp_notice"], r["tariff_period"]) == (False, "ejp_normal")


# --- the fields are declared for HA and the docs ----------------------------------------------


def test_net_power_fields_are_declared() -> None:
    net = SPECS["net_power_va"]
    assert (net.unit, net.device_class, net.state_class) == ("VA", "apparent_power", "measurement")
    assert SPECS["net_power_estimated"].component == "binary_sensor"
