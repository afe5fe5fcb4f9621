"""VE.Direct blocks against real captures (../shared/fixtures/vedirect) and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.vedirect.protocol import Decoder, Fields, strip_hex
from tests.conftest import vedirect_fixture

# file -> (valid blocks, invalid blocks, HEX messages), from the fixtures README.
COUNTS = {
    "bmv700_karioja_bvm702.dump": (906, 0, 0),
    "mppt_bluesolar_75-15_fw123_karioja.dump": (248, 0, 7),
    "mppt_smartsolar_100-20_fw139_karioja.dump": (493, 1, 2),
    "phoenix_inverter_12V_1200VA_120V_velog.log": (1829, 0, 0),
    "bmv712_velog-002.log": (95, 0, 0),
    "mppt_bluesolar_75-15_fw150_velog-001.log": (1057, 0, 21),
    "mppt_smartsolar_150-70_0xA06C_hex_kindr.bin": (4, 0, 14),
    "charger_bluesmart_ip22_hex_kindr.bin": (1, 0, 36),
    "excerpt_bmv700_colon_checksum.bin": (2, 0, 0),
    "excerpt_phoenix_inverter_one_block.bin": (1, 0, 0),
    "excerpt_mppt_hex_between_blocks.bin": (2, 0, 1),
}
# Readings: one per block for single-block devices; BMVs and SmartSolars merge two.
READINGS = {
    "bmv700_karioja_bvm702.dump": 453,  # the last block is cut: its reading is not whole
    "bmv712_velog-002.log": 47,  # starts with noise, then a history block with no main block
    "mppt_smartsolar_150-70_0xA06C_hex_kindr.bin": 2,
    "excerpt_bmv700_colon_checksum.bin": 1,
}


def decode(data: bytes, chunk: int = 0) -> tuple[list[Fields], Decoder]:
    decoder = Decoder()
    out: list[Fields] = []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        out += decoder.feed(data[i : i + step])
    out += decoder.finish()
    return out, decoder


@pytest.mark.parametrize("name", sorted(COUNTS))
@pytest.mark.parametrize("chunk", [0, 1, 13, 512])
def test_capture_counts_match_readme(name: str, chunk: int) -> None:
    readings, decoder = decode(vedirect_fixture(name).read_bytes(), chunk)
    s = decoder.stats
    assert (s.blocks_valid, s.blocks_invalid, s.hex_messages) == COUNTS[name]
    assert len(readings) == READINGS.get(name, COUNTS[name][0])


def test_colon_checksum_block_values() -> None:
    (reading,), _ = decode(vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes())
    assert vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes().count(b"\t:") >= 1
    assert {k: reading[k] for k in ("V", "I", "P", "CE", "SOC", "TTG")} == {
        "V": "12164", "I": "-2674", "P": "-33", "CE": "-65887", "SOC": "837", "TTG": "2199",
    }
    assert all(f"H{i}" in reading for i in range(1, 13))  # merged history block


def test_phoenix_block_values() -> None:
    (reading,), _ = decode(vedirect_fixture("excerpt_phoenix_inverter_one_block.bin").read_bytes())
    assert reading["SER#"] == "HQ2017JGK6S"
    assert (reading["MODE"], reading["CS"], reading["AC_OUT_V"], reading["AC_OUT_I"]) == (
        "2", "9", "12003", "2")
    assert (reading["V"], reading["OR"]) == ("13308", "0x00000000")


def test_checksum_bytes_tab_cr_lf_colon_all_occur() -> None:
    data = vedirect_fixture("phoenix_inverter_12V_1200VA_120V_velog.log").read_bytes()
    data += vedirect_fixture("bmv700_karioja_bvm702.dump").read_bytes()
    seen = set()
    pos = 0
    while (mark := data.find(b"Checksum\t", pos)) >= 0 and mark + 9 < len(data):
        seen.add(data[mark + 9])
        pos = mark + 10
    assert {0x09, 0x0A, 0x0D, 0x3A} <= seen  # and every block above still validated


def test_smartsolar_split_reading_is_merged() -> None:
    readings, _ = decode(
        vedirect_fixture("mppt_smartsolar_150-70_0xA06C_hex_kindr.bin").read_bytes()
    )
    assert {"PID", "V", "OR", "ERR", "LOAD", "H19", "HSDS"} <= set(readings[0])


def test_hex_inside_a_field_is_skipped() -> None:
    block = b"\r\nPID\t0xA042\r\nV\t12:A0002000148\n530\r\nChecksum\t"
    clean = block.replace(b":A0002000148\n", b"")
    block += bytes([-sum(clean) % 256])
    stripped, count = strip_hex(block)
    assert count == 1 and stripped == clean + block[-1:]
    (reading,), decoder = decode(block)
    assert reading["V"] == "12530" and decoder.stats.hex_messages == 1


def test_bad_block_drops_the_reading_in_progress() -> None:
    data = bytearray(vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes())
    history = data.find(b"H1\t")
    data[history + 4] ^= 0x01  # corrupt the history block: the main block must not go alone
    readings, decoder = decode(bytes(data))
    assert readings == [] and decoder.stats.blocks_invalid == 1


def test_silence_resets_a_partial_block() -> None:
    data = vedirect_fixture("excerpt_phoenix_inverter_one_block.bin").read_bytes()
    decoder = Decoder()
    assert list(decoder.feed(data[:60], now=0.0)) == []
    # The cable was pulled: the rest of this block never comes; a whole block follows.
    got = list(decoder.feed(data + data, now=2.0))  # a reading is known whole at the next one
    assert got[0]["SER#"] == "HQ2017JGK6S"
    assert decoder.stats.resets == 1 and decoder.stats.blocks_invalid == 0


def test_buffer_is_bounded() -> None:
    decoder = Decoder()
    for _ in range(200):
        list(decoder.feed(b"\r\nV\t1" + b"9" * 500))
    assert len(decoder._buf) < 2048


# --- property tests --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_no_byte_sequence_crashes_the_decoder(data: bytes) -> None:
    decode(data, chunk=61)


_ALPHABET = st.sampled_from(b"\r\n\t:PIDVCheksum0123456789ABCDEF-")


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=3000).map(bytes))
def test_vedirect_like_noise_never_crashes(data: bytes) -> None:
    decode(data)


_CAPTURES = ["mppt_bluesolar_75-15_fw123_karioja.dump", "bmv700_karioja_bvm702.dump",
             "mppt_smartsolar_150-70_0xA06C_hex_kindr.bin", "charger_bluesmart_ip22_hex_kindr.bin"]


def _block_bounds(data: bytes) -> list[int]:
    """0, the end of every block (the byte after its checksum byte), and the data's end."""
    ends = []
    pos = 0
    while (mark := data.find(b"Checksum\t", pos)) >= 0:
        pos = mark + 10
        ends.append(pos)
    return [0, *ends, len(data)]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(_CAPTURES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=6),
)
def test_byte_flips_never_change_a_reading(name: str, flips: list[tuple[int, int]]) -> None:
    """Bit flips anywhere, at most one per block: a sum mod 256 sees every one of them.
    (Two flips that cancel out inside one block, +1 here and -1 there, pass any checksum of
    this kind: the protocol's own limit.)"""
    original = vedirect_fixture(name).read_bytes()[:8000]
    clean = decode(original)[0]
    bounds = _block_bounds(original)
    data = bytearray(original)
    used = set()
    for choice, bit in flips:
        block = choice % (len(bounds) - 1)
        start, end = bounds[block], bounds[block + 1]
        if block in used or end <= start:
            continue
        used.add(block)
        data[start + (choice // len(bounds)) % (end - start)] ^= 1 << bit
    for reading in decode(bytes(data))[0]:
        assert reading in clean  # dropped, never half-published or altered
