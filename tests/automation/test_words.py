"""The reasons in words: the sentences a household reads, and rendering that never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.automation.conditions import Condition
from services.automation.words import KEYS, Reason, duration, render, watts


def cond(**keys: Any) -> Condition:
    """A condition map as the config writes it."""
    return Condition.model_validate(keys)


def test_french_sentences_read_as_written() -> None:
    cases = [
        (Reason.of("blocked", cond=cond(tempo_today="red", period="hp")),
         "bloqué : jour rouge HP"),
        (Reason.of("blocked", cond=cond(signal="tank_c", above=75)),
         "bloqué : signal tank_c au-dessus de 75"),
        (Reason.of("blocked", cond=cond(ejp="notice")), "bloqué : préavis EJP"),
        (Reason.of("blocked", cond=cond(ejp="peak")), "bloqué : pointe mobile EJP"),
        (Reason.of("required", cond=cond(tempo_tomorrow="red", period="hc")),
         "requis : heures creuses, demain rouge"),
        (Reason.of("required", cond=cond(tempo_today="white")), "requis : jour blanc"),
        (Reason.of("outside_allow", allow=(cond(time="10:00-18:00"),)),
         "hors des plages autorisées (10:00-18:00)"),
        (Reason.of("outside_allow", allow=(cond(time="08:00-12:00", days="sat-sun"),
                                           cond(time="14:00-18:00"))),
         "hors des plages autorisées (plage 08:00-12:00, sam, dim ; 14:00-18:00)"),
        (Reason.of("waiting", code="waiting", available_w=1200, need_w=3100),
         "en attente de surplus (1 200 W disponibles, 3 100 W nécessaires)"),
        (Reason.of("surplus", code="on", available_w=2400), "surplus : 2 400 W disponibles"),
        (Reason.of("surplus", code="on", charger="float", battery_a=3.2),
         "surplus : chargeur en float, batterie +3,2 A"),
        (Reason.of("waiting", code="waiting", charger="bulk", battery_a=-4),
         "en attente de surplus (chargeur en bulk, batterie -4,0 A)"),
        (Reason.of("surplus", code="on"), "surplus : allumé"),
        (Reason.of("catch_up", owed_s=4800, by="06:00", offpeak=True),
         "rattrapage heures creuses : 1 h 20 restantes avant 06:00"),
        (Reason.of("unreachable", owed_s=7200, available_s=4200, by="06:00"),
         "minimum du jour hors d'atteinte : 2 h dues, 1 h 10 de créneau avant 06:00"),
        (Reason.of("max_on", on_s=3 * 3600), "fait : 3 h atteintes (maximum du jour)"),
        (Reason.of("battery_low", signal="soc", level=85, min=90, resume=95),
         "batterie soc 85 sous le plancher 90 (reprise à 95)"),
        (Reason.of("battery_low", signal="soc", level=87.9, min=90, resume=92.5),
         "batterie soc 87,9 sous le plancher 90 (reprise à 92,5)"),
        (Reason.of("stale_off", inputs=("grid",)), "données périmées : grid — arrêt"),
        (Reason.of("min_on", min_s=600, left_s=240,
                   then=Reason.of("waiting", code="waiting")),
         "maintenu allumé : durée minimale 10 min (encore 4 min), puis en attente de surplus"),
        (Reason.of("idle", value="off"), "rien à faire : éteint"),
        (Reason.of("idle", value="eco"), "rien à faire : éco"),
        (Reason.of("scheduled", value="hors-gel"), "programme : hors-gel"),
        (Reason.of("scheduled", value="on"), "programme : allumé"),
        (Reason.of("disabled"), "automatisme désactivé"),
    ]
    for reason, text in cases:
        assert render(reason, "fr") == text, reason


def test_english_sentences() -> None:
    assert render(Reason.of("catch_up", owed_s=4800, by="06:00", offpeak=True), "en") == (
        "off-peak catch-up: 1 h 20 min left before 06:00 (the latest start that still fits)")
    assert render(Reason.of("blocked", cond=cond(time="22:00-06:00", days="mon-fri")),
                  "en") == "blocked: time 22:00-06:00, mon, tue, wed, thu, fri"
    assert render(Reason.of("waiting", code="waiting", available_w=1200, need_w=3100),
                  "en") == "waiting for surplus (1,200 W available, 3,100 W needed)"
    assert render(Reason.of("battery_low", signal="soc", level=87.9, min=90, resume=92.5),
                  "en") == "battery soc 87.9 under the floor 90 (back at 92.5)"
    assert render(Reason.of("idle", value="arret"), "en") == "nothing applies: stop"


def test_durations_and_watts() -> None:
    assert [duration(s) for s in (30, 59.2, 60, 2700, 3600, 4800, 4801, 86400)] == [
        "30 s", "60 s", "1 min", "45 min", "1 h", "1 h 20", "1 h 21", "24 h"]
    assert duration(float("inf")) == duration(None) == duration(-1) == "?"
    assert watts(1234.6) == "1 235 W" and watts(1234.6, "en") == "1,235 W"
    assert watts(None) == "? W"


def test_a_missing_parameter_renders_something_sane() -> None:
    assert render(Reason("catch_up"), "fr") == "rattrapage : ? restantes avant ?"
    assert render(Reason("blocked"), "fr") == "bloqué : ?"
    assert render(Reason("no-such-key"), "fr") == "no-such-key"


_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.builds(Reason, st.sampled_from(KEYS)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)
_NAMES = st.sampled_from(["cond", "allow", "inputs", "wish", "left_s", "on_s", "signal",
                          "level", "min", "resume", "owed_s", "available_s", "by", "offpeak",
                          "code", "available_w", "need_w", "on_after_s", "off_after_s",
                          "step_s", "value", "surplus", "catch_up_at", "then", "starts",
                          "cap", "min_s"])


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(KEYS), st.dictionaries(_NAMES, _ANY, max_size=8),
       st.sampled_from(["fr", "en"]))
def test_rendering_never_raises(key: str, params: dict[str, Any], lang: Any) -> None:
    text = render(Reason(key, tuple(params.items())), lang)
    assert isinstance(text, str) and text
