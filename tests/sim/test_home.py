"""The simulated home of `make run`: its day, the Linky seen through the real teleinfo decoder,
and the Victron pair under the same sun."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from services.sim.home import HOME_CLOUDS, HOME_DAY_LENGTH_S, HOME_START_HOUR, home_profile
from services.sim.tic import TicMeterSim
from services.sim.vedirect_devices import BatteryMonitorSim, SolarChargerSim
from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, Mode
from tests.sim.test_vedirect_sim import parse_block

PARIS = ZoneInfo("Europe/Paris")
WALL = datetime(2026, 7, 1, 12, 0, tzinfo=PARIS)
HOME = home_profile()


def t_at(hour: float) -> float:
    """Seconds after start at which the home's clock first reads ``hour``."""
    return ((hour - HOME_START_HOUR) % 24.0) / 24.0 * HOME_DAY_LENGTH_S


def decoded(sim: TicMeterSim, t: float, steered_va: float = 0.0) -> dict[str, object]:
    """The normalized state teleinfo would publish for the sim's frame at ``t``."""
    decoder = Decoder(sim.mode)
    (frame,) = list(decoder.feed(sim.frame_at(t, WALL, steered_va)))
    assert frame.valid, frame.rejected
    return normalize(frame)


def home_linky() -> TicMeterSim:
    return TicMeterSim(Mode.STANDARD, 1, "tempo", producer=True, profile=HOME)


def test_the_home_exports_at_midday_and_imports_at_night() -> None:
    assert HOME.at(t_at(13.0)).net_va < -3500  # room for a 3 kW water heater and more
    assert HOME.at(t_at(3.0)).net_va > 200
    assert HOME.at(t_at(19.5)).net_va > 3000  # evening peak
    # At start already the export covers the water heater's 3 kW, its margin and reserve.
    assert HOME.at(0.0).net_va < -3150


def test_clouds_cut_the_pv_while_they_pass() -> None:
    cloud = HOME_CLOUDS[0]
    inside = HOME.at(t_at((cloud.start_h + cloud.end_h) / 2))
    before = HOME.at(t_at(cloud.start_h - 0.05))
    assert sum(inside.pv_va) < (1.0 - cloud.depth + 0.05) * sum(before.pv_va)
    assert inside.net_va > before.net_va + 1500


def test_linky_frames_decode_to_export_at_noon_and_import_at_night() -> None:
    sim = home_linky()
    noon = decoded(sim, t_at(13.0))
    assert isinstance(noon["net_power_va"], int) and noon["net_power_va"] < -3000
    assert noon["net_power_estimated"] is False
    night = decoded(sim, t_at(3.0))
    assert isinstance(night["net_power_va"], int) and night["net_power_va"] > 0


def test_steered_loads_add_to_the_meter_and_its_indexes() -> None:
    bare, steered = home_linky(), home_linky()
    t0, t1 = t_at(13.0), t_at(13.0) + 60.0
    for sim, extra in ((bare, 0.0), (steered, 3000.0)):
        sim.frame_at(t0, WALL, extra)
    a, b = decoded(bare, t1), decoded(steered, t1, 3000.0)
    assert isinstance(a["net_power_va"], int) and isinstance(b["net_power_va"], int)
    assert abs(b["net_power_va"] - a["net_power_va"] - 3000) <= 2  # VA rounding
    assert steered.injected_wh < bare.injected_wh  # less export counted meanwhile
    # At night the water heater's power is drawn: the import index grows by its energy.
    night_bare, night_on = home_linky(), home_linky()
    n0 = t_at(2.0)
    for sim, extra in ((night_bare, 0.0), (night_on, 3000.0)):
        sim.frame_at(n0, WALL, extra)
        sim.frame_at(n0 + 36.0, WALL, extra)
    gained = sum(night_on.indexes.values()) - sum(night_bare.indexes.values())
    assert abs(gained - 30) <= 1  # 3 kW for 36 s = 30 Wh


def test_victron_pair_follows_the_same_sun() -> None:
    shunt = BatteryMonitorSim(profile=HOME, start_soc=0.8)
    mppt = SolarChargerSim(profile=HOME, start_soc=0.8)
    yields, socs, states = [], [], []
    for t in range(int(HOME_DAY_LENGTH_S)):
        main = dict(parse_block(shunt.blocks_at(float(t))[0]))
        blocks = mppt.blocks_at(float(t))
        a, b = (dict(parse_block(x)) for x in (blocks[0], blocks[-1]))
        ppv, cs = int(a["PPV"]), int(a["CS"])
        sun = HOME.pv_shape(HOME.hour_at(float(t)))
        assert (ppv > 0) == (sun > 0.01) or 0 < sun <= 0.01, (t, ppv, sun)
        # The shunt sees the charger's output less the DC loads: at most ~10 A below it.
        charger_ma = int(a["I"]) + int(b["IL"])
        assert 0 <= charger_ma - int(main["I"]) <= 10_000, (t, charger_ma, main["I"])
        yields.append(int(b["H20"]))
        socs.append(int(main["SOC"]))
        states.append(cs)
    # Charging from the start (late morning): the SoC rises, then CS goes bulk -> abs -> float.
    assert socs[60] > socs[0]
    firsts = [states.index(cs) for cs in (3, 4, 5)]
    assert firsts == sorted(firsts), firsts
    assert max(socs) == 1000
    midday = int(t_at(16.5))
    assert all(y >= x for x, y in itertools.pairwise(yields[:midday]))
    assert yields[midday] > yields[0] + 50  # over 0.5 kWh from a 300 W panel by 16:30


def test_the_mppt_sees_the_clouds() -> None:
    mppt = SolarChargerSim(profile=HOME, start_soc=0.2)  # bulk all afternoon: PV not capped
    cloud = HOME_CLOUDS[0]
    ppv = {}
    for t in range(int(t_at(cloud.end_h)) + 1):
        a = dict(parse_block(mppt.blocks_at(float(t))[0]))
        ppv[t] = int(a["PPV"])
    inside = ppv[int(t_at((cloud.start_h + cloud.end_h) / 2))]
    before = ppv[int(t_at(cloud.start_h - 0.05))]
    assert inside < 0.6 * before, (inside, before)
