"""The Aurora protocol, pure: CRC, frames, replies, decoders, state tables, normalized fields."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inverter import aurora
from services.inverter.aurora import (
    AuroraError,
    CrcError,
    FrameError,
    Identity,
    State,
    TransmissionError,
    crc16_x25,
    encode_reply,
    parse_reply,
    request,
)
from services.inverter.types import STATUSES


def power_one_crc(data: bytes) -> int:
    """The protocol document's byte-wise CRC (BccLo/BccHi), written independently of ours."""
    lo, hi = 0xFF, 0xFF
    for byte in data:
        new = (byte ^ lo) & 0xFF
        tmp = (new << 4) & 0xFF
        new = tmp ^ new
        tmp = new >> 5
        lo = hi
        hi = new ^ tmp
        tmp = (new << 3) & 0xFF
        lo ^= tmp
        tmp = new >> 4
        lo ^= tmp
    return ((~hi & 0xFF) << 8) | (~lo & 0xFF)


def reply(*payload: int) -> bytes:
    body = bytes(payload).ljust(6, b"\0")
    return body + power_one_crc(body).to_bytes(2, "little")


def test_crc_check_value() -> None:
    # CRC-16/X.25's catalogued check value (the CRC of "123456789").
    assert crc16_x25(b"123456789") == 0x906E
    assert power_one_crc(b"123456789") == 0x906E


@given(st.binary(max_size=32))
def test_crc_matches_the_documents_algorithm(data: bytes) -> None:
    assert crc16_x25(data) == power_one_crc(data)


# Exchanges with real PVI inverters, as logged in the comments of a public RS485 data logger's
# firmware: request arguments, the request on the wire, the reply on the wire.
GOLDEN = [
    ((2, 50), "0232000000000000ed69", "000602020200" + "6973"),  # state: Run, MPPT x2
    ((2, 59, 3, 0), "023b030000000000a924", "0006459e16e1" + "531a"),  # grid power
    ((2, 59, 23, 0), "023b170000000000b576", "000644018a11" + "2482"),  # input 1 voltage
    ((2, 78, 0), "024e0000000000003bc9", "00060000283d" + "82cb"),  # daily energy
    ((2, 78, 5), "024e050000000000bcdd", "00060000d5ad" + "7b93"),  # lifetime energy
    ((3, 59, 1, 0), "033b01000000000040ad", "000643670282" + "8fe2"),  # grid voltage, addr 3
]


@pytest.mark.parametrize(("args", "wire", "answer"), GOLDEN)
def test_golden_requests(args: tuple[int, ...], wire: str, answer: str) -> None:
    got = request(*args)
    assert got.hex() == wire
    assert int.from_bytes(got[8:], "little") == power_one_crc(got[:8])  # low byte first
    assert parse_reply(bytes.fromhex(answer)).payload == bytes.fromhex(answer)[:6]


def test_golden_replies_decode() -> None:
    def answer(i: int) -> aurora.Reply:
        return parse_reply(bytes.fromhex(GOLDEN[i][2]))

    assert aurora.decode_state(answer(0)) == State(6, 2, 2, 2, 0)
    assert aurora.decode_float(answer(1)) == 5058.86
    assert aurora.decode_float(answer(2)) == 518.1573
    assert aurora.decode_uint32(answer(3)) == 10301
    assert aurora.decode_uint32(answer(4)) == 54701
    assert aurora.decode_float(answer(5)) == 231.0098


def test_request_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="bad request"):
        request(2, 59, 1, 2, 3, 4, 5, 6, 7)
    with pytest.raises(ValueError, match="bad request"):
        request(256, 50)


def test_float_measure_is_big_endian() -> None:
    # 230.5 V = 0x43668000.
    got = parse_reply(reply(0, 6, 0x43, 0x66, 0x80, 0x00))
    assert aurora.decode_float(got) == 230.5
    assert (got.transmission_state, got.global_state) == (0, 6)


def test_float_keeps_float32_digits_only() -> None:
    got = parse_reply(reply(0, 6, *struct.pack(">f", 11.4671)))
    assert aurora.decode_float(got) == 11.4671


def test_uint32_energy_is_big_endian() -> None:
    got = parse_reply(reply(0, 6, 0x00, 0xBC, 0x61, 0x4E))
    assert aurora.decode_uint32(got) == 12_345_678


def test_ascii_commands_use_all_six_bytes() -> None:
    # '3' is 51, "command not implemented" if read as a transmission state: not for 63/52.
    frame = reply(*b"345678")
    assert aurora.decode_ascii(parse_reply(frame, aurora.SERIAL_NUMBER)) == "345678"
    assert aurora.decode_ascii(parse_reply(frame, aurora.PART_NUMBER)) == "345678"
    with pytest.raises(TransmissionError):
        parse_reply(frame, aurora.STATE)


def test_firmware_and_version() -> None:
    assert aurora.decode_firmware(parse_reply(reply(0, 6, *b"C025"))) == "C.0.2.5"
    assert aurora.decode_version(parse_reply(reply(0, 6, *b"1ENN"))) == "1ENN"
    assert Identity(version="1ENN", part_number="-3G96-").model == "PVI-3.0-OUTD"
    assert Identity(version="?ENN", part_number="-3G96-").model == "-3G96-"
    assert Identity().model is None


