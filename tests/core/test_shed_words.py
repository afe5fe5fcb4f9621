"""Shedding's reasons in French for Home Assistant: the same substitutions the template
makes (HA's regex_replace is Python's re.sub), on the sentences the services write."""

from __future__ import annotations

import json

from services.core.shed_words import FR_REASONS, french, jinja_french


def test_the_services_sentences_read_in_french() -> None:
    cases = {
        "phase 1 at 162% of 9000 VA (shed at 90%)": "phase 1 à 162 % de 9000 VA (délestage à 90 %)",
        "phase 2 at 61%, under 80% with the load counted":
            "phase 2 à 61 %, sous 80 % en comptant la charge",
        "overrun signalled by the meter on phase 3":
            "dépassement signalé par le compteur sur la phase 3",
        "rotation": "rotation des charges délestées",
        "not shed": "non délesté",
        "state at start": "état au démarrage",
        "shedding offline": "délestage hors ligne",
        "shedding data stale (meter linky)": "données du délestage périmées (compteur linky)",
    }
    for english, fr in cases.items():
        assert french(english) == fr, english
    assert french("a reason nobody wrote a pattern for") == "a reason nobody wrote a pattern for"


def test_the_template_applies_every_pattern_in_order() -> None:
    template = jinja_french("value_json.reason")
    assert template.startswith("value_json.reason | regex_replace(")
    at = 0
    for pattern, fr in FR_REASONS:
        call = f"regex_replace({json.dumps(pattern, ensure_ascii=False)}, " \
               f"{json.dumps(fr, ensure_ascii=False)})"
        found = template.index(call, at)
        assert found >= at
        at = found
