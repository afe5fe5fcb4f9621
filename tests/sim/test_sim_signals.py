"""`enerbox sim tic|vedirect` survive kill -STOP / kill -CONT and go on producing data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from services.sim.cli import _serve
from services.sim.pty_port import PtyPort
from services.teleinfo.protocol import Decoder as TicDecoder
from services.teleinfo.protocol import Mode
from services.vedirect.protocol import Decoder as VeDecoder
from tests.conftest import ROOT

LIMIT_S = 15.0  # guards a hang only; every wait below ends on data or on its absence


def _tic_frame(ser: serial.Serial) -> bool:
    decoder = TicDecoder(Mode.HISTORIQUE)
    end = time.monotonic() + LIMIT_S
    while time.monotonic() < end:
        if any(frame.valid for frame in decoder.feed(ser.read(512))):
            return True
    return False


def _vedirect_reading(ser: serial.Serial) -> bool:
    decoder = VeDecoder()
    end = time.monotonic() + LIMIT_S
    while time.monotonic() < end:
        if any(True for _ in decoder.feed(ser.read(512))):
            return True
    return False


SIMS: dict[str, tuple[list[str], int, Callable[[serial.Serial], bool]]] = {
    "tic": (["tic", "--speed", "8"], 1200, _tic_frame),
    "vedirect": (["vedirect", "--device", "bmv", "--speed", "8"], 19200, _vedirect_reading),
}


def _line_goes_quiet(ser: serial.Serial, quiet_s: float) -> bool:
    """True once nothing has come for ``quiet_s`` (what was queued before is drained)."""
    end = time.monotonic() + LIMIT_S
    last = time.monotonic()
    while time.monotonic() < end:
        if ser.read(4096):
            last = time.monotonic()
        elif time.monotonic() - last >= quiet_s:
            return True
    return False


@pytest.fixture
def sim_proc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[
        tuple[subprocess.Popen[str], Path, str]]:
    kind: str = request.param
    args, _, _ = SIMS[kind]
    link = tmp_path / f"{kind}0"
    log = tmp_path / "sim.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.sim", *args, "--link", str(link)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        assert proc.stdout is not None
        assert " on " in proc.stdout.readline()  # the link exists once this is printed
        yield proc, link, kind
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert "Traceback" not in log.read_text(encoding="utf-8"), log.read_text(encoding="utf-8")


@pytest.mark.parametrize("sim_proc", sorted(SIMS), indirect=True)
def test_stop_and_continue_neither_crash_nor_silence_the_simulator(
    sim_proc: tuple[subprocess.Popen[str], Path, str],
) -> None:
    proc, link, kind = sim_proc
    _, baud, produced = SIMS[kind]
    with serial.Serial(str(link), baud, timeout=0.2) as ser:
        assert produced(ser)
        os.kill(proc.pid, signal.SIGSTOP)
        # Stopped for longer than any wait inside the simulator (the crash needed > 0.5 s):
        # the line is silent for a whole second, which also shows the process really stopped.
        assert _line_goes_quiet(ser, 1.0)
        os.kill(proc.pid, signal.SIGCONT)
        assert produced(ser), "no data after SIGCONT"
        assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert not link.is_symlink()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_ends_the_simulator_with_an_error(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"\r\n"
        raise OSError("the source broke")

    with PtyPort(tmp_path / "tic0", 1200, speed=8) as port:
        assert _serve(broken(), port, threading.Event(), "test simulator") is False
