"""The simulators' counters survive a restart (Home Assistant saw negative consumption when
`make run` restarted them from their defaults), and the Linky's DATE shows the simulated clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
import serial

from services.sim.aurora import AuroraInverterSim
from services.sim.counters import CounterFile
from services.sim.home import home_profile
from services.sim.inverter import InverterSim
from services.sim.tic import PARIS, TicMeterSim, sim_clock
from services.sim.vedirect_devices import BatteryMonitorSim, SolarChargerSim
from services.teleinfo.protocol import Decoder, Frame, Mode
from tests.conftest import ROOT

LIMIT_S = 15.0  # guards a hang only: the waits end on a frame


Sim = TicMeterSim | BatteryMonitorSim | SolarChargerSim | InverterSim


def make(kind: str) -> Sim:
    profile = home_profile()
    if kind == "tic":
        return TicMeterSim(Mode.STANDARD, tariff="tempo", producer=True, profile=profile)
    if kind == "bmv":
        return BatteryMonitorSim(profile=profile)
    if kind == "mppt":
        return SolarChargerSim(profile=profile)
    return InverterSim(profile)


def advance(sim: Sim, t: float) -> None:
    if isinstance(sim, TicMeterSim):
        sim.frame_at(t, datetime(2026, 6, 1, 12, tzinfo=PARIS))
    elif isinstance(sim, InverterSim):
        sim.step(t)
    else:
        sim.blocks_at(t)


@pytest.mark.parametrize("kind", ["tic", "bmv", "mppt", "inverter"])
def test_each_simulator_goes_on_from_its_saved_counters(kind: str, tmp_path: Path) -> None:
    first = make(kind)
    for t in range(0, 3600, 60):
        advance(first, float(t))
    state = CounterFile(tmp_path / "counters.json")
    state.save(first.counters())
    again = make(kind)
    fresh = again.counters()
    again.restore(state.load())
    assert again.counters() == first.counters()
    assert any(first.counters()[k] > v for k, v in fresh.items()), "nothing counted"
    # A file from an older run (lower values) never takes a counter back.
    again.restore(fresh)
    assert again.counters() == first.counters()


def test_the_aurora_inverter_goes_on_from_its_lifetime_energy(tmp_path: Path) -> None:
    clock = [0.0]
    with AuroraInverterSim(tmp_path / "a0", profile=home_profile(),
                           clock=lambda: clock[0]) as first:
        for t in range(0, 600, 10):
            clock[0] = float(t)
            first.snapshot()
        counted = first.counters()
    with AuroraInverterSim(tmp_path / "a1", profile=home_profile()) as again:
        again.restore(counted)
        assert again.snapshot().lifetime_wh == int(counted["lifetime_wh"]) > 12_345_678


def test_a_missing_or_foreign_file_restores_nothing(tmp_path: Path) -> None:
    assert CounterFile(None).load() == {}
    assert CounterFile(tmp_path / "absent.json").load() == {}
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    assert CounterFile(tmp_path / "list.json").load() == {}
    (tmp_path / "mixed.json").write_text('{"a": 1.5, "b": "x", "c": true}', encoding="utf-8")
    assert CounterFile(tmp_path / "mixed.json").load() == {"a": 1.5}


def test_date_is_the_simulated_clock() -> None:
    profile = home_profile()  # starts at 11:30, a day in HOME_DAY_LENGTH_S
    day0 = date(2026, 12, 2)
    assert sim_clock(profile, 0.0, day0) == datetime(2026, 12, 2, 11, 30, tzinfo=PARIS)
    half_day = profile.day_length_s / 2
    assert sim_clock(profile, half_day, day0) == datetime(2026, 12, 2, 23, 30, tzinfo=PARIS)
    assert sim_clock(profile, profile.day_length_s, day0).date() == date(2026, 12, 3)


def first_frame(link: Path) -> Frame:
    decoder = Decoder(Mode.STANDARD)
    end = time.monotonic() + LIMIT_S
    with serial.Serial(str(link), 9600, timeout=0.2) as ser:
        while time.monotonic() < end:
            for frame in decoder.feed(ser.read(1024)):
                if frame.valid:
                    return frame
    raise AssertionError("no frame")


def run_sim(link: Path, state: Path) -> Frame:
    """Start `enerbox sim tic`, read a frame, stop it (SIGTERM, as `make run`'s Ctrl-C)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.sim", "tic", "--home", "--mode", "standard",
         "--tariff", "tempo", "--speed", "4", "--link", str(link), "--state", str(state)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert " on " in proc.stdout.readline()  # the link exists once this is printed
        frame = first_frame(link)
        frame = first_frame(link)  # a frame built after some energy was counted
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        return frame
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_restarted_linky_goes_on_counting(tmp_path: Path) -> None:
    link, state = tmp_path / "tic0", tmp_path / "counters" / "sim-tic.json"
    before = run_sim(link, state)
    east = int(before.groups["EAST"].value)
    saved = CounterFile(state).load()
    assert sum(saved[k] for k in saved if k != "EAIT_wh") >= east
    after = run_sim(link, state)
    assert int(after.groups["EAST"].value) >= east
    assert int(after.groups["EAIT"].value) >= int(before.groups["EAIT"].value)
    # DATE is the simulated clock: the home's day starts at 11:30, whatever the wall clock.
    stamp = before.groups["DATE"].horodate or ""
    assert stamp[7:9] in ("11", "12"), stamp