@pytest.mark.parametrize("state", sorted(aurora.TRANSMISSION_STATES.keys() - {0}))
def test_every_transmission_error(state: int) -> None:
    with pytest.raises(TransmissionError) as caught:
        parse_reply(reply(state, 6))
    assert caught.value.state == state
    assert caught.value.meaning == aurora.TRANSMISSION_STATES[state]
    assert str(state) in str(caught.value)


def test_unknown_transmission_state() -> None:
    with pytest.raises(TransmissionError) as caught:
        parse_reply(reply(99, 6))
    assert caught.value.meaning == "Unknown"


def test_bad_crc_and_bad_length() -> None:
    good = reply(0, 6, 1, 2, 3, 4)
    with pytest.raises(CrcError):
        parse_reply(good[:-1] + bytes([good[-1] ^ 0x01]))
    with pytest.raises(CrcError):  # the CRC's bytes swapped: it is low byte first
        parse_reply(good[:6] + good[7:5:-1])
    for frame in (b"", good[:7], good + b"\0"):
        with pytest.raises(FrameError):
            parse_reply(frame)


@given(st.binary(min_size=0, max_size=12), st.sampled_from([None, 50, 52, 59, 63, 78]))
def test_parse_reply_raises_only_aurora_errors(frame: bytes, command: int | None) -> None:
    try:
        got = parse_reply(frame, command)
    except AuroraError:
        return
    assert got.payload == frame[:6]


@given(st.binary(min_size=6, max_size=6))
def test_reply_round_trip(payload: bytes) -> None:
    assert parse_reply(encode_reply(payload), aurora.SERIAL_NUMBER).payload == payload


def test_state_reply_and_status() -> None:
    state = aurora.decode_state(parse_reply(reply(0, 6, 2, 2, 7, 0)))
    assert state == State(6, 2, 2, 7, 0)
    assert state.status == "mppt"
    assert state.names() == {"global_state": "Run", "inverter_state": "Run",
                             "dcdc1_state": "MPPT", "dcdc2_state": "Input Low",
                             "alarm_state": "No Alarm"}


@pytest.mark.parametrize(
    ("code", "status"),
    [(1, "sleeping"), (30, "sleeping"), (2, "starting"), (5, "starting"), (6, "mppt"),
     (8, "standby"), (9, "fault"), (15, "fault"), (25, "off"), (200, None)],
)
def test_global_state_to_status(code: int, status: str | None) -> None:
    assert State(code, 0, 0, 0, 0).status == status


def test_state_tables_map_into_design_statuses() -> None:
    for name, status in aurora.GLOBAL_STATES.values():
        assert name
        assert status is None or status in STATUSES
    assert State(200, 200, 200, 200, 200).names() == dict.fromkeys(
        ("global_state", "inverter_state", "dcdc1_state", "dcdc2_state", "alarm_state"),
        "Unknown")


MEASURES = {
    aurora.GRID_VOLTAGE: 231.0, aurora.GRID_CURRENT: 8.0, aurora.GRID_POWER: 1848.0,
    aurora.FREQUENCY: 50.01, aurora.INVERTER_TEMPERATURE: 41.5,
    aurora.BOOSTER_TEMPERATURE: 39.0, aurora.INPUT1_VOLTAGE: 300.0,
    aurora.INPUT1_CURRENT: 4.0, aurora.INPUT2_VOLTAGE: 280.0, aurora.INPUT2_CURRENT: 2.5,
}


def test_normalize_full_poll() -> None:
    identity = Identity(serial="123456", part_number="-3G96-", firmware="C.0.2.5",
                        version="1ENN")
    got = aurora.normalize(state=State(6, 2, 2, 2, 0), measures=MEASURES,
                           lifetime_wh=12_345_678, identity=identity)
    assert got.kind == "inverter"
    assert got.fields == {
        "manufacturer": "ABB/Power-One", "model": "PVI-3.0-OUTD", "serial": "123456",
        "firmware": "C.0.2.5", "status": "mppt", "ac_power_w": 1848.0,
        "ac_energy_wh": 12_345_678, "ac_voltage_v": [231.0], "ac_current_a": [8.0],
        "ac_frequency_hz": 50.01, "temperature_c": 41.5, "dc_power_w": 1900.0,
        "mppt": [{"dc_voltage_v": 300.0, "dc_current_a": 4.0, "dc_power_w": 1200.0},
                 {"dc_voltage_v": 280.0, "dc_current_a": 2.5, "dc_power_w": 700.0}],
    }
    assert got.raw["part_number"] == "-3G96-"
    assert got.raw["global_state"] == "Run"
    assert got.raw["booster_temperature_c"] == 39.0


def test_normalize_absent_values() -> None:
    measures = {aurora.GRID_POWER: math.nan, aurora.INPUT1_VOLTAGE: 300.0,
                aurora.INPUT1_CURRENT: 1.0, aurora.INPUT2_VOLTAGE: 12.0}
    got = aurora.normalize(state=State(200, 0, 0, 0, 0), measures=measures, lifetime_wh=0)
    assert got.fields == {
        "manufacturer": "ABB/Power-One", "dc_power_w": 300.0, "dc_voltage_v": 300.0,
        "dc_current_a": 1.0,
        "mppt": [{"dc_voltage_v": 300.0, "dc_current_a": 1.0, "dc_power_w": 300.0}],
    }  # NaN power, energy 0, an unknown state and a half-read input 2: all absent
    assert got.raw["global_state"] == "Unknown"
