"""The pty port and the ``sim tic`` command, read through pyserial like a service would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import serial

from services.sim.cli import _day_profile, build_parser
from services.sim.pty_port import PtyPort
from services.sim.tic import TicMeterSim
from services.teleinfo.protocol import Decoder, Frame, Mode

ROOT = Path(__file__).resolve().parents[2]


def open_reader(link: Path) -> serial.Serial:
    return serial.Serial(str(link), 9600, bytesize=7, parity="E", timeout=0.2)


def read_valid_frame(ser: serial.Serial, mode: Mode, limit_s: float = 15.0) -> Frame:
    """Read until one complete, valid frame is decoded (the limit only guards a hang)."""
    decoder = Decoder(mode)
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        for frame in decoder.feed(ser.read(512)):
            if frame.valid:
                return frame
    raise AssertionError("no valid frame read")


class Writer:
    """Writes simulated frames to a port from a thread until stopped."""

    def __init__(self, port: PtyPort, mode: Mode) -> None:
        self.stop = threading.Event()
        self.sim = TicMeterSim(mode, 1, "hc")
        self.port = port
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            frame = self.sim.frame_at(time.monotonic() - start, datetime.now())
            self.port.write_paced(frame, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def port(tmp_path: Path) -> Iterator[PtyPort]:
    with PtyPort(tmp_path / "dev" / "tic0", Mode.STANDARD.baudrate, speed=8.0) as p:
        yield p


@pytest.fixture
def writer(port: PtyPort) -> Iterator[Writer]:
    w = Writer(port, Mode.STANDARD)
    yield w
    w.close()


def test_link_points_at_a_raw_pty(port: PtyPort) -> None:
    assert port.link.is_symlink()
    assert str(port.link.readlink()) == port.slave_name
    assert port.slave_name.startswith("/dev/")
    assert port.bytes_per_s == 960.0


def test_paced_frames_decode_through_pyserial(port: PtyPort, writer: Writer) -> None:
    with open_reader(port.link) as ser:
        frame = read_valid_frame(ser, Mode.STANDARD)
    assert frame.groups["ADSC"].value == "031999000001"
    assert "PJOURF+1" in frame.groups


def test_unplug_fails_the_reader_and_replug_works(port: PtyPort, writer: Writer) -> None:
    first = port.slave_name
    ser = open_reader(port.link)
    try:
        read_valid_frame(ser, Mode.STANDARD)
        port.unplug()
        assert not port.link.exists() and not port.link.is_symlink()
        assert not port.plugged and port.slave_name == ""
        with pytest.raises((serial.SerialException, OSError)):
            for _ in range(50):
                ser.read(100)
    finally:
        ser.close()
    with pytest.raises(serial.SerialException):
        open_reader(port.link)
    port.replug()
    assert port.plugged and port.link.is_symlink() and port.slave_name
    assert first  # the new device may or may not reuse the number; the link is what matters
    with open_reader(port.link) as ser:
        read_valid_frame(ser, Mode.STANDARD)


def test_reader_reconnect_keeps_the_port_alive(port: PtyPort, writer: Writer) -> None:
    for _ in range(2):  # close and reopen, as a service does after an error
        with open_reader(port.link) as ser:
            read_valid_frame(ser, Mode.STANDARD)
    assert port.plugged


def test_writes_never_block_without_a_reader(tmp_path: Path) -> None:
    with PtyPort(tmp_path / "tic0", 9600, speed=1000.0) as p:
        data = b"x" * 300_000  # far more than a pty queue holds
        taken = p.write_paced(data, threading.Event())
        assert taken == p.bytes_written
        assert p.bytes_written + p.bytes_dropped == len(data)


def test_stop_event_ends_a_write(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with PtyPort(tmp_path / "tic0", 1200) as p:
        assert p.write_paced(b"\x02" * 10_000, stop) == 0
        p.unplug()
        assert p.write_paced(b"abc", threading.Event(), speed=100.0) == 0  # unplugged: dropped
        assert p.bytes_dropped == 3


def test_close_removes_the_link_and_refuses_a_real_file(tmp_path: Path) -> None:
    link = tmp_path / "tic0"
    with PtyPort(link, 1200):
        assert link.is_symlink()
    assert not link.exists() and not link.is_symlink()
    link.write_text("not a device")
    with pytest.raises(FileExistsError):
        PtyPort(link, 1200)
    assert link.read_text() == "not a device"


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["tic"])
    assert (args.sim, args.mode, args.phases, args.tariff) == ("tic", "historique", 1, "base")
    assert args.link == Path("run/sim/tic0") and args.speed == 1.0
    assert (args.peak_at_s, args.peak_duration_s, args.home, args.follow) == (120.0, 30.0,
                                                                              False, None)
    assert _day_profile(args).day_length_s == 600.0  # the default day, from midnight
    assert _day_profile(args).start_hour == 0.0
    home = build_parser().parse_args(["tic", "--home", "--follow", "127.0.0.1:1883"])
    assert home.follow == ("127.0.0.1", 1883)
    assert _day_profile(home).pv_peak_va > 0
    for bad in ("1883", "host:", "host:99999"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["tic", "--follow", bad])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tic", "--speed", "0"])


@pytest.mark.parametrize(
    ("sig", "extra"),
    [(signal.SIGTERM, ["--mode", "standard", "--phases", "3", "--tariff", "tempo"]),
     (signal.SIGINT, ["--mode", "standard", "--producer"])],
)
def test_cli_serves_frames_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals, extra: list[str]
) -> None:
    link = tmp_path / "run" / "tic0"
    cmd = [sys.executable, "-m", "services.sim", "tic", "--link", str(link), "--speed", "8", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("TIC simulator: standard ")
        assert f" on {link} -> /dev/" in line
        with open_reader(link) as ser:
            frame = read_valid_frame(ser, Mode.STANDARD)
        assert ("SINSTS3" in frame.groups) == ("--phases" in extra)
        assert ("EAIT" in frame.groups) == ("--producer" in extra)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert not link.is_symlink()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_cli_replay(tmp_path: Path) -> None:
    capture = tmp_path / "capture.bin"
    sim = TicMeterSim(Mode.STANDARD, 1, "base")
    capture.write_bytes(b"".join(sim.frame_at(t, datetime(2024, 1, 1)) for t in range(3)))
    link = tmp_path / "tic0"
    cmd = [sys.executable, "-m", "services.sim", "tic", "--mode", "standard", "--link", str(link),
           "--speed", "8", "--replay", str(capture)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "replay of" in proc.stdout.readline()
        with open_reader(link) as ser:
            frame = read_valid_frame(ser, Mode.STANDARD)
        assert frame.groups["DATE"].horodate == "H240101000000"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
