"""Indicator lamps on EJP and Tempo days, relays, stale inputs (LinkyMonitor's EJP lamp)."""

from __future__ import annotations

from typing import Any

import yaml

from services.display.config import DisplaySection
from services.display.indicators import Indicators, level
from services.display.model import BoxTracker
from tests.display.views import T0, box, feed


def lamps(text: str, tracker: BoxTracker, now: float = T0 + 2) -> dict[str, bool]:
    section = DisplaySection.model_validate(yaml.safe_load(text))
    signals = {n: ((s.source.split("/")[0], s.source.split("/")[1]), s.field)
               for n, s in section.signals.items()}
    return dict(Indicators(section.indicators).evaluate(tracker.snapshot(now, signals)))


EJP_LAMP = """
indicators:
  - gpio: 17
    when: {ejp: notice}
"""


def meter(tracker: BoxTracker, **fields: Any) -> None:
    feed(tracker, "enerbox/teleinfo/linky/state", {"apparent_power_va": 900, **fields})


def test_ejp_lamp_is_two_lines_and_lit_during_the_notice_only() -> None:
    t = box()
    meter(t, tariff_period="ejp_normal", ejp_notice=False)
    assert lamps(EJP_LAMP, t) == {"gpio17": False}
    meter(t, tariff_period="ejp_normal", ejp_notice=True)  # PM.. from the meter: the notice
    assert lamps(EJP_LAMP, t) == {"gpio17": True}
    meter(t, tariff_period="ejp_peak", ejp_notice=True)  # the peak itself is not the notice
    assert lamps(EJP_LAMP, t) == {"gpio17": False}


def test_ejp_day_lamp_any_of_notice_or_peak() -> None:
    text = "indicators: [{id: ejp, gpio: 17, when: [{ejp: notice}, {ejp: peak}]}]"
    t = box()
    meter(t, tariff_period="ejp_peak")
    assert lamps(text, t) == {"ejp": True}
    meter(t, tariff_period="ejp_normal")
    assert lamps(text, t) == {"ejp": False}


def test_tempo_tomorrow_red_and_a_relay_on() -> None:
    text = """
indicators:
  - {id: red, tm1638_led: 1, when: {tempo_tomorrow: red}}
  - {id: heater, tm1638_led: 2, when: {relay: water-heater, is: "on"}}
  - {id: pump, tm1638_led: 3, when: {relay: pool-pump, is: "on"}}
"""
    assert lamps(text, box(tempo_tomorrow="red")) == {"red": True, "heater": True,
                                                       "pump": False}
    assert lamps(text, box(tempo_tomorrow="white"))["red"] is False


def test_stale_inputs_give_when_stale_and_a_signal_reads_a_device_field() -> None:
    text = """
signals: {soc: {source: vedirect/shunt, field: soc_pct}}
indicators:
  - {id: red, gpio: 5, when: {tempo_tomorrow: red}}
  - {id: red-or-unknown, gpio: 6, when: {tempo_tomorrow: red}, when_stale: "on"}
  - {id: low, gpio: 7, when: {signal: soc, below: 90}}
"""
    t = box(tempo_tomorrow="red")
    assert lamps(text, t) == {"red": True, "red-or-unknown": True, "low": True}
    assert lamps(text, t, T0 + 300) == {"red": False, "red-or-unknown": True, "low": False}


def test_the_level_is_the_drivers_business_not_inverted() -> None:
    section = DisplaySection.model_validate(yaml.safe_load(
        "indicators: [{gpio: 17, when: {ejp: notice}}, "
        "{gpio: 18, active_high: false, when: {ejp: notice}}]"))
    high, low = section.indicators
    assert level(high, True) is True and level(high, False) is False
    assert level(low, True) is False and level(low, False) is True
