"""Shedding's reasons in French for Home Assistant, which shows them as sent.

The services write their reasons in English (logs, the MQTT contract); the page translates
them in static/i18n.js, and Home Assistant through the Jinja template built here from the same
patterns, so an HA user reads "phase 1 à 162 % de 9000 VA" like the page's user. A reason no
pattern knows is shown as sent."""

from __future__ import annotations

import json
import re

# (pattern, French) in Python's re syntax: HA's `regex_replace` filter is Python's re.sub.
FR_REASONS: tuple[tuple[str, str], ...] = (
    (r"^phase (\d+) at (\d+)% of (\d+) VA \(shed at (\d+)%\)$",
     r"phase \1 à \2 % de \3 VA (délestage à \4 %)"),
    (r"^phase (\d+) at (\d+)%, under (\d+)% with the load counted$",
     r"phase \1 à \2 %, sous \3 % en comptant la charge"),
    (r"^overrun signalled by the meter on phase (\d+)$",
     r"dépassement signalé par le compteur sur la phase \1"),
    (r"^rotation$", "rotation des charges délestées"),
    (r"^not shed$", "non délesté"),
    (r"^state at start$", "état au démarrage"),
    (r"^no news of shedding since start$", "délestage silencieux depuis le démarrage"),
    (r"^shedding offline$", "délestage hors ligne"),
    (r"^shedding heartbeat lost$", "délestage muet (battement perdu)"),
    (r"^shedding data stale \(meter (.+)\)$", r"données du délestage périmées (compteur \1)"),
    (r"^shedding state expired$", "état du délestage expiré"),
)


def french(reason: str) -> str:
    """What the template renders for ``reason`` (the same substitutions, in order)."""
    for pattern, fr in FR_REASONS:
        reason = re.sub(pattern, fr, reason)
    return reason


def jinja_french(expr: str) -> str:
    """A Jinja expression of ``expr`` (a reason string) in French, for a value template."""
    return expr + "".join(
        f" | regex_replace({json.dumps(p, ensure_ascii=False)}, "
        f"{json.dumps(fr, ensure_ascii=False)})" for p, fr in FR_REASONS)
