"""Daily energy ledger: real TIC captures and simulated days replayed, priced by hand."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.core.history.tariffs import Tariff, TariffBook
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger
from services.sim.profile import default_profile
from services.sim.tic import TicMeterSim
from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, Mode
from tests.conftest import tic_fixture

PARIS = ZoneInfo("Europe/Paris")
D = date(2024, 3, 12)  # an ordinary day: 24 h
# EDF Tempo, 2024 (€/kWh incl. taxes) and a 9 kVA subscription, per day.
TEMPO = Tariff(
    valid_from=date(2024, 1, 1), subscription_eur_per_day=0.52,
    prices_eur_per_kwh={"blue_hc": 0.1296, "blue_hp": 0.1609, "white_hc": 0.1486,
                        "white_hp": 0.1894, "red_hc": 0.1568, "red_hp": 0.7562},
)
HCHP = Tariff(valid_from=date(2024, 1, 1), subscription_eur_per_day=0.5,
              prices_eur_per_kwh={"hc": 0.2068, "hp": 0.27}, export_eur_per_kwh=0.1)


def at(day: date, hours: float) -> float:
    """Epoch of local midnight of ``day`` plus ``hours`` (wall-clock on days without DST)."""
    return datetime.combine(day, time(), PARIS).timestamp() + hours * 3600


def make(path: Path | LocalHistory, *tariffs: Tariff, **kw: Any) -> Ledger:
    return Ledger(path, TariffBook(tariffs=list(tariffs)), **kw)


def decode(path: Path) -> list[dict[str, Any]]:
    return [normalize(f) for f in Decoder().feed(path.read_bytes())]


def observe(led: Ledger, state: dict[str, Any], ts: float, meter: str = "linky") -> None:
    """What the historian service does with a teleinfo state."""
    led.observe_meter(meter, ts, state.get("energy_import_by_index_wh", {}),
                      state.get("energy_export_wh"), state.get("meter_id"))


def test_historique_tempo_capture(tmp_path: Path) -> None:
    states = decode(tic_fixture("hist_mono_tempo_pyteleinfo.bin"))
    assert len(states) == 10
    led = make(tmp_path / "h.sqlite3", TEMPO)
    for i, state in enumerate(states):  # 01:00, 03:30 … 23:30
        observe(led, state, at(D, 1 + 2.5 * i))
    led.flush()
    [row] = led.daily(D, D)
    # BBRHCJB 018328856 -> 018328876: 20 Wh of blue off-peak, nothing on the other indexes.
    assert row.import_wh_by_index == {"blue_hc": 20, "blue_hp": 0, "white_hc": 0,
                                      "white_hp": 0, "red_hc": 0, "red_hp": 0}
    assert row.import_wh == 20
    assert row.import_cost_eur_by_index["blue_hc"] == pytest.approx(0.020 * 0.1296)
    assert row.import_cost_eur == pytest.approx(0.002592)
    assert row.subscription_eur == 0.52
    assert row.total_cost_eur == pytest.approx(0.522592)
    assert (row.meter, row.export_wh, row.export_revenue_eur, row.flags) == ("linky", 0, 0, 0)


def test_standard_tempo_noisy_capture(tmp_path: Path) -> None:
    states = decode(tic_fixture("std_tri_tempo_noisy_teleinfo-nom.bin"))
    assert len(states) == 7
    led = make(tmp_path / "h.sqlite3", TEMPO)
    for i, state in enumerate(states):  # every 3 h from 02:00; one frame lost EASF06
        observe(led, state, at(D, 2 + 3 * i))
    led.flush()
    [row] = led.daily(D, D)
    # EASF03 (white off-peak) 000487131 -> 000487134: 3 Wh; EAST moved by the same 3 Wh.
    assert row.import_wh_by_index["white_hc"] == 3
    assert row.import_wh == 3 == states[-1]["energy_import_wh"] - states[0]["energy_import_wh"]
    assert row.import_cost_eur == pytest.approx(0.003 * 0.1486)
    assert row.flags == 0


@pytest.mark.parametrize("mode", [Mode.HISTORIQUE, Mode.STANDARD])
def test_simulated_day_matches_the_meters_indexes(tmp_path: Path, mode: Mode) -> None:
    sim = TicMeterSim(mode, tariff="hc", profile=default_profile(day_length_s=86400.0))
    decoder = Decoder(mode)
    led = make(tmp_path / "h.sqlite3", HCHP)
    start: dict[int, int] = {}
    periods = set()
    for t in range(0, 86401, 60):  # a frame a minute, midnight to midnight
        ts = at(D, t / 3600)
        for frame in decoder.feed(sim.frame_at(t, datetime.fromtimestamp(ts, PARIS))):
            state = normalize(frame)
            periods.add(state["tariff_period"])
            observe(led, state, ts)
        start = start or sim.indexes
        if t % 3600 == 0:
            led.flush()
    led.flush()
    assert periods == {"hc", "hp"}  # off-peak 22 h - 6 h: the index changed twice
    hc, hp = (sim.indexes[k] - start[k] for k in (1, 2))
    assert hc > 2000 and hp > 10_000  # a real day's worth on both indexes
    [row] = led.daily(D, D)
    assert row.import_wh_by_index == {"hc": hc, "hp": hp}
    assert row.import_cost_eur == pytest.approx(hc / 1000 * 0.2068 + hp / 1000 * 0.27)
    assert row.total_cost_eur == pytest.approx(hc / 1000 * 0.2068 + hp / 1000 * 0.27 + 0.5)


def test_each_day_priced_with_its_own_tariff(tmp_path: Path) -> None:
    old = Tariff(valid_from=D, subscription_eur_per_day=0.5, prices_eur_per_kwh={"hp": 0.2})
    new = Tariff(valid_from=D + timedelta(days=1), subscription_eur_per_day=0.6,
                 prices_eur_per_kwh={"hp": 0.3})
    led = make(tmp_path / "h.sqlite3", new, old)  # any order
    for hours, hp in ((12, 1000), (23, 1500), (25, 1700), (37, 2300)):
        led.observe_meter("linky", at(D, hours), {"hp": hp}, None, "m1")
    led.flush()
    first, second = led.daily(D, D + timedelta(days=1))
    # Day 1: 500 + half of the 200 Wh across midnight = 600 Wh at 0.20; day 2: 100 + 600.
    assert (first.day, first.import_wh, second.day, second.import_wh) == (
        D, 600, D + timedelta(days=1), 700)
    assert first.import_cost_eur == pytest.approx(0.12)
    assert second.import_cost_eur == pytest.approx(0.21)
    assert (first.subscription_eur, second.subscription_eur) == (0.5, 0.6)
    # Without a tariff for that day there is no price: None, never 0.
    [unpriced] = make(tmp_path / "h.sqlite3", new).daily(D, D)
    assert (unpriced.import_wh, unpriced.import_cost_eur, unpriced.total_cost_eur) == (
        600, None, None)


def test_meter_swap_is_flagged_and_not_summed(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    led = make(path, HCHP)
    led.observe_meter("linky", at(D, 10), {"hc": 5000, "hp": 7000}, 100, "021861348497")
    led.observe_meter("linky", at(D, 11), {"hc": 5000, "hp": 7400}, 150, "021861348497")
    # Enedis swaps the meter: a new number, indexes from nearly zero, another contract.
    led.observe_meter("linky", at(D, 12), {"hp": 10}, 0, "031999000001")
    led.observe_meter("linky", at(D, 13), {"hp": 110}, 20, "031999000001")
    led.flush()
    [row] = led.daily(D, D)
    assert row.import_wh_by_index == {"hc": 0, "hp": 400 + 100}
    assert (row.export_wh, row.flags) == (50 + 20, 3)
    got = [(a.index, a.old, a.new, a.reason) for a in led.anomalies(D, D)]
    assert sorted(got) == [("export", 150, 0, "meter_swap"), ("hc", 5000, None, "meter_swap"),
                           ("hp", 7400, 10, "meter_swap")]
    # The old meter's baselines are gone from the file; a restart continues the new meter.
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT idx, value FROM ledger_baselines ORDER BY idx").fetchall() == [
            ("export", 20), ("hp", 110)]
    again = make(path, HCHP)
    again.observe_meter("linky", at(D, 14), {"hp": 200}, 20, "031999000001")
    again.flush()
    assert again.daily(D, D)[0].import_wh_by_index == {"hc": 0, "hp": 590}


def test_backwards_and_jumps_are_flagged(tmp_path: Path) -> None:
    led = make(tmp_path / "h.sqlite3", HCHP)
    # 60 s apart: the most 36 kVA can draw, with margin, is 36000 W x 60 s x 1.5 + 10 = 910 Wh.
    for minute, hp in enumerate((1000, 990, 1000, 1900, 2900, 2950)):
        led.observe_meter("linky", at(D, 8) + 60 * minute, {"hp": hp}, None, None)
    led.flush()
    [row] = led.daily(D, D)
    assert row.import_wh_by_index == {"hp": 10 + 900 + 50}
    assert row.flags == 2
    assert [(a.old, a.new, a.reason) for a in led.anomalies(D, D)] == [
        (1000, 990, "backwards"), (1900, 2900, "jump")]
    # A smaller installation: 6 kW gives 6000 x 60 / 3600 x 1.5 + 10 = 160 Wh a minute.
    small = make(tmp_path / "s.sqlite3", HCHP, max_power_w=6000)
    for minute, hp in enumerate((0, 150, 350)):
        small.observe_meter("linky", at(D, 8) + 60 * minute, {"hp": hp}, None, None)
    small.flush()
    assert small.daily(D, D)[0].import_wh == 150
    assert [a.reason for a in small.anomalies(D, D)] == ["jump"]


def test_a_replayed_older_reading_is_ignored(tmp_path: Path) -> None:
    led = make(tmp_path / "h.sqlite3", HCHP)
    for ts, hp in ((at(D, 10), 1000), (at(D, 10) + 60, 1010), (at(D, 10), 1000),
                   (at(D, 10) + 120, 1020)):
        led.observe_meter("linky", ts, {"hp": hp}, None, None)  # 3rd: a retained state again
    led.flush()
    assert (led.daily(D, D)[0].import_wh, led.anomalies(D, D)) == (20, [])


def test_midnight_split_in_proportion_to_time(tmp_path: Path) -> None:
    led = make(tmp_path / "h.sqlite3", HCHP)
    led.observe_meter("linky", at(D, 23.5), {"hc": 0}, None, None)
    led.observe_meter("linky", at(D, 24.5), {"hc": 100}, None, None)
    # Across the autumn DST change: 23:00 on the 26th to 01:00 on the 28th is 1 + 25 + 1 h.
    dst = date(2024, 10, 26)
    led.observe_meter("other", at(dst, 23), {"hc": 0}, None, None)
    led.observe_meter("other", at(dst + timedelta(days=2), 1), {"hc": 270}, None, None)
    led.flush()
    assert [(r.day, r.import_wh) for r in led.daily(D, D + timedelta(days=1))] == [
        (D, 50), (D + timedelta(days=1), 50)]
    got = [(r.day.day, r.import_wh) for r in led.daily(dst, dst + timedelta(days=2))]
    assert [d for d, _ in got] == [26, 27, 28]
    assert [wh for _, wh in got] == pytest.approx([10, 250, 10])


def test_restart_continues_from_the_written_baselines(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    hist = LocalHistory(path)
    led = make(hist, HCHP)  # sharing the history's connection
    led.observe_meter("linky", at(D, 8), {"hp": 1000}, None, None)
    led.observe_meter("linky", at(D, 9), {"hp": 1100}, None, None)
    led.flush()
    led.observe_meter("linky", at(D, 10), {"hp": 1200}, None, None)  # never written: a crash
    hist.close()
    again = make(path, HCHP)
    again.observe_meter("linky", at(D, 11), {"hp": 1300}, None, None)  # 1300 - 1100
    # The historian was away from 11:00 to 03:00 the next day: 16 h, 1600 Wh, 13 h of them
    # before midnight.
    again.observe_meter("linky", at(D, 27), {"hp": 2900}, None, None)
    again.flush()
    got = [(r.day, r.import_wh) for r in again.daily(D, D + timedelta(days=1))]
    assert got == [(D, 100 + 200 + 1300), (D + timedelta(days=1), 300)]


def test_self_consumption_and_sufficiency(tmp_path: Path) -> None:
    led = make(tmp_path / "h.sqlite3", HCHP)
    for hours, hp, export, ac_wh, yield_kwh in ((8, 1000, 500, 10_000, 1.0),
                                                (20, 4000, 2500, 15_000, 1.5)):
        led.observe_meter("linky", at(D, hours), {"hp": hp}, export, "m")
        led.observe_production("inverter/sma/ac_energy_wh", at(D, hours), ac_wh)
        led.observe_production("vedirect/hq1/yield_total_kwh", at(D, hours), yield_kwh * 1000)
    led.flush()
    [row] = led.daily(D, D)
    # Imported 3000, exported 2000, produced 5000 + 500: 3500 used at home.
    assert (row.import_wh, row.export_wh, row.production_wh) == (3000, 2000, 5500)
    assert row.self_consumption_wh == 3500
    assert row.self_sufficiency == pytest.approx(3500 / 6500)
    assert row.export_revenue_eur == pytest.approx(0.2)
    assert row.import_cost_eur == pytest.approx(0.81)


def test_unknown_prices_are_none_never_zero(tmp_path: Path) -> None:
    hp_only = Tariff(valid_from=D, prices_eur_per_kwh={"hp": 0.27})
    led = make(tmp_path / "h.sqlite3", hp_only)
    for hours, hc, hp in ((1, 0, 0), (2, 0, 100), (3, 50, 100)):
        led.observe_meter("linky", at(D, hours), {"hc": hc, "hp": hp}, None, None)
        led.observe_meter("linky", at(D, hours) - 86400, {"hc": 0, "hp": hp}, None, None)
    led.observe_meter("b", at(D, 1) - 86400, {"hp": 0}, None, None)
    led.observe_meter("b", at(D, 2) - 86400, {"hp": 10}, None, None)
    led.flush()
    [row] = led.daily(D, D, meter="linky")
    assert row.import_cost_eur_by_index == {"hc": None, "hp": pytest.approx(0.027)}
    assert row.import_cost_eur is None and row.total_cost_eur is None
    before = led.daily(D - timedelta(days=1), D - timedelta(days=1))
    assert [r.meter for r in before] == ["b"]  # "linky" was ignored: its readings were older
    assert (before[0].import_cost_eur, before[0].subscription_eur) == (None, None)
    assert before[0].export_revenue_eur is None


def test_a_failed_flush_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    led = make(path, HCHP)
    led.observe_meter("linky", at(D, 1), {"hp": 0}, None, "m")
    led.observe_meter("linky", at(D, 2), {"hp": 100}, None, "m")
    led.observe_meter("linky", at(D, 3), {"hp": 50}, None, "m")
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    led.db.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(sqlite3.OperationalError):
        led.flush()
    blocker.rollback()
    assert led.flush() > 0
    [row] = make(path, HCHP).daily(D, D)
    assert (row.import_wh, row.flags) == (100, 1)


def test_tariff_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match=r"prices_eur_per_kwh\.hp\n.*greater than or equal"):
        Tariff(valid_from=D, prices_eur_per_kwh={"hc": 0.2, "hp": -0.1})
    with pytest.raises(ValidationError, match="unknown index hpp"):
        Tariff(valid_from=D, prices_eur_per_kwh={"hpp": 0.2})
    with pytest.raises(ValidationError, match="subscription_eur_per_day"):
        Tariff(valid_from=D, prices_eur_per_kwh={}, subscription_eur_per_day=float("nan"))
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Tariff.model_validate({"valid_from": D, "prices_eur_per_kwh": {}, "price": 1})
    with pytest.raises(ValidationError, match=r"tariffs\[1\].valid_from 2024-03-12 is already"):
        TariffBook(tariffs=[HCHP.model_copy(update={"valid_from": D}),
                            TEMPO.model_copy(update={"valid_from": D})])
    book = TariffBook(tariffs=[TEMPO, HCHP.model_copy(update={"valid_from": D})])
    assert book.for_day(D - timedelta(days=1)) is TEMPO
    assert book.price(D, "hp") == 0.27
    assert book.price(D, "blue_hc") is None
    assert book.for_day(date(2023, 12, 31)) is None


def test_a_gap_across_a_restart_is_booked_and_what_comes_back_is_ignored(tmp_path: Path) -> None:
    # The historian killed mid-stream: its last baseline on disk is an hour old; the broker
    # redelivers readings from before that baseline, then new ones. A counter that rose at
    # the highest power allowed over the gap is energy, not a "jump".
    path = tmp_path / "h.sqlite3"
    led = make(path, max_power_w=12_000)
    led.observe_meter("linky", at(D, 10), {"base": 100_000}, None, "m1")
    led.observe_meter("linky", at(D, 11), {"base": 110_000}, None, "m1")
    led.flush()
    again = make(path, max_power_w=12_000)
    again.observe_meter("linky", at(D, 10.5), {"base": 105_000}, None, "m1")  # redelivered
    again.observe_meter("linky", at(D, 11), {"base": 110_000}, None, "m1")  # the baseline again
    again.observe_meter("linky", at(D, 12), {"base": 122_000}, None, "m1")  # 12 kW for an hour
    again.flush()
    [row] = again.daily(D, D)
    assert (row.import_wh, row.flags) == (22_000, 0)
