"""TIC framing and checksums against real captures (../shared/fixtures/teleinfo) and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.teleinfo.protocol import (
    Decoder,
    Frame,
    Group,
    Mode,
    checksum,
    encode_group,
    parse_group,
)
from tests.conftest import tic_fixture

# file -> (complete frames, valid frames, groups valid, invalid, malformed), from the README.
COUNTS = {
    "hist_mono_tempo_pyteleinfo.bin": (10, 10, 160, 0, 0),
    "hist_mono_tempo_partial_teleinfo-nom.bin": (1, 1, 16, 0, 0),
    "std_tri_tempo_noisy_teleinfo-nom.bin": (7, 2, 373, 10, 2),
    "std_mono_producer_openhab_rebuilt.bin": (1, 1, 46, 0, 0),
    "std_tri_producer_tempo_openhab_rebuilt.bin": (2, 2, 126, 0, 0),
    "hist_mono_base_adps_edited_tasmota_rebuilt.bin": (28, 0, 223, 35, 0),
    "hist_tri_hchp_adir_edited_tasmota_rebuilt.bin": (18, 0, 272, 41, 0),
    "excerpt_hist_mono_tempo_one_frame.bin": (1, 1, 16, 0, 0),
    "excerpt_std_tri_tempo_valid_frame.bin": (1, 1, 55, 0, 0),
    "excerpt_std_tri_tempo_bitflip_frame.bin": (1, 0, 53, 2, 0),
    "excerpt_std_mono_producer_frame.bin": (1, 1, 46, 0, 0),
}
MODES = {name: Mode.HISTORIQUE if name.startswith(("hist", "excerpt_hist")) else Mode.STANDARD
         for name in COUNTS}


def decode(data: bytes, mode: Mode | None = None, chunk: int = 0) -> tuple[list[Frame], Decoder]:
    decoder = Decoder(mode)
    frames: list[Frame] = []
    if chunk:
        for i in range(0, len(data), chunk):
            frames += decoder.feed(data[i : i + chunk])
    else:
        frames += decoder.feed(data)
    decoder.finish()
    return frames, decoder


@pytest.mark.parametrize("name", sorted(COUNTS))
@pytest.mark.parametrize("chunk", [0, 1, 7, 64])
def test_capture_counts_match_readme(name: str, chunk: int) -> None:
    data = tic_fixture(name).read_bytes()
    frames, decoder = decode(data, chunk=chunk)
    s = decoder.stats
    assert (s.frames, s.frames_valid, s.groups_valid, s.groups_invalid, s.groups_malformed) == (
        COUNTS[name]
    )
    assert {f.mode for f in frames} == {MODES[name]}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_forced_mode_gives_the_same_groups(name: str) -> None:
    data = tic_fixture(name).read_bytes()
    auto, _ = decode(data)
    forced, _ = decode(data, MODES[name])
    assert [f.groups for f in auto] == [f.groups for f in forced]


def test_wrong_mode_validates_nothing() -> None:
    data = tic_fixture("hist_mono_tempo_pyteleinfo.bin").read_bytes()
    frames, decoder = decode(data, Mode.STANDARD)
    assert decoder.stats.groups_valid == 0
    assert all(not f.groups for f in frames)


def test_historique_excerpt_values() -> None:
    frames, _ = decode(tic_fixture("excerpt_hist_mono_tempo_one_frame.bin").read_bytes())
    (frame,) = frames
    assert {k: g.value for k, g in frame.groups.items()} == {
        "ADCO": "021861348497", "OPTARIF": "BBR(", "ISOUSC": "30", "BBRHCJB": "018328856",
        "BBRHPJB": "023739545", "BBRHCJW": "001466099", "BBRHPJW": "002132883",
        "BBRHCJR": "000860118", "BBRHPJR": "000844115", "PTEC": "HCJB", "DEMAIN": "ROUG",
        "IINST": "012", "IMAX": "090", "PAPP": "02840", "HHPHC": "A", "MOTDETAT": "000000",
    }


def test_standard_excerpt_values_and_horodates() -> None:
    frames, _ = decode(tic_fixture("excerpt_std_tri_tempo_valid_frame.bin").read_bytes())
    (frame,) = frames
    g = frame.groups
    assert (g["DATE"].horodate, g["DATE"].value) == ("H200214230804", "")
    assert g["NGTF"].value == "     TEMPO      "
    assert g["LTARF"].value == "   HC  BLANC    "
    assert (g["SMAXSN"].horodate, g["SMAXSN"].value) == ("H200214175135", "10802")
    assert (g["DPM1"].horodate, g["DPM1"].value) == (" 200214060000", "00")
    assert g["MSG1"].value == "PAS DE          MESSAGE         "
    assert g["PJOURF+1"].value == "00004001 06004002 22004001" + " NONUTILE" * 8
    assert [g[f"EASF{i:02d}"].value for i in range(1, 11)] == [
        "004855593", "014090959", "000487131", "001481464", "000227596", "000706363",
        *["000000000"] * 4,
    ]
    assert g["STGE"].value == "463A0800"
    assert len(g) == 55


def test_space_checksum_is_not_trimmed() -> None:
    frames, _ = decode(tic_fixture("excerpt_std_mono_producer_frame.bin").read_bytes())
    assert frames[0].groups["EASD01"].value == "000000000"
    assert frames[0].groups["EAIT"].value == "000032781"


def test_bitflip_frame_rejects_exactly_the_two_damaged_groups() -> None:
    frames, _ = decode(tic_fixture("excerpt_std_tri_tempo_bitflip_frame.bin").read_bytes())
    (frame,) = frames
    assert frame.invalid == 2
    assert "NTARF" not in frame.groups
    assert "CCASN-1" not in frame.groups and "CC@SN-1" not in frame.groups
    assert frame.rejected == (b"CC@SN-1\tH200214225000\t00786\t \r", b"NTARF\t 3\tP\r")


def test_documented_checksum_examples() -> None:
    assert chr(checksum(b"ADCO 021861348497")) == "L"
    assert chr(checksum(b"VTIC\t02\t")) == "J"


def test_eot_interrupts_a_frame() -> None:
    g = [encode_group("ADCO", "031999000001", Mode.HISTORIQUE),
         encode_group("PAPP", "01230", Mode.HISTORIQUE)]
    data = b"\x02" + g[0] + b"\x04" + g[1] + b"\x03\x02" + g[0] + g[1] + b"\x03"
    frames, decoder = decode(data)
    assert len(frames) == 1 and set(frames[0].groups) == {"ADCO", "PAPP"}
    assert decoder.stats.frames_interrupted == 1


def test_stray_stx_restarts_the_frame() -> None:
    g = encode_group("PAPP", "01230", Mode.HISTORIQUE)
    frames, decoder = decode(b"\x02\n" + b"\x02" + g + b"\x03")
    assert len(frames) == 1 and frames[0].valid
    assert decoder.stats.frames_interrupted == 1


def test_buffer_is_bounded_without_etx() -> None:
    decoder = Decoder()
    for _ in range(100):
        list(decoder.feed(b"\x02" + b"A" * 1000))
    assert len(decoder._buf) <= 5000
    assert decoder.stats.frames_oversized > 0


def test_bit7_set_is_malformed_not_trusted() -> None:
    # A bit-7 flip changes the sum by 128, invisible mod 64: 7E1 never sets it, so reject.
    good = encode_group("PAPP", "01230", Mode.HISTORIQUE)[1:]
    flipped = good.replace(b"1", bytes([ord("1") | 0x80]), 1)
    assert isinstance(parse_group(good, Mode.HISTORIQUE), Group)
    assert not isinstance(parse_group(flipped, Mode.HISTORIQUE), Group)


# --- property tests --------------------------------------------------------------------------


def _assert_every_group_checks(data: bytes, frames: list[Frame]) -> None:
    """Every emitted group, re-encoded with its correct checksum, is in the input verbatim."""
    for frame in frames:
        for group in frame.groups.values():
            wire = encode_group(group.label, group.value, frame.mode, group.horodate)
            assert wire in data, wire


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([None, Mode.HISTORIQUE, Mode.STANDARD]))
def test_no_byte_sequence_crashes_the_decoder(data: bytes, mode: Mode | None) -> None:
    frames, _ = decode(data, mode, chunk=97)
    _assert_every_group_checks(data, frames)


_ALPHABET = st.sampled_from(b"\x02\x03\x04\n\r\t ADCOPAPTEC0123456789.")


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=2000).map(bytes))
def test_tic_like_noise_never_emits_a_bad_group(data: bytes) -> None:
    frames, _ = decode(data)
    _assert_every_group_checks(data, frames)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["hist_mono_tempo_pyteleinfo.bin", "std_tri_producer_tempo_openhab_rebuilt.bin"]
    ),
    st.integers(min_value=0),
    st.integers(0, 5),
)
def test_a_bit_flip_in_a_real_capture_never_changes_a_group(name: str, pos: int, bit: int) -> None:
    # One flip of bits 0-5 changes the sum mod 64. (Two flips in one group can cancel out:
    # the TIC checksum's own limit, covered by the weaker property below.)
    original = tic_fixture(name).read_bytes()
    data = bytearray(original)
    data[pos % len(data)] ^= 1 << bit
    # Every valid group anywhere in the original, fragments outside frames included: a flip
    # can turn an LF into an STX and make a head fragment part of a frame.
    clean = {
        (mode, g)
        for piece in original.split(b"\n")
        for mode in Mode
        if isinstance(g := parse_group(piece.split(b"\x03")[0], mode), Group)
    }
    for frame in decode(bytes(data))[0]:
        for group in frame.groups.values():
            assert (frame.mode, group) in clean


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=20))
def test_many_flips_emit_only_checksum_valid_groups(flips: list[tuple[int, int]]) -> None:
    data = bytearray(tic_fixture("std_tri_tempo_noisy_teleinfo-nom.bin").read_bytes())
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    frames, _ = decode(bytes(data), chunk=113)
    _assert_every_group_checks(bytes(data), frames)
