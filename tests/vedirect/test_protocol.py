"""VE.Direct blocks against real captures (../shared/fixtures/vedirect) and fuzzing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.vedirect.protocol import Decoder, Fields, parse_fields, strip_hex
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
    # Starts with noise, then a history block with no main block (dropped: it names no
    # device); ends with a main block whose history block never came (published alone).
    "bmv712_velog-002.log": 48,
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


# --- a bad or cut block next to good ones (issue 11) -----------------------------------------

BMV = "bmv700_karioja_bvm702.dump"  # main block (PID ... FW) and history block (H1 ... H18)


def _blocks(data: bytes) -> list[bytes]:
    """The capture cut at its block ends (each from its CR LF through its checksum byte)."""
    bounds = _block_bounds(data)
    return [data[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def _corrupt(block: bytes) -> bytes:
    """The block with one bit of its first field's value flipped: its checksum fails."""
    out = bytearray(block)
    out[block.index(b"\t") + 1] ^= 0x01
    return bytes(out)


def _is_main(block: bytes) -> bool:
    return block.startswith(b"\r\nPID\t")


def _main_fields(block: bytes) -> Fields:
    (reading,), _ = decode(block)
    return reading


def test_main_block_published_when_the_history_block_is_cut_at_the_end() -> None:
    data = vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes()
    cut = data.find(b"\r\nH9\t")  # the capture ends in the middle of the history block
    for chunk in (0, 1, 13):
        readings, decoder = decode(data[:cut], chunk)
        assert len(readings) == 1, chunk
        assert {k: readings[0][k] for k in ("PID", "V", "I", "SOC")} == {
            "PID": "0x203", "V": "12164", "I": "-2674", "SOC": "837"}
        assert not any(k.startswith("H") for k in readings[0])
        assert decoder.stats.blocks_valid == 1


def test_main_block_published_when_a_whole_capture_ends_in_a_history_block() -> None:
    data = vedirect_fixture(BMV).read_bytes()
    data = data[: data.rfind(b"\r\nH1\t") + 40]  # the last history block cut off
    clean, _ = decode(vedirect_fixture(BMV).read_bytes())
    readings, _ = decode(data, chunk=512)
    assert readings[:-1] == clean[:-1]
    assert readings[-1] == {k: v for k, v in clean[-1].items() if not k.startswith("H")}


def test_history_block_always_bad_every_main_block_published() -> None:
    blocks = _blocks(vedirect_fixture(BMV).read_bytes())
    whole = [b for b in blocks if b.endswith(b"Checksum\t", 0, -1)]
    data = b"".join(b if _is_main(b) else _corrupt(b) for b in whole)
    mains = [b for b in whole if _is_main(b)]
    assert len(mains) == 453
    for chunk in (0, 7, 512):
        readings, decoder = decode(data, chunk)
        assert readings == [_main_fields(b) for b in mains]  # each as it was sent, alone
        assert decoder.stats.blocks_invalid == len(whole) - len(mains)


def test_bad_history_block_fields_never_reach_a_reading() -> None:
    data = bytearray(vedirect_fixture("excerpt_bmv700_colon_checksum.bin").read_bytes())
    history = data.find(b"H1\t")
    data[history + 4] ^= 0x01  # the history block fails: the main block goes alone
    readings, decoder = decode(bytes(data))
    assert readings == [_main_fields(bytes(data[:history - 2]))]
    assert decoder.stats.blocks_invalid == 1


def test_bad_block_between_good_ones_never_mixes() -> None:
    blocks = _blocks(vedirect_fixture(BMV).read_bytes())[:8]  # 4 whole readings
    clean, _ = decode(b"".join(blocks))
    assert len(clean) == 4 and all(_is_main(b) for b in blocks[::2])
    # A bad history block: its main block alone, then the next reading whole.
    readings, _ = decode(b"".join([*blocks[:3], _corrupt(blocks[3]), *blocks[4:]]))
    assert readings == [clean[0], _main_fields(blocks[2]), *clean[2:]]
    # A bad main block: its history block has no head and goes nowhere, not into a neighbour.
    readings, _ = decode(b"".join([*blocks[:2], _corrupt(blocks[2]), *blocks[3:]]))
    assert readings == [clean[0], *clean[2:]]


def test_block_cut_in_the_middle_does_not_swallow_the_next_one() -> None:
    """Bytes lost on the line: a history block without its end runs into the next main block,
    which is still found and published whole with its own history block."""
    blocks = _blocks(vedirect_fixture(BMV).read_bytes())[:8]
    clean, _ = decode(b"".join(blocks))
    for lost in (1, 5, 30, len(blocks[1]) // 2):
        data = b"".join([blocks[0], blocks[1][:-lost], *blocks[2:]])
        readings, _ = decode(data)
        assert readings == [_main_fields(blocks[0]), *clean[1:]], lost


def test_smartsolar_bad_second_half_publishes_the_first_half_alone() -> None:
    data = vedirect_fixture("mppt_smartsolar_150-70_0xA06C_hex_kindr.bin").read_bytes()
    clean, _ = decode(data)
    first_half = _main_fields(data[: data.find(b"Checksum\t") + 10])
    assert "PID" in first_half and "ERR" not in first_half
    corrupted = bytearray(data)
    corrupted[data.find(b"\r\nERR\t") + 6] ^= 0x01  # the first second half fails
    readings, _ = decode(bytes(corrupted))
    assert readings == [first_half, *clean[1:]]


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


def _readings_by_block(data: bytes) -> list[list[tuple[int, Fields]]]:
    """The readings of an intact capture, each as its blocks: (block index, fields)."""
    readings: list[list[tuple[int, Fields]]] = []
    for index, span in enumerate(_blocks(data)):
        block = strip_hex(span)[0] if b":" in span[:-1] else span
        block = block[block.find(b"\r\n"):]  # without the lead or a HEX message before it
        fields = parse_fields(block) if sum(block) % 256 == 0 else None
        if not fields:
            continue  # the lead, or a block the capture cuts
        if "PID" in fields or "V" in fields or not readings:
            readings.append([])
        readings[-1].append((index, fields))
    return readings


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(_CAPTURES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=6),
)
def test_byte_flips_never_change_a_reading(name: str, flips: list[tuple[int, int]]) -> None:
    """Bit flips anywhere, at most one per block: a sum mod 256 sees every one of them.
    (Two flips that cancel out inside one block, +1 here and -1 there, pass any checksum of
    this kind: the protocol's own limit.) Each reading is the first blocks of a real reading,
    never altered, never mixed; and every reading whose first block is intact goes out."""
    original = vedirect_fixture(name).read_bytes()[:8000]
    real = _readings_by_block(original)
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
    got = decode(bytes(data))[0]
    which = 0  # readings come out in order: each from a later real reading than the last
    for reading in got:
        while which < len(real):
            prefixes = [dict(kv for _, f in real[which][:n] for kv in f.items())
                        for n in range(1, len(real[which]) + 1)]
            which += 1
            if reading in prefixes:
                break
        else:
            raise AssertionError(f"{reading} is no real reading's first blocks")
    heads = [dict(blocks[0][1]) for blocks in real if blocks[0][0] not in used]
    assert all(any(r.items() >= head.items() for r in got) for head in heads)
