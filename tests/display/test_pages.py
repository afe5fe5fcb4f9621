"""The screen's state machine on a fake clock: rotation, jumps, alert preemption, dim/blank."""

from __future__ import annotations

from services.display.pages import ALERTS, Light, Pager

PAGES = ("grid", "solar", "battery")


def pager() -> Pager:
    return Pager(PAGES, page_s=5, dim_after_s=60, blank_after_s=300, start=1000.0)


def test_pages_rotate_every_page_s_and_wrap() -> None:
    p = pager()
    assert [p.tick(1000 + t).page for t in (0, 4.9, 5, 9.9, 10, 15, 26)] == [
        "grid", "grid", "solar", "solar", "battery", "grid", "battery"]


def test_a_button_jumps_and_its_page_holds_a_whole_page_s() -> None:
    p = pager()
    assert p.button(1003, "battery").page == "battery"
    assert p.tick(1007.9).page == "battery"
    assert p.tick(1008).page == "grid"
    assert p.button(1009).page == "solar"  # no page given: the next one


def test_dim_then_blank_then_a_press_wakes_without_jumping() -> None:
    p = pager()
    assert p.tick(1059).light is Light.AWAKE
    assert p.tick(1060).light is Light.DIM
    assert p.tick(1299).light is Light.DIM
    assert p.tick(1300).light is Light.BLANK
    page = p.tick(1301).page
    woken = p.button(1302, "battery")
    assert woken.light is Light.AWAKE and woken.page == page  # the first press only wakes
    assert p.tick(1362).light is Light.DIM  # counted from the press
    assert p.button(1363, "battery").page == "battery"  # dim: the press jumps


def test_the_alerts_page_preempts_while_an_alert_stands() -> None:
    p = pager()
    assert p.tick(1001, {"overload:linky"}).page == ALERTS
    assert p.tick(1020, {"overload:linky"}).page == ALERTS
    assert p.button(1021, "grid").page == "grid"  # the user may look elsewhere, one page_s
    assert p.tick(1025, {"overload:linky"}).page == "grid"
    assert p.tick(1026, {"overload:linky"}).page == ALERTS
    assert p.tick(1030, set()).page in PAGES


def test_a_new_alert_wakes_the_screen_a_standing_one_does_not() -> None:
    p = pager()
    assert p.tick(1400, {"shed:water-heater"}).light is Light.AWAKE  # new: wakes
    assert p.tick(1460, {"shed:water-heater"}).light is Light.DIM
    assert p.tick(1700, {"shed:water-heater"}).light is Light.BLANK  # burn-in wins
    assert p.tick(1701, {"shed:water-heater", "offline:vedirect"}).light is Light.AWAKE


def test_no_timers_never_dims() -> None:
    p = Pager(PAGES, page_s=5, dim_after_s=None, blank_after_s=None, start=0.0)
    assert p.tick(10**7).light is Light.AWAKE
