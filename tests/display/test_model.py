"""BoxTracker: freshness, offline sources, alerts, PV today; hypothesis: rendering never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.automation.conditions import TariffFacts
from services.display.model import Alert, BoxTracker, BoxView, Reading, RelayLine, Text
from services.display.pages import ALERTS, Light, Screen
from services.display.render import lines, render
from tests.display.views import T0, TOPICS, box, feed


def test_a_value_is_stale_just_past_stale_after_s() -> None:
    t = box()
    assert t.view(T0 + 60).grid_va == Reading(1630.0, False)
    assert t.view(T0 + 60.5).grid_va.stale
    assert not t.view(T0 + 60.5).pv_w.shown  # the MPPT's share (T0) is too old
    assert t.view(T0 + 61).pv_w.stale


def test_nothing_heard_is_stale_not_zero() -> None:
    view = BoxTracker().view(T0)
    assert view.grid_va == Reading(None, True) and view.pv_w.value is None
    assert view.tariff is None and view.relays == () and view.alerts == ()
    assert lines(view, "grid")[1] == "Achat ----"


def test_a_bad_or_cleared_message_changes_nothing() -> None:
    t = box()
    topic = TOPICS.parse("enerbox/teleinfo/linky/state")
    assert topic is not None
    assert t.feed(topic, b"{not json", T0 + 5) is not None
    assert t.feed(topic, b"", T0 + 5) is None
    assert t.view(T0 + 2).grid_va == Reading(1630.0, False)


def test_alerts_overload_shed_and_offline() -> None:
    t = box(overload=True)
    feed(t, "enerbox/relays/water-heater/state", {"state": "off", "source": "shed"})
    feed(t, "enerbox/inverter/status", b"offline")
    view = t.view(T0 + 2)
    assert view.alerts == (Alert("overload", "linky"), Alert("shed", "water-heater"),
                           Alert("offline", "inverter"))
    assert view.pv_w.stale  # the inverter's share is unknown: no partial sum
    assert lines(view, ALERTS, "fr") == ["Alertes", "Surcharge linky", "Délesté water-heater",
                                         "Hors ligne inverter"]


def test_relays_and_reasons_go_stale_with_their_services() -> None:
    t = box()
    feed(t, "enerbox/automation/status", b"offline")
    heater = next(r for r in t.view(T0 + 2).relays if r.id == "water-heater")
    assert heater.output == "on" and heater.reason is None
    feed(t, "enerbox/relays/status", b"offline")
    assert all(r.stale for r in t.view(T0 + 2).relays)
    assert "----" in lines(t.view(T0 + 2), "relays")[1]


def test_pv_today_counts_the_inverter_from_the_days_first_reading() -> None:
    t = box()
    assert t.view(T0 + 2).pv_today_kwh == Reading(1.2 + 4.5, False)
    next_day = T0 + 86400
    feed(t, "enerbox/inverter/roof/state", {"ac_power_w": 0, "ac_energy_wh": 1_010_000},
         next_day)
    feed(t, "enerbox/vedirect/mppt/state", {"pv_power_w": 0, "yield_today_kwh": 0.0},
         next_day)
    assert t.view(next_day + 1).pv_today_kwh == Reading(0.0, False)


finite = st.floats(allow_nan=True, allow_infinity=True) | st.none()
words = st.text(max_size=80) | st.none()
readings = st.builds(Reading, finite, st.booleans())
texts = st.builds(Text, words, st.booleans())
tempos = st.sampled_from(["blue", "white", "red", "unknown"])
tariffs = st.none() | st.builds(
    TariffFacts, st.sampled_from([None, "hc", "hp"]), tempos, tempos,
    st.sampled_from(["none", "notice", "peak"]), st.booleans())
relays = st.builds(RelayLine, st.text(min_size=1, max_size=40), words, words, words, words,
                   st.booleans())
views = st.builds(
    BoxView, readings, readings, readings, st.booleans(), readings, texts, tariffs, texts,
    st.lists(relays, max_size=8).map(tuple),
    st.lists(st.builds(Alert, st.text(max_size=20), st.text(max_size=40)), max_size=8).map(
        tuple))


@settings(max_examples=150, deadline=None)
@given(views, st.sampled_from(["grid", "solar", "battery", "tariff", "relays", ALERTS]),
       st.sampled_from([(128, 64), (128, 32)]), st.sampled_from(["fr", "en"]),
       st.sampled_from(list(Light)))
def test_rendering_never_raises(view: BoxView, page: str, size: tuple[int, int], lang: str,
                                light: Light) -> None:
    image = render(view, Screen(page, light), size, "fr" if lang == "fr" else "en")
    assert image.size == size
