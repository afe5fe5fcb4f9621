"""Tariff days against the pure engine, the meter's state made by the real teleinfo decoder.

Every tick the meter's frame is encoded on the wire, decoded and normalized by
services/teleinfo (as the service publishes it), and its tariff fields feed the engine: so these
days check the decoder's facts (the Tempo day runs 06:00 to 06:00, DEMAIN '----', STGE colour
bits at 0, PEJP) and the rules together. run_day checks the invariants on every tick.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.teleinfo.protocol import Mode
from tests.automation.days import Day, Script, at, run_day
from tests.automation.scenario_days import config, statuses, stge, tariff_of, tic_state

H = "water-heater"
LETTER = {"blue": "B", "white": "W", "red": "R"}
DEMAIN = {"blue": "BLEU", "white": "BLAN", "red": "ROUG", None: "----"}
BLOCK_RED_HP = [{"tempo_today": "red", "period": "hp"}]


def hc(now: datetime) -> bool:
    """The off-peak hours of these meters: 22:00-06:00."""
    return now.hour >= 22 or now.hour < 6


def tempo_day(calendar: dict[str, str], now: datetime) -> str:
    """The Tempo colour in force: the day runs 06:00 to 06:00 (at 00:30 it is yesterday's)."""
    key = now.date().isoformat() if now.hour >= 6 else (
        now.date().fromordinal(now.date().toordinal() - 1).isoformat())
    return calendar[key]


def historique_tempo(now: datetime, today: str, tomorrow: str | None) -> dict[str, Any]:
    """A historique Tempo meter (BBR): PTEC HCJW..., DEMAIN '----' until announced."""
    ptec = f"{'HC' if hc(now) else 'HP'}J{LETTER[today]}"
    return tic_state(Mode.HISTORIQUE, ("OPTARIF", "BBR("), ("PTEC", ptec),
                     ("DEMAIN", DEMAIN[tomorrow]), ("PAPP", "00800"))


def never_on_in(day: Day, relay: str, start: datetime, end: datetime) -> bool:
    """No on wish in [start, end)."""
    return all(d[relay].wish == "off" for t, d in day.ticks if start <= t < end)


# --- 00:30 after a white day, on a red calendar date ------------------------------------------


def test_half_past_midnight_on_a_red_date_is_still_the_white_day() -> None:
    calendar = {"2026-01-14": "white", "2026-01-15": "red"}

    def tariff(now: datetime) -> dict[str, Any]:
        today = tempo_day(calendar, now)
        announced = "red" if today == "white" and (now.hour >= 20 or now.hour < 6) else None
        return tariff_of(historique_tempo(now, today, announced))

    load = {"relay": H, "block": BLOCK_RED_HP,
            "schedule": [{"time": "00:00-01:00", "state": "on"},
                         {"time": "06:00-07:00", "state": "on"}]}
    day = run_day(config([load]), Script(tariff=tariff), at("2026-01-14", "20:00"),
                  at("2026-01-15", "07:00"), step_s=60)
    half_past = day.at(at("2026-01-15", "00:30"))[H]
    assert tariff(at("2026-01-15", "00:30"))["tempo_today"] == "white"
    assert half_past.wish == "on" and half_past.status != "blocked"
    assert day.on_spans(H)[0] == (at("2026-01-15", "00:00"), at("2026-01-15", "01:00"))
    # At 06:00 the red day begins: its HP block holds over the schedule.
    assert tariff(at("2026-01-15", "06:00"))["tariff_period"] == "red_hp"
    assert never_on_in(day, H, at("2026-01-15", "01:00"), at("2026-01-15", "07:00"))
    assert day.at(at("2026-01-15", "06:30"))[H].status == "blocked"


# --- red announced for tomorrow: pre-heat in HC ------------------------------------------------


def test_red_announced_for_tomorrow_preheats_in_offpeak_then_blocks_in_red_hp() -> None:
    calendar = {"2026-01-14": "white", "2026-01-15": "red"}

    def tariff(now: datetime) -> dict[str, Any]:
        today = tempo_day(calendar, now)
        # DEMAIN is sent in the evening only: '----' until then, and once the red day began.
        announced = "red" if today == "white" and (now.hour >= 18 or now.hour < 6) else None
        return tariff_of(historique_tempo(now, today, announced))

    load = {"relay": H, "min_on_s": 600, "block": BLOCK_RED_HP,
            "require": [{"tempo_tomorrow": "red", "period": "hc"}]}
    day = run_day(config([load]), Script(tariff=tariff), at("2026-01-14", "06:00"),
                  at("2026-01-15", "12:00"), step_s=60)
    assert day.on_spans(H) == [(at("2026-01-14", "22:00"), at("2026-01-15", "06:00"))]
    assert day.at(at("2026-01-14", "20:00"))[H].wish == "off"  # announced, but HP
    assert day.at(at("2026-01-15", "03:00"))[H].status == "required"
    red_hp = day.at(at("2026-01-15", "06:00"))[H]
    assert red_hp.wish == "off" and red_hp.status == "blocked"


# --- blue tomorrow is never announced ----------------------------------------------------------


def test_blue_tomorrow_never_announced_requires_nothing_and_is_not_stale() -> None:
    calendar = {"2026-01-15": "red", "2026-01-16": "blue"}

    def tariff(now: datetime) -> dict[str, Any]:
        return tariff_of(historique_tempo(now, tempo_day(calendar, now), None))

    assert tariff(at("2026-01-15", "21:00"))["tempo_tomorrow"] == "unknown"
    load = {"relay": H, "block": BLOCK_RED_HP,
            "require": [{"tempo_tomorrow": "red", "period": "hc"},
                        {"tempo_tomorrow": "white", "period": "hc"}]}
    day = run_day(config([load]), Script(tariff=tariff), at("2026-01-15", "06:00"),
                  at("2026-01-16", "08:00"), step_s=60)
    assert day.on_spans(H) == []
    seen = statuses(day, H)
    assert "required" not in seen and "stale" not in seen
    assert "blocked" in seen  # the red day's HP, still


# --- a standard-mode meter whose STGE colour bits stay 0 ---------------------------------------


def standard_tempo(now: datetime, today: str) -> dict[str, Any]:
    """A standard Tempo meter that leaves STGE's colour bits at 0: LTARF still names it."""
    words = {"blue": "BLEU", "white": "BLANC", "red": "ROUGE"}[today]
    period = "HC" if hc(now) else "HP"
    index = ("blue", "white", "red").index(today) * 2 + (1 if period == "HC" else 2)
    return tic_state(Mode.STANDARD, ("NGTF", "     TEMPO      "),
                     ("LTARF", f"   {period}  {words}".ljust(16)), ("NTARF", f"{index:02d}"),
                     ("SINSTS", "00800"), ("STGE", stge()))


def test_standard_meter_with_stge_colour_bits_at_zero_blocks_red_hp_by_ltarf() -> None:
    calendar = {"2026-01-14": "white", "2026-01-15": "red"}

    def tariff(now: datetime) -> dict[str, Any]:
        return tariff_of(standard_tempo(now, tempo_day(calendar, now)))

    noon = tariff(at("2026-01-15", "12:00"))
    assert noon == {"tariff_period": "red_hp", "tempo_today": "red",
                    "tempo_tomorrow": "unknown", "ejp_notice": False}
    load = {"relay": H, "block": BLOCK_RED_HP,
            "schedule": [{"time": "05:00-23:00", "state": "on"}]}
    day = run_day(config([load]), Script(tariff=tariff), at("2026-01-15", "05:00"),
                  at("2026-01-15", "23:00"), step_s=60)
    assert day.on_spans(H) == [(at("2026-01-15", "05:00"), at("2026-01-15", "06:00")),
                               (at("2026-01-15", "22:00"), at("2026-01-15", "23:00"))]
    assert day.at(at("2026-01-15", "12:00"))[H].status == "blocked"


# --- an EJP day: notice, then the peak, for a fil pilote zone ---------------------------------


def historique_ejp(now: datetime, peak: tuple[datetime, datetime]) -> dict[str, Any]:
    """A historique EJP meter: PEJP 30 min before the peak, PTEC PM.. during it."""
    notice = peak[0].timestamp() - 1800 <= now.timestamp() < peak[0].timestamp()
    groups = [("OPTARIF", "EJP."),
              ("PTEC", "PM.." if peak[0] <= now < peak[1] else "HN..")]
    if notice:
        groups.append(("PEJP", "30"))
    return tic_state(Mode.HISTORIQUE, *groups, ("PAPP", "01200"))


def standard_ejp(now: datetime, peak: tuple[datetime, datetime]) -> dict[str, Any]:
    """A standard EJP meter: STGE bits 28-29 in the notice, 30-31 and index 2 in the peak."""
    notice = peak[0].timestamp() - 1800 <= now.timestamp() < peak[0].timestamp()
    in_peak = peak[0] <= now < peak[1]
    return tic_state(Mode.STANDARD, ("NGTF", "      EJP       "),
                     ("NTARF", "02" if in_peak else "01"), ("SINSTS", "01200"),
                     ("STGE", stge(notice=int(notice), peak=int(in_peak))))


@pytest.mark.parametrize("meter", [historique_ejp, standard_ejp])
def test_ejp_day_notice_and_peak_put_the_zone_in_eco_then_back_to_its_schedule(
        meter: Callable[[datetime, tuple[datetime, datetime]], dict[str, Any]]) -> None:
    peak = (at("2026-01-14", "07:00"), at("2026-01-15", "01:00"))  # a Wednesday, 18 h

    def tariff(now: datetime) -> dict[str, Any]:
        return tariff_of(meter(now, peak))

    assert tariff(at("2026-01-14", "06:45"))["ejp_notice"] is True
    assert tariff(at("2026-01-14", "12:00"))["tariff_period"] == "ejp_peak"
    zone = {"relay": "living", "default": "eco", "when_stale": "hold",
            "schedule": [{"time": "06:30-08:30", "days": "mon-fri", "order": "confort"},
                         {"time": "17:00-22:30", "order": "confort"}],
            "block": [{"ejp": "peak"}, {"ejp": "notice"}]}
    day = run_day(config([zone]), Script(tariff=tariff), at("2026-01-14", "05:00"),
                  at("2026-01-15", "09:00"), step_s=60, outputs={"living": "eco"})
    wish = {clock: day.at(clock)["living"] for clock in (
        at("2026-01-14", "06:15"), at("2026-01-14", "06:35"), at("2026-01-14", "07:30"),
        at("2026-01-14", "18:00"), at("2026-01-15", "00:30"), at("2026-01-15", "01:30"),
        at("2026-01-15", "06:45"), at("2026-01-15", "08:45"))}
    assert [d.wish for d in wish.values()] == ["eco", "eco", "eco", "eco", "eco", "eco",
                                               "confort", "eco"]
    assert [d.status == "blocked" for d in wish.values()] == [
        False, True, True, True, True, False, False, False]
    # Its schedule comes back the next morning, a normal day.
    assert day.on_spans("living") == [(at("2026-01-15", "06:30"), at("2026-01-15", "08:30"))]


def test_ejp_meter_silent_the_zone_holds_its_order_hold_s_then_its_default() -> None:
    silent = (at("2026-01-13", "18:00"), at("2026-01-13", "18:15"))
    no_peak = (at("2026-01-20", "07:00"), at("2026-01-21", "01:00"))

    def tariff(now: datetime) -> dict[str, Any] | None:
        return None if silent[0] <= now < silent[1] else tariff_of(historique_ejp(now, no_peak))

    zone = {"relay": "living", "default": "eco", "when_stale": "hold", "hold_s": 300,
            "schedule": [{"time": "17:00-22:30", "order": "confort"}],
            "block": [{"ejp": "peak"}, {"ejp": "notice"}]}
    day = run_day(config([zone]), Script(tariff=tariff), at("2026-01-13", "17:30"),
                  at("2026-01-13", "18:30"), step_s=60, outputs={"living": "eco"})
    # run_day passes no tariff at all while the meter is silent (not an old one): stale at
    # once; the zone holds confort hold_s, then eco until the meter is back.
    stale_from = silent[0]
    held = day.at(stale_from)["living"]
    assert held.status == "stale" and held.wish == "confort"
    gone = day.at(stale_from + timedelta(seconds=300))["living"]
    assert gone.status == "stale" and gone.wish == "eco"
    assert day.on_spans("living") == [(at("2026-01-13", "17:30"), stale_from
                                       + timedelta(seconds=300)),
                                      (silent[1], at("2026-01-13", "18:30"))]
