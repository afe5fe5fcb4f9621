"""The TIC simulator's frames: valid, complete, consistent with the load profile."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.sim.profile import Peak, default_profile
from services.sim.tic import SIM_ADCO, Colour, TicMeterSim, horodate, replay_chunks
from services.teleinfo.protocol import Decoder, Frame, Mode
from tests.conftest import tic_fixture

H, S = Mode.HISTORIQUE, Mode.STANDARD
NOON = datetime(2024, 7, 1, 12, 0, 0)
DAY = 600.0  # default simulated day length (s)
PEAK = (120.0, 150.0)  # default daily spike window (s into the day)

HIST_INDEXES = {
    "base": ["BASE"],
    "hc": ["HCHC", "HCHP"],
    "tempo": ["BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"],
}


def frames(data: bytes, mode: Mode) -> list[Frame]:
    """Decode a byte stream; every byte must belong to a frame."""
    decoder = Decoder(mode)
    out = list(decoder.feed(data))
    decoder.finish()
    assert decoder.stats.bytes_skipped == 0
    return out


def run(sim: TicMeterSim, times: list[float]) -> list[tuple[float, list[Frame]]]:
    """Frames produced at each time, checked valid."""
    out = []
    for t in times:
        got = frames(sim.frame_at(t, NOON), sim.mode)
        for f in got:
            assert f.valid, (t, f.rejected)
        out.append((t, got))
    return out


def expected_labels(mode: Mode, phases: int, tariff: str, producer: bool) -> list[str]:
    """Label list (in order) of a normal frame outside an overrun, from the reference."""
    ph = [""] if phases == 1 else ["1", "2", "3"]
    if mode is H:
        labels = ["ADCO", "OPTARIF", "ISOUSC", *HIST_INDEXES[tariff], "PTEC"]
        labels += ["DEMAIN"] if tariff == "tempo" else []
        if phases == 1:
            return [*labels, "IINST", "IMAX", "PAPP", "HHPHC", "MOTDETAT"]
        return [*labels, "IINST1", "IINST2", "IINST3", "IMAX1", "IMAX2", "IMAX3", "PMAX",
                "PAPP", "HHPHC", "MOTDETAT", "PPOT"]
    labels = ["ADSC", "VTIC", "DATE", "NGTF", "LTARF", "EAST"]
    labels += [f"EASF{i:02d}" for i in range(1, 11)] + [f"EASD0{i}" for i in range(1, 5)]
    labels += ["EAIT"] if producer else []
    labels += [f"IRMS{i}" for i in ("1", "2", "3")[:phases]]
    labels += [f"URMS{i}" for i in ("1", "2", "3")[:phases]]
    labels += ["PREF", "PCOUP", "SINSTS"] + ([f"SINSTS{i}" for i in ph] if phases == 3 else [])
    smax = [""] + (ph if phases == 3 else [])
    labels += [f"SMAXSN{i}" for i in smax] + [f"SMAXSN{i}-1" for i in smax]
    labels += ["SINSTI", "SMAXIN", "SMAXIN-1"] if producer else []
    labels += ["CCASN", "CCASN-1"] + (["CCAIN", "CCAIN-1"] if producer else [])
    labels += [f"UMOY{i}" for i in ("1", "2", "3")[:phases]]
    return [*labels, "STGE", "MSG1", "PRM", "RELAIS", "NTARF", "NJOURF", "NJOURF+1", "PJOURF+1"]


def in_peak(t: float) -> bool:
    return PEAK[0] <= t % DAY < PEAK[1]


@pytest.mark.parametrize(
    ("mode", "phases", "tariff", "producer"),
    list(itertools.product([H, S], [1, 3], ["base", "hc", "tempo"], [False, True])),
)
def test_every_variant_decodes_with_the_reference_labels(
    mode: Mode, phases: int, tariff: str, producer: bool
) -> None:
    sim = TicMeterSim(mode, phases, tariff, producer)
    want = expected_labels(mode, phases, tariff, producer)
    for t, got in run(sim, [float(t) for t in range(0, 1200, 7)]):
        normal = [f for f in got if "OPTARIF" in f.groups or "ADSC" in f.groups]
        assert len(normal) == 1
        labels = list(normal[0].groups)
        if not in_peak(t):
            assert labels == want
        else:
            assert set(want) <= set(labels)
        g = normal[0].groups
        assert g["ADCO" if mode is H else "ADSC"].value == SIM_ADCO
        if mode is S:
            check_standard_widths(normal[0])


def check_standard_widths(frame: Frame) -> None:
    g = frame.groups
    assert g["DATE"].value == "" and re.fullmatch(r"[EH]\d{12}", g["DATE"].horodate or "")
    assert re.fullmatch(r"\d{9}", g["EAST"].value)
    assert re.fullmatch(r"\d{5}", g["SINSTS"].value)
    assert re.fullmatch(r"\d{3}", g["IRMS1"].value) and re.fullmatch(r"\d{3}", g["URMS1"].value)
    assert re.fullmatch(r"[0-9A-F]{8}", g["STGE"].value)
    assert len(g["NGTF"].value) == 16 and len(g["LTARF"].value) == 16
    assert len(g["MSG1"].value) == 32 and len(g["PJOURF+1"].value) == 98
    assert g["EAST"].value == g["EASD01"].value
    assert int(g["EAST"].value) == sum(int(g[f"EASF{i:02d}"].value) for i in range(1, 11))
    for label in ("SMAXSN", "SMAXSN-1", "CCASN", "UMOY1"):
        assert re.fullmatch(r"[EH]\d{12}", g[label].horodate or "")
    stge = int(g["STGE"].value, 16)
    assert stge >> 17 & 1 == 1
    assert (stge >> 10 & 0xF) + 1 == int(g["NTARF"].value)
    assert int(g["PREF"].value) == 9


def test_energy_is_monotonic_and_integrates_power() -> None:
    sim = TicMeterSim(S, 1, "base")
    dt = 2.0
    easts, powers = [], []
    for _, got in run(sim, [i * dt for i in range(700)]):  # more than two simulated days
        easts.append(int(got[0].groups["EAST"].value))
        powers.append(int(got[0].groups["SINSTS"].value))
    assert all(b >= a for a, b in itertools.pairwise(easts))
    expected = sum(p * dt / 3600 for p in powers[1:])  # the first frame has no elapsed time
    assert abs((easts[-1] - easts[0]) - expected) < 2 + len(powers) * 0.5 * dt / 3600
    assert easts[-1] > easts[0]


@pytest.mark.parametrize("mode", [H, S])
def test_hc_index_follows_the_time_of_day(mode: Mode) -> None:
    sim = TicMeterSim(mode, 1, "hc")
    prev: dict[str, int] | None = None
    seen = set()
    for t, got in run(sim, [float(t) for t in range(0, 600, 3)]):
        g = got[0].groups
        off_peak = sim.profile.hour_at(t) >= 22 or sim.profile.hour_at(t) < 6
        if mode is H:
            assert g["PTEC"].value == ("HC.." if off_peak else "HP..")
            idx = {k: int(g[k].value) for k in ("HCHC", "HCHP")}
            active = "HCHC" if off_peak else "HCHP"
        else:
            assert g["NTARF"].value == ("01" if off_peak else "02")
            assert g["RELAIS"].value == ("001" if off_peak else "000")
            idx = {k: int(g[k].value) for k in ("EASF01", "EASF02")}
            active = "EASF01" if off_peak else "EASF02"
        seen.add(active)
        if prev is not None:
            assert {k for k in idx if idx[k] != prev[k]} <= {active}
        prev = idx
    assert seen == ({"HCHC", "HCHP"} if mode is H else {"EASF01", "EASF02"})


def test_tempo_colours_in_ptec_ltarf_and_stge() -> None:
    hist, std = TicMeterSim(H, 1, "tempo"), TicMeterSim(S, 1, "tempo")
    names = {Colour.BLUE: ("B", "BLEU", "BLEU"), Colour.WHITE: ("W", "BLAN", "BLANC"),
             Colour.RED: ("R", "ROUG", "ROUGE")}
    colours = set()
    for t in range(0, 7 * 600, 50):  # a simulated week
        h = frames(hist.frame_at(t, NOON), H)[0].groups
        s = frames(std.frame_at(t, NOON), S)[0].groups
        today, tomorrow = std.colours(t)
        colours.add(today)
        off_peak = std.profile.hour_at(t) >= 22 or std.profile.hour_at(t) < 6
        hc = "C" if off_peak else "P"
        assert h["PTEC"].value == f"H{hc}J{names[today][0]}"
        assert h["DEMAIN"].value == names[tomorrow][1]
        assert s["LTARF"].value.split() == [f"H{hc}", names[today][2]]
        stge = int(s["STGE"].value, 16)
        assert (stge >> 24 & 3, stge >> 26 & 3) == (today, tomorrow)
        assert int(s["NTARF"].value) == 2 * today - (1 if off_peak else 0)
    assert colours == set(Colour)


def test_peak_sets_adps_single_phase_historique() -> None:
    sim = TicMeterSim(H, 1, "base")
    for t, got in run(sim, [float(t) for t in range(0, 1200, 2)]):
        g = got[0].groups
        assert ("ADPS" in g) == in_peak(t), t
        if "ADPS" in g:
            assert g["ADPS"].value == g["IINST"].value
            assert int(g["PAPP"].value) > 9000


def test_peak_sets_adir_and_short_frames_three_phase_historique() -> None:
    sim = TicMeterSim(H, 3, "hc", subscribed_kva=12)
    for t, got in run(sim, [float(t) for t in range(0, 1200, 2)]):
        if not in_peak(t):
            assert len(got) == 1 and not any(k.startswith("ADIR") for k in got[0].groups)
            continue
        short, normal = got
        assert list(short.groups) == ["ADCO", "ADIR2", "IINST1", "IINST2", "IINST3"]
        assert short.groups["ADIR2"].value == normal.groups["IINST2"].value
        assert int(normal.groups["IINST2"].value) > int(normal.groups["ISOUSC"].value) == 20
        assert "ADIR2" in normal.groups and "OPTARIF" in normal.groups


@pytest.mark.parametrize("phases", [1, 3])
def test_peak_sets_stge_bit7_standard(phases: int) -> None:
    sim = TicMeterSim(S, phases, "tempo", producer=True)
    for t, got in run(sim, [float(t) for t in range(0, 1200, 2)]):
        g = got[0].groups
        assert bool(int(g["STGE"].value, 16) >> 7 & 1) == in_peak(t), t
        if in_peak(t) and phases == 1:
            assert int(g["SINSTS"].value) > int(g["PREF"].value) * 1000


def test_peak_is_configurable_and_can_be_off() -> None:
    quiet = default_profile(1, 9, peak=Peak(duration_s=0))
    sim = TicMeterSim(H, 1, "base", profile=quiet)
    assert not any("ADPS" in got[0].groups for _, got in run(sim, [float(t) for t in range(600)]))
    late = default_profile(1, 9, peak=Peak(start_s=400, duration_s=10, level=1.3))
    sim = TicMeterSim(H, 1, "base", profile=late)
    hits = [t for t, got in run(sim, [float(t) for t in range(600)]) if "ADPS" in got[0].groups]
    assert hits == [float(t) for t in range(400, 410)]


def test_producer_injects_at_noon_only() -> None:
    sim = TicMeterSim(S, 1, "base", producer=True)
    hist = TicMeterSim(H, 1, "base", producer=True)
    noon, night = DAY / 2, DAY / 12  # 12 h and 2 h
    g = frames(sim.frame_at(noon, NOON), S)[0].groups
    assert int(g["SINSTI"].value) > 0 and int(g["SINSTS"].value) == 0
    assert int(g["STGE"].value, 16) >> 8 & 3 == 3  # producer, injecting
    assert int(frames(hist.frame_at(noon, NOON), H)[0].groups["PAPP"].value) == 0
    before = sim.injected_wh
    g = frames(sim.frame_at(noon + 20, NOON), S)[0].groups
    assert sim.injected_wh > before and int(g["EAIT"].value) == sim.injected_wh
    g = frames(sim.frame_at(DAY + night, NOON), S)[0].groups
    assert int(g["SINSTI"].value) == 0 and int(g["SINSTS"].value) > 0
    assert int(g["STGE"].value, 16) >> 8 & 3 == 1  # producer, drawing


def test_indexes_never_go_back_and_start_where_told() -> None:
    sim = TicMeterSim(H, 1, "hc", start_indexes={1: 123_456, 2: 7})
    g = frames(sim.frame_at(0, NOON), H)[0].groups
    assert (g["HCHC"].value, g["HCHP"].value) == ("000123456", "000000007")
    sim.frame_at(100, NOON)
    after = sim.indexes
    sim.frame_at(50, NOON)  # a clock step back must not unwind energy
    assert sim.indexes == after
    with pytest.raises(ValueError, match="indexes"):
        TicMeterSim(H, 1, "base", start_indexes={2: 1})


def test_horodate_season_and_date() -> None:
    assert horodate(datetime(2024, 7, 1, 8, 9, 10)) == "E240701080910"
    assert horodate(datetime(2024, 1, 2, 3, 4, 5)) == "H240102030405"
    # 01:30 UTC on the DST switch day is 03:30 summer time in Paris
    assert horodate(datetime(2024, 3, 31, 1, 30, tzinfo=UTC)) == "E240331033000"
    sim = TicMeterSim(S, 1, "base")
    g = frames(sim.frame_at(0, datetime(2024, 12, 24, 18, 30, 0)), S)[0].groups
    assert g["DATE"].horodate == "H241224183000"


def test_profile_is_pure_and_shaped() -> None:
    p = default_profile(1, 9, producer=True, peak=Peak(duration_s=0))
    assert p.at(123.4) == p.at(123.4)
    night, evening = p.at(DAY * 3 / 24), p.at(DAY * 19.5 / 24)
    assert sum(evening.load_va) > 3 * sum(night.load_va)
    assert sum(night.pv_va) == 0 and p.at(DAY / 2).net_va < 0
    assert max(sum(p.at(t).load_va) for t in range(600)) < 9000


def test_replay_loops_a_capture_byte_for_byte() -> None:
    path = tic_fixture("hist_mono_tempo_pyteleinfo.bin")
    data = path.read_bytes()
    out = b""
    for chunk in replay_chunks(path, chunk_size=100):
        out += chunk
        if len(out) >= 2 * len(data) + 1:
            break
    assert out[: 2 * len(data)] == data + data
    assert data.startswith(out[2 * len(data) :])  # the third loop has begun
    assert sum(f.valid for f in frames(data, H)) == 10


def test_replay_refuses_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        next(replay_chunks(empty))
