"""The Aurora link through pyserial against the pty responder, as the service will use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from services.inverter import aurora
from services.inverter.aurora_link import (
    POLL_MEASURES,
    AuroraLink,
    AuroraTimeout,
    CrcError,
    TransmissionError,
)
from services.sim.aurora import AuroraInverterSim
from services.sim.profile import LoadProfile
from tests.conftest import wait_until

SILENCE_S = 0.2  # reply timeout where silence is expected: keeps those tests short


class Clock:
    """The simulator's time, set by the test (seconds since its start)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(tmp_path: Path, clock: Clock) -> Iterator[AuroraInverterSim]:
    # A 600 s day starting at noon: t=0 is midday, t=300 midnight.
    profile = LoadProfile(day_length_s=600.0, start_hour=12.0, peak=None)
    inverter = AuroraInverterSim(tmp_path / "aurora", profile=profile, clock=clock,
                                 serial="PV0042")
    inverter.start()
    yield inverter
    inverter.stop()


@pytest.fixture
def port(sim: AuroraInverterSim) -> Iterator[serial.Serial]:
    ser = serial.serial_for_url(str(sim.link), baudrate=aurora.BAUDRATE, timeout=0.5)
    yield ser
    ser.close()


def test_full_read(sim: AuroraInverterSim, port: serial.Serial) -> None:
    link = AuroraLink(port)
    got = link.read_inverter(2, identity_cached=False)
    f = got.fields
    assert f["manufacturer"] == "ABB/Power-One"
    assert (f["model"], f["serial"], f["firmware"]) == ("PVI-3.0-OUTD", "PV0042", "C.0.2.5")
    assert f["status"] == "mppt"
    snap = sim.snapshot()  # the clock has not moved: same instant as the poll
    assert f["ac_power_w"] == pytest.approx(snap.ac_w, rel=1e-6)
    assert f["ac_energy_wh"] == snap.lifetime_wh
    assert f["ac_voltage_v"] == [232.0]
    assert len(f["mppt"]) == 2
    assert f["dc_power_w"] == pytest.approx(snap.dc1_w + snap.dc2_w, rel=1e-5)
    assert got.raw["global_state"] == "Run"
    assert link.stats.requests == 4 + 2 + len(POLL_MEASURES)
    assert link.stats.timeouts == link.stats.crc_errors == 0

    # Identity cached: four requests fewer, same identity in the fields.
    before = link.stats.requests
    again = link.read_inverter(2, identity_cached=True)
    assert link.stats.requests - before == 2 + len(POLL_MEASURES)
    assert again.fields["serial"] == "PV0042"


def test_energy_integrates_power(sim: AuroraInverterSim, clock: Clock,
                                 port: serial.Serial) -> None:
    link = AuroraLink(port)
    first = aurora.decode_uint32(link.transact(2, aurora.ENERGY, aurora.ENERGY_LIFETIME))
    clock.t = 25.0  # one simulated hour around 13:00
    second = aurora.decode_uint32(link.transact(2, aurora.ENERGY, aurora.ENERGY_LIFETIME))
    # About 3 kW (sun at 13:00, 2 % noise) for one simulated hour.
    assert 2800 < second - first < 3100


def test_dawn_answers_wait_sun(tmp_path: Path, clock: Clock) -> None:
    # 7:35, the sun just up: the inverter answers "Wait Sun / Grid" at 0 W.
    profile = LoadProfile(day_length_s=600.0, start_hour=7.6, peak=None)
    with AuroraInverterSim(tmp_path / "dawn", profile=profile, clock=clock) as dawn:
        ser = serial.serial_for_url(str(dawn.link), baudrate=aurora.BAUDRATE, timeout=0.5)
        try:
            got = AuroraLink(ser).read_inverter(2, identity_cached=False)
        finally:
            ser.close()
    assert got.fields["status"] == "sleeping"
    assert got.fields["ac_power_w"] == 0.0
    assert got.raw["global_state"] == "Wait Sun / Grid"


def test_night_is_a_timeout_then_a_quiet_gap(sim: AuroraInverterSim,
                                             port: serial.Serial) -> None:
    slept: list[float] = []  # the gaps the link asks for, recorded, not slept
    link = AuroraLink(port, timeout_s=SILENCE_S, quiet_gap_s=0.05, sleep=slept.append)
    sim.night = True
    with pytest.raises(AuroraTimeout):
        link.transact(2, aurora.STATE, timeout_s=SILENCE_S)
    with pytest.raises(AuroraTimeout):  # the whole poll stops at its first request
        link.read_inverter(2, identity_cached=True)
    assert link.stats.timeouts == 2
    sim.night = None  # sunrise
    state = aurora.decode_state(link.transact(2, aurora.STATE))
    assert state.status == "mppt"
    assert slept  # the bus settled before each request that followed a timeout
    assert all(0 < s <= 0.05 for s in slept)


def test_night_by_the_clock(sim: AuroraInverterSim, clock: Clock,
                            port: serial.Serial) -> None:
    clock.t = 300.0  # midnight
    with pytest.raises(AuroraTimeout):
        AuroraLink(port).transact(2, aurora.STATE, timeout_s=SILENCE_S)


@pytest.mark.parametrize("state", [58, 51])
def test_transmission_error(sim: AuroraInverterSim, port: serial.Serial, state: int) -> None:
    link = AuroraLink(port)
    sim.error = state
    with pytest.raises(TransmissionError) as caught:
        link.transact(2, aurora.MEASURE, aurora.GRID_POWER, 0)
    assert caught.value.state == state
    assert link.stats.transmission_errors == 1


def test_missing_measure_is_absent(sim: AuroraInverterSim, port: serial.Serial) -> None:
    # Measure 30 (Riso) is not simulated: "variable does not exist", the rest still read.
    got = AuroraLink(port).read_measures(2, (aurora.GRID_POWER, 30))
    assert set(got) == {aurora.GRID_POWER}


def test_unimplemented_command(sim: AuroraInverterSim, port: serial.Serial) -> None:
    with pytest.raises(TransmissionError) as caught:
        AuroraLink(port).transact(2, 68)  # central inverters only
    assert caught.value.state == 51


def test_wrong_address_and_bad_crc_are_silence(sim: AuroraInverterSim,
                                               port: serial.Serial) -> None:
    link = AuroraLink(port)
    with pytest.raises(AuroraTimeout):
        link.transact(3, aurora.STATE, timeout_s=SILENCE_S)
    bad = bytearray(aurora.request(2, aurora.STATE))
    bad[-1] ^= 0xFF
    port.write(bytes(bad))
    port.timeout = SILENCE_S
    assert port.read(8) == b""
    wait_until(lambda: sim.ignored == 2, 5.0, "the simulator to drop both frames")
    assert sim.requests == 0


def test_echo_is_a_crc_error() -> None:
    # An adapter that echoes the request (loop://): the first 8 bytes read are our own.
    ser = serial.serial_for_url("loop://", baudrate=aurora.BAUDRATE, timeout=SILENCE_S)
    try:
        link = AuroraLink(ser)
        with pytest.raises(CrcError):
            link.transact(2, aurora.STATE)
        assert link.stats.crc_errors == 1
    finally:
        ser.close()
