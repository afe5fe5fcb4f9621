"""The VE.Direct simulators: wire encoding, a simulated day of each device, the pty and the CLI."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from services.sim.cli import _vedirect_device, build_parser
from services.sim.home import HOME_DAY_LENGTH_S, HOME_START_HOUR
from services.sim.vedirect import encode_block, encode_hex
from services.sim.vedirect_devices import BatteryMonitorSim, SolarChargerSim
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
CHECKSUM = b"\r\nChecksum\t"
DAY = 600.0  # default simulated day length (s)
Fields = dict[str, str]

BMV_MAIN = ["PID", "V", "I", "P", "CE", "SOC", "TTG", "Alarm", "AR", "BMV", "FW", "MON", "SER#"]
BMV_HISTORY = [f"H{i}" for i in (*range(1, 13), 15, 16, 17, 18)]
MPPT_FIRST = ["PID", "FW", "SER#", "V", "I", "VPV", "PPV", "CS", "MPPT", "OR"]
MPPT_SECOND = ["ERR", "LOAD", "IL", "H19", "H20", "H21", "H22", "H23", "HSDS"]


# An independent reading of the wire format, so the encoder is not checked against itself.


def parse_block(block: bytes) -> list[tuple[str, str]]:
    """Fields of one block; fails unless it is well formed and sums to 0 mod 256."""
    assert block.startswith(b"\r\n"), block[:20]
    assert sum(block) % 256 == 0, block
    body = block[:-1]  # the last byte is the checksum, whatever its value
    assert body.endswith(CHECKSUM), block[-20:]
    fields = []
    for line in body[2 : -len(CHECKSUM)].split(b"\r\n"):
        label, tab, value = line.partition(b"\t")
        assert tab and label, line
        fields.append((label.decode("ascii"), value.decode("ascii")))
    return fields


def hex_valid(message: bytes) -> bool:
    """True for ``:`` + nibble + hex pairs + LF whose bytes and check sum to 0x55."""
    if not (message.startswith(b":") and message.endswith(b"\n")) or len(message) % 2 == 0:
        return False
    digits = message[1:-1].decode("ascii")
    return (int(digits[0], 16) + sum(bytes.fromhex(digits[1:]))) % 256 == 0x55


def split_stream(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """Blocks and HEX messages of a stream whose HEX messages come between blocks.

    Bytes before the first CRLF and a trailing partial block are dropped; when the stream was
    caught mid-block, the first "block" is a partial one and fails its checksum.
    """
    blocks, hexes = [], []
    i = data.find(b"\r\n")
    while 0 <= i < len(data):
        if data.startswith(b":", i):
            end = data.find(b"\n", i)
            if end == -1:
                break
            hexes.append(data[i : end + 1])
            i = end + 1
        elif data.startswith(b"\r\n", i):
            end = data.find(CHECKSUM, i)
            if end == -1 or end + len(CHECKSUM) >= len(data):
                break
            blocks.append(data[i : end + len(CHECKSUM) + 1])
            i = end + len(CHECKSUM) + 1
        else:
            raise AssertionError(f"unexpected bytes at {i}: {data[i : i + 20]!r}")
    return blocks, hexes


def valid(block: bytes) -> bool:
    return sum(block) % 256 == 0


# encode_block / encode_hex


@pytest.mark.parametrize(
    "fields",
    [
        [("PID", "0xA389"), ("V", "12800"), ("I", "-2674"), ("TTG", "---"), ("SER#", "HQ1")],
        [("H1", "-149322")],
        [("LOAD", "ON"), ("BMV", "SmartShunt 500A/50mV"), ("Empty", "")],
    ],
)
def test_encode_block_sums_to_zero_and_round_trips(fields: list[tuple[str, str]]) -> None:
    block = encode_block(fields)
    assert sum(block) % 256 == 0
    assert parse_block(block) == fields
    assert block.count(b"\r\n") == len(fields) + 1


@pytest.mark.parametrize("target", [b"\t", b"\r", b"\n", b":"])
def test_checksum_byte_can_be_tab_cr_lf_or_colon(target: bytes) -> None:
    # Serial numbers of 1 to 4 characters move the sum over more than 256 values: one of them
    # forces the wanted checksum byte.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    candidates = (
        "".join(chars) for n in range(1, 5) for chars in itertools.product(alphabet, repeat=n)
    )
    for ser in candidates:
        fields = [("PID", "0xA060"), ("SER#", ser), ("V", "13060")]
        block = encode_block(fields)
        if block[-1:] == target:
            break
    else:
        pytest.fail(f"no serial gives checksum {target!r}")
    assert sum(block) % 256 == 0
    assert block.endswith(CHECKSUM + target)
    assert parse_block(block) == fields
    # Two blocks back to back still split where they should.
    assert split_stream(block + block)[0] == [block, block]


@pytest.mark.skipif(SHARED is None, reason="../shared/fixtures not found")
def test_encode_block_rebuilds_real_blocks_byte_for_byte() -> None:
    assert SHARED is not None
    data = (SHARED / "fixtures" / "vedirect" / "excerpt_bmv700_colon_checksum.bin").read_bytes()
    blocks, hexes = split_stream(data)
    assert len(blocks) == 2 and not hexes
    assert blocks[0].endswith(b":")  # the capture's point: a ':' checksum byte
    for block in blocks:
        assert encode_block(parse_block(block)) == block


@pytest.mark.parametrize(
    "fields",
    [[], [("", "1")], [("V\t", "1")], [("V", "1\r\n")], [("V", "a:b")], [("V", "é")]],
)
def test_encode_block_refuses_what_the_wire_cannot_carry(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        encode_block(fields)


def test_encode_hex_check_byte() -> None:
    # Messages from a real SmartSolar 150/70 (KinDR007 capture in ../shared/fixtures).
    assert encode_hex(0xA, bytes.fromhex("BBED008D28")) == b":ABBED008D28EE\n"
    assert encode_hex(0xA, bytes.fromhex("BCED0045A10000")) == b":ABCED0045A10000BC\n"
    for command, payload in [(0, b""), (7, b"\xff" * 9), (0xA, bytes(range(0, 250, 7)))]:
        msg = encode_hex(command, payload)
        assert hex_valid(msg)
        assert msg[1:2] == f"{command:X}".encode()
        assert msg[2:-3] == payload.hex().upper().encode()
        assert (command + sum(payload) + int(msg[-3:-1], 16)) % 256 == 0x55
    with pytest.raises(ValueError):
        encode_hex(0x10, b"")


# A simulated day of each device


def bmv_day(sim: BatteryMonitorSim, seconds: float) -> list[tuple[float, Fields, Fields]]:
    """(t, main, history) per simulated second; each reading is exactly the two blocks."""
    out = []
    for t in range(int(seconds)):
        blocks = sim.blocks_at(float(t))
        assert len(blocks) == 2
        main, history = (dict(parse_block(b)) for b in blocks)
        out.append((float(t), main, history))
    return out


def test_battery_monitor_over_two_days() -> None:
    sim = BatteryMonitorSim()
    readings = bmv_day(sim, 2 * DAY)
    socs, currents = [], []
    for _, main, hist in readings:
        assert list(main) == BMV_MAIN and list(hist) == BMV_HISTORY
        assert main["PID"] == "0xA389" and main["SER#"] == "HQ2231SIM01"
        assert main["BMV"] == "SmartShunt 500A/50mV" and main["FW"] == "0413"
        v, i, ce, soc = (int(main[k]) for k in ("V", "I", "CE", "SOC"))
        assert 0 <= soc <= 1000 and ce <= 0
        assert abs(soc - (1000 + ce / 200)) <= 1  # CE in mAh of a 200 Ah bank
        assert abs(int(main["P"]) - v * i / 1e6) <= 1
        assert (main["TTG"] == "-1") == (i >= 0)
        assert int(hist["H1"]) <= int(hist["H2"]) <= 0 and int(hist["H1"]) <= ce
        assert int(hist["H2"]) <= ce
        assert int(hist["H7"]) <= v <= int(hist["H8"])
        socs.append(soc)
        currents.append(i)
    for (a, b), i in zip(itertools.pairwise(socs), currents[1:], strict=True):
        assert b == a or (b > a) == (i > 0), (a, b, i)  # SOC follows the current's sign
    assert min(currents) < -1000 and max(currents) > 10_000  # night loads, midday PV
    assert 1000 in socs and min(socs) < 800
    first, last = readings[0][2], readings[-1][2]
    for label in ("H6", "H17", "H18"):  # drawn Ah (negative), energies: only ever grow
        series = [abs(int(h[label])) for _, _, h in readings]
        assert all(b >= a for a, b in itertools.pairwise(series)), label
        assert series[-1] > series[0], label
    assert int(last["H10"]) == int(first["H10"]) + 2  # one sync each afternoon
    assert int(last["H4"]) == int(first["H4"]) + 2
    since_full = [int(h["H9"]) for _, _, h in readings]
    assert since_full.count(0) >= 1 and max(since_full) > 60_000


def test_battery_monitor_options() -> None:
    starter = dict(parse_block(BatteryMonitorSim(aux="starter").blocks_at(0.0)[0]))
    assert list(starter)[:3] == ["PID", "V", "VS"] and 12_000 < int(starter["VS"]) < 14_000
    mid = dict(parse_block(BatteryMonitorSim(aux="midpoint").blocks_at(0.0)[0]))
    assert list(mid)[:4] == ["PID", "V", "VM", "DM"]
    assert abs(int(mid["VM"]) - int(mid["V"]) / 2) < 50 and abs(int(mid["DM"])) < 10
    quiet = dict(parse_block(BatteryMonitorSim(send_serial=False).blocks_at(0.0)[0]))
    assert "SER#" not in quiet
    with pytest.raises(ValueError):
        BatteryMonitorSim("HQ:1")


def test_unsynchronised_monitor_sends_dashes_until_full() -> None:
    readings = bmv_day(BatteryMonitorSim(synchronised=False), DAY)
    socs = [main["SOC"] for _, main, _ in readings]
    first_full = socs.index("1000")
    assert set(socs[:first_full]) == {"---"}
    assert {main["TTG"] for _, main, _ in readings[:first_full]} == {"---"}
    assert "---" not in socs[first_full:]
    assert all(int(main["CE"]) <= 0 for _, main, _ in readings)


def test_solar_charger_over_three_days() -> None:
    sim = SolarChargerSim()
    prev: tuple[Fields, Fields] | None = None
    day_max_ppv = 0
    totals, states, hex_count = [], set(), 0
    days_closed = 0
    for t in range(int(3 * DAY)):
        blocks = sim.blocks_at(float(t))
        assert blocks[0].startswith(b"\r\nPID") and blocks[-1].startswith(b"\r\nERR")
        for msg in blocks[1:-1]:
            assert hex_valid(msg) and msg.startswith(b":A"), msg
            hex_count += 1
        a, b = (dict(parse_block(x)) for x in (blocks[0], blocks[-1]))
        assert list(a) == MPPT_FIRST and list(b) == MPPT_SECOND
        assert a["PID"] == "0xA060" and a["SER#"] == "HQ2245SIM02"
        ppv, cs = int(a["PPV"]), int(a["CS"])
        hour = 24 * (t % DAY) / DAY
        if hour < 7 or hour >= 20:  # night
            assert (ppv, cs, a["MPPT"], a["OR"]) == (0, 0, "0", "0x00000001"), (t, a)
        states.add((cs, int(a["MPPT"])))
        if prev is not None and b["HSDS"] != prev[1]["HSDS"]:  # a new day
            assert int(b["HSDS"]) == int(prev[1]["HSDS"]) + 1
            assert b["H20"] == "0" and b["H21"] == "0"
            assert b["H22"] == prev[1]["H20"] and b["H23"] == prev[1]["H21"]
            assert int(b["H22"]) > 50  # a clear day yields more than 0.5 kWh
            day_max_ppv = 0
            days_closed += 1
        elif prev is not None:
            assert int(b["H20"]) >= int(prev[1]["H20"])
        day_max_ppv = max(day_max_ppv, ppv)
        assert int(b["H21"]) == day_max_ppv  # max power today, PPV included
        totals.append(int(b["H19"]))
        assert int(a["I"]) + int(b["IL"]) >= 0  # the charger never takes from the battery
        prev = (a, b)
    assert days_closed == 2
    assert all(y >= x for x, y in itertools.pairwise(totals)) and totals[-1] > totals[0]
    assert {(0, 0), (3, 2), (4, 1), (5, 1)} <= states
    assert hex_count > 0


# Through the pty and the command line


def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path, str]:
    """Start `python -m services.sim vedirect`; return it, its link and its first line."""
    link = tmp_path / "run" / "vedirect0"
    cmd = [sys.executable, "-m", "services.sim", "vedirect", "--link", str(link), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, link, proc.stdout.readline()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def read_for(link: Path, seconds: float) -> bytes:
    """Bytes read from the link at 19200 8N1 for ``seconds``."""
    data = bytearray()
    with serial.Serial(str(link), 19200, bytesize=8, parity="N", stopbits=1, timeout=0.1) as ser:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data += ser.read(512)
    return bytes(data)


def test_pty_delivers_checksum_valid_blocks(tmp_path: Path) -> None:
    proc, link, line = serve(tmp_path, "--device", "bmv", "--speed", "4")
    try:
        assert line.startswith("VE.Direct simulator: SmartShunt 500A/50mV (HQ2231SIM01) on ")
        assert line.rstrip().split(" -> ")[1].startswith("/dev/")
        data = read_for(link, 3.0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        stop(proc)
    blocks, hexes = split_stream(data)
    blocks = blocks[1:] if blocks and not valid(blocks[0]) else blocks  # caught mid-block
    assert not hexes and len(blocks) >= 4
    assert all(valid(b) for b in blocks)
    kinds = ["main" if b.startswith(b"\r\nPID") else "history" for b in blocks]
    assert all(x != y for x, y in itertools.pairwise(kinds))  # main and history alternate
    main = dict(parse_block(blocks[kinds.index("main")]))
    assert (main["PID"], main["SER#"]) == ("0xA389", "HQ2231SIM01")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_starts_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc, link, line = serve(tmp_path, "--device", "mppt", "--speed", "8", "--serial", "HQTEST")
    try:
        assert line.startswith("VE.Direct simulator: SmartSolar MPPT 100|20 48V (HQTEST) on ")
        assert f" on {link} -> /dev/" in line
        assert link.is_symlink()
        blocks, _ = split_stream(read_for(link, 1.0))
        assert any(valid(b) and b"SER#\tHQTEST\r\n" in b for b in blocks)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert not link.is_symlink()
    finally:
        stop(proc)


def test_cli_replays_a_capture(tmp_path: Path) -> None:
    capture = tmp_path / "capture.bin"
    sim = SolarChargerSim("HQREPLAY")
    capture.write_bytes(b"".join(b for t in range(10) for b in sim.blocks_at(float(t))))
    proc, link, line = serve(tmp_path, "--replay", str(capture), "--speed", "4")
    try:
        assert line.startswith(f"VE.Direct simulator: replay of {capture} on ")
        blocks, _ = split_stream(read_for(link, 1.0))
        assert any(valid(b) and b"SER#\tHQREPLAY\r\n" in b for b in blocks)
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)


def test_parser_defaults_and_checks() -> None:
    args = build_parser().parse_args(["vedirect"])
    assert (args.sim, args.device, args.serial, args.replay) == ("vedirect", "bmv", None, None)
    assert args.link == Path("run/sim/vedirect0")
    assert (args.speed, args.home) == (1.0, False)
    assert _vedirect_device(args).system.profile.day_length_s == 600.0  # the default day
    home = _vedirect_device(build_parser().parse_args(["vedirect", "--home"])).system.profile
    assert (home.day_length_s, home.start_hour) == (HOME_DAY_LENGTH_S, HOME_START_HOUR)
    for bad in (["--device", "phoenix"], ["--serial", "HQ\t1"], ["--speed", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["vedirect", *bad])
