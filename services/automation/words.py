"""The engine's reasons in words, French and English.

The engine builds a `Reason` (a key and its parameters: the matched condition, figures,
times); `render` turns it into a sentence a household reads on the page ("rattrapage heures
creuses : 1 h 20 restantes avant 06:00") or into English for logs and events. Rendering never
raises: a missing or odd parameter shows as "?" (a reason is shown, not parsed).
Spaces are plain ASCII ones (also before ':'), so the sentences compare as written in DESIGN
examples and tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.automation.units import Window

Lang = Literal["fr", "en"]
UNKNOWN = "?"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a load got its wish: a key of `KEYS` and its parameters (hashable)."""

    key: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, key: str, **params: Any) -> Reason:
        """Reason.of("catch_up", owed_s=4800, by="06:00")."""
        return cls(key, tuple(params.items()))  # one call site, one order: equal reasons

    def get(self, name: str) -> Any:
        """A parameter, or None."""
        for k, v in self.params:
            if k == name:
                return v
        return None

    def render(self, lang: Lang) -> str:
        """The sentence in ``lang``."""
        return render(self, lang)


# -- figures -------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def duration(value: object, lang: Lang = "fr") -> str:
    """'1 h 20', '2 h', '45 min', '30 s' (a time left rounds up: never '0 min' while owed)."""
    s = _number(value)
    if s is None or s < 0:
        return UNKNOWN
    if s < 60:
        return f"{math.ceil(s)} s"
    minutes = math.ceil(s / 60 - 1e-9)
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    if not m:
        return f"{h} h"
    return f"{h} h {m:02d}" if lang == "fr" else f"{h} h {m:02d} min"


def watts(value: object, lang: Lang = "fr") -> str:
    """'2 400 W' (fr) or '2,400 W' (en), to the watt."""
    w = _number(value)
    if w is None:
        return f"{UNKNOWN} W"
    text = f"{round(w):,}"
    return (text.replace(",", " ") if lang == "fr" else text) + " W"


def number(value: object, lang: Lang = "fr") -> str:
    """A level or threshold as written: 85, 92,5 (fr) or 92.5 (en)."""
    x = _number(value)
    if x is None:
        return UNKNOWN
    return f"{x:g}".replace(".", ",") if lang == "fr" else f"{x:g}"


def clock(value: object) -> str:
    """'06:00' from a datetime or an 'HH:MM' string."""
    if isinstance(value, datetime):
        return f"{value:%H:%M}"
    return value if isinstance(value, str) and value else UNKNOWN


def text(value: object) -> str:
    """A name, or '?'."""
    return value if isinstance(value, str) and value else UNKNOWN


# -- the vocabulary ------------------------------------------------------------------------

_WORDS: dict[str, tuple[str, str]] = {  # word -> (fr, en)
    "on": ("allumé", "on"), "off": ("éteint", "off"),
    "hc": ("heures creuses", "off-peak hours"), "hp": ("heures pleines", "peak hours"),
    "blue": ("bleu", "blue"), "white": ("blanc", "white"), "red": ("rouge", "red"),
    "unknown": ("inconnu", "unknown"),
    "peak": ("pointe mobile EJP", "EJP peak"), "notice": ("préavis EJP", "EJP notice"),
    "none": ("hors EJP", "no EJP"),
    # fil pilote orders (services/core/contract/orders.py)
    "confort": ("confort", "comfort"), "eco": ("éco", "eco"),
    "hors-gel": ("hors-gel", "frost protection"), "arret": ("arrêt", "stop"),
    "confort-1": ("confort -1", "comfort -1"), "confort-2": ("confort -2", "comfort -2"),
}
_DAYS = {"fr": ("lun", "mar", "mer", "jeu", "ven", "sam", "dim"),
         "en": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
_MONTHS = {"fr": ("janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept",
                  "oct", "nov", "déc"),
           "en": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                  "dec")}


def word(value: object, lang: Lang) -> str:
    """A known value in words (on, hc, red, peak...), else as is."""
    if not isinstance(value, str):
        return UNKNOWN
    pair = _WORDS.get(value)
    return value if pair is None else pair[0 if lang == "fr" else 1]


def _set(values: object, names: tuple[str, ...]) -> str:
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        return UNKNOWN
    picked = sorted(v for v in values if isinstance(v, int) and 1 <= v <= len(names))
    return ", ".join(names[v - 1] for v in picked) or UNKNOWN


def _tariff_words(cond: Any, lang: Lang) -> list[str]:
    """Tempo day and period together read 'jour rouge HP' / 'red day, peak hours'."""
    out: list[str] = []
    today, period = getattr(cond, "tempo_today", None), getattr(cond, "period", None)
    if today is not None:
        day = (f"jour {word(today, lang)}" if lang == "fr" else f"{word(today, lang)} day")
        if period is not None and lang == "fr":
            day += f" {text(period).upper()}"
        elif period is not None:
            day += f", {word(period, lang)}"
        out.append(day)
    elif period is not None:
        out.append(word(period, lang))
    tomorrow = getattr(cond, "tempo_tomorrow", None)
    if tomorrow is not None:
        out.append(f"demain {word(tomorrow, lang)}" if lang == "fr"
                   else f"tomorrow {word(tomorrow, lang)}")
    ejp = getattr(cond, "ejp", None)
    if ejp is not None:
        out.append(word(ejp, lang))
    return out


def _signal_words(cond: Any, lang: Lang) -> list[str]:
    name = getattr(cond, "signal", None)
    if name is None:
        return []
    fr = lang == "fr"
    parts: list[str] = []
    above, below = getattr(cond, "above", None), getattr(cond, "below", None)
    within = getattr(cond, "in_", None)
    if above is not None:
        parts.append(f"{'au-dessus de' if fr else 'above'} {number(above, lang)}")
    if below is not None:
        parts.append(f"{'sous' if fr else 'below'} {number(below, lang)}")
    if isinstance(within, tuple) and len(within) == 2:
        parts.append(f"{'entre' if fr else 'between'} {number(within[0], lang)} "
                     f"{'et' if fr else 'and'} {number(within[1], lang)}")
    return [f"signal {text(name)} {' '.join(parts) or UNKNOWN}"]


def condition(cond: object, lang: Lang) -> str:
    """A condition map in words: 'jour rouge HP', 'signal tank_c au-dessus de 75'."""
    if cond is None:
        return UNKNOWN
    fr = lang == "fr"
    parts: list[str] = []
    time = getattr(cond, "time", None)
    if isinstance(time, Window):
        parts.append(f"{'plage' if fr else 'time'} {time}")
    days, months = getattr(cond, "days", None), getattr(cond, "months", None)
    if days is not None:
        parts.append(_set(days, _DAYS[lang]))
    if months is not None:
        parts.append(_set(months, _MONTHS[lang]))
    parts += _tariff_words(cond, lang)
    parts += _signal_words(cond, lang)
    relay = getattr(cond, "relay", None)
    if relay is not None:
        state = word(getattr(cond, "is_", None), lang)
        parts.append(f"{'relais' if fr else 'relay'} {text(relay)} {state}")
    for_s = getattr(cond, "for_s", None)
    if for_s is not None:
        parts.append(f"{'depuis' if fr else 'for'} {duration(for_s, lang)}")
    return ", ".join(parts) or UNKNOWN


def conditions(conds: object, lang: Lang) -> str:
    """Several maps (any of them): 'plage 10:00-18:00 ; plage 20:00-22:00'."""
    if not isinstance(conds, tuple | list):
        return condition(conds, lang)
    sep = " ; " if lang == "fr" else "; "
    return sep.join(condition(c, lang) for c in conds) or UNKNOWN


def _windows(conds: object, lang: Lang) -> str:
    """The allow windows as '10:00-18:00' (a map without time in words)."""
    if not isinstance(conds, tuple | list):
        return UNKNOWN
    # A window alone reads '10:00-18:00'; a map with more keys (days...) reads in full.
    shown = [str(c.time) if isinstance(getattr(c, "time", None), Window)
             and getattr(c, "model_fields_set", None) == {"time"} else condition(c, lang)
             for c in conds]
    return (" ; " if lang == "fr" else "; ").join(shown) or UNKNOWN


# -- the sentences -------------------------------------------------------------------------

Sentence = Callable[[Reason, Lang], str]


def _fr_en(fr: str, en: str) -> Callable[[Lang], str]:
    return lambda lang: fr if lang == "fr" else en


def _stale(r: Reason, lang: Lang) -> str:
    inputs = r.get("inputs")
    names = ", ".join(text(n) for n in inputs) if isinstance(inputs, tuple | list) else UNKNOWN
    if r.key == "stale_off":
        return (f"données périmées : {names} — arrêt" if lang == "fr"
                else f"stale input: {names} — off")
    wish, left = word(r.get("wish"), lang), duration(r.get("left_s"), lang)
    return (f"données périmées : {names} — dernier état ({wish}) gardé encore {left}"
            if lang == "fr" else f"stale input: {names} — holding the last wish ({wish}) "
            f"for {left} more")


def _blocked(r: Reason, lang: Lang) -> str:
    what = condition(r.get("cond"), lang)
    return f"bloqué : {what}" if lang == "fr" else f"blocked: {what}"


def _outside_allow(r: Reason, lang: Lang) -> str:
    where = _windows(r.get("allow"), lang)
    return (f"hors des plages autorisées ({where})" if lang == "fr"
            else f"outside the allowed windows ({where})")


def _max_on(r: Reason, lang: Lang) -> str:
    done = duration(r.get("on_s"), lang)
    return (f"fait : {done} atteintes (maximum du jour)" if lang == "fr"
            else f"done: {done} reached (daily maximum)")


def _done_when(r: Reason, lang: Lang) -> str:
    what, on = conditions(r.get("cond"), lang), duration(r.get("on_s"), lang)
    return (f"fait : {what} (allumé {on} aujourd'hui)" if lang == "fr"
            else f"done: done_when held ({what}; on {on} today)")


def _battery(r: Reason, lang: Lang) -> str:
    name, level = text(r.get("signal")), number(r.get("level"), lang)
    floor, resume = number(r.get("min"), lang), number(r.get("resume"), lang)
    x, low = _number(r.get("level")), _number(r.get("min"))
    if x is not None and low is not None and x >= low:  # inside the band, on its way back up
        return (f"batterie {name} {level} : reprise à {resume} (plancher {floor})"
                if lang == "fr" else f"battery {name} {level}: back at {resume} "
                f"(floor {floor})")
    return (f"batterie {name} {level} sous le plancher {floor} (reprise à {resume})"
            if lang == "fr" else f"battery {name} {level} under the floor {floor} "
            f"(back at {resume})")


def _required(r: Reason, lang: Lang) -> str:
    what = condition(r.get("cond"), lang)
    return f"requis : {what}" if lang == "fr" else f"required: {what}"


def _catch_up(r: Reason, lang: Lang) -> str:
    owed, by = duration(r.get("owed_s"), lang), clock(r.get("by"))
    if lang == "en":
        kind = "off-peak catch-up" if r.get("offpeak") else "catch-up"
        return f"{kind}: {owed} left before {by} (the latest start that still fits)"
    kind = "rattrapage heures creuses" if r.get("offpeak") else "rattrapage"
    return f"{kind} : {owed} restantes avant {by}"


def _unreachable(r: Reason, lang: Lang) -> str:
    owed, left = duration(r.get("owed_s"), lang), duration(r.get("available_s"), lang)
    by = clock(r.get("by"))
    return (f"minimum du jour hors d'atteinte : {owed} dues, {left} de créneau avant {by}"
            if lang == "fr" else f"daily minimum out of reach: {owed} owed, {left} of "
            f"catch-up time left before {by}: running what is left")


def _offgrid(r: Reason, lang: Lang) -> str:
    """'chargeur en float, batterie -3,1 A' (off-grid: no export to count)."""
    charger, amps = text(r.get("charger")), _number(r.get("battery_a"))
    current = UNKNOWN if amps is None else f"{amps:+.1f} A"
    if lang == "fr":
        current = current.replace(".", ",")
    return (f"chargeur en {charger}, batterie {current}" if lang == "fr"
            else f"charger in {charger}, battery {current}")


def _figures(r: Reason, lang: Lang) -> str:
    """'(1 200 W disponibles, 3 100 W nécessaires)' when the allocator gave figures."""
    if r.get("charger") is not None:
        return f" ({_offgrid(r, lang)})"
    have, need = r.get("available_w"), r.get("need_w")
    if _number(have) is None:
        return ""
    if _number(need) is None:
        return (f" ({watts(have, lang)} disponibles)" if lang == "fr"
                else f" ({watts(have, lang)} available)")
    return (f" ({watts(have, lang)} disponibles, {watts(need, lang)} nécessaires)"
            if lang == "fr" else f" ({watts(have, lang)} available, {watts(need, lang)} "
            "needed)")


def _surplus(r: Reason, lang: Lang) -> str:
    """Status surplus: the allocator has it on (code: why it still has)."""
    code, fr = r.get("code"), lang == "fr"
    if code == "stale":
        return ("surplus : gardé, pas de mesure fraîche du réseau" if fr
                else "surplus: kept, no fresh grid reading")
    if code == "short":
        after = duration(r.get("off_after_s"), lang)
        return (f"surplus insuffisant{_figures(r, lang)}, arrêt après {after}" if fr
                else f"surplus short{_figures(r, lang)}, off after {after}")
    if code == "other_reason":
        return "surplus : allumé par ailleurs" if fr else "surplus: on for another reason"
    if r.get("charger") is not None:
        return f"surplus : {_offgrid(r, lang)}" if fr else f"surplus: {_offgrid(r, lang)}"
    if _number(r.get("available_w")) is None:
        return "surplus : allumé" if fr else "surplus: on"
    have = watts(r.get("available_w"), lang)
    return f"surplus : {have} disponibles" if fr else f"surplus: {have} available"


def _waiting(r: Reason, lang: Lang) -> str:
    """Not (yet) switched on by the allocator: what it waits for."""
    code, fr = r.get("code"), lang == "fr"
    if code == "allotted":
        after = duration(r.get("on_after_s"), lang)
        return (f"surplus suffisant{_figures(r, lang)}, allumage après {after}" if fr
                else f"enough surplus{_figures(r, lang)}, on after {after}")
    if code == "waiting_step":
        step = duration(r.get("step_s"), lang)
        return (f"surplus suffisant, attend son tour (un allumage par {step})" if fr
                else f"enough surplus, waiting for its turn (one switch-on per {step})")
    if code == "stale":
        return ("en attente de surplus (pas de mesure fraîche du réseau)" if fr
                else "waiting for surplus (no fresh grid reading)")
    return ("en attente de surplus" if fr else "waiting for surplus") + _figures(r, lang)


def _idle(r: Reason, lang: Lang) -> str:
    """Nothing applies: the default, and what could change it (surplus, a catch-up later)."""
    fr = lang == "fr"
    surplus, parts = r.get("surplus"), []
    if isinstance(surplus, Reason):
        parts.append(render(surplus, lang))
    later = r.get("catch_up_at")
    if later is not None:
        owed, by = duration(r.get("owed_s"), lang), clock(r.get("by"))
        parts.append(f"rattrapage à {clock(later)} ({owed} dues avant {by})" if fr
                     else f"catch-up at {clock(later)} ({owed} owed before {by})")
    if not parts:
        value = word(r.get("value"), lang)
        parts.append(f"rien à faire : {value}" if fr else f"nothing applies: {value}")
    return " ; ".join(parts)


def _scheduled(r: Reason, lang: Lang) -> str:
    value = word(r.get("value"), lang)
    return f"programme : {value}" if lang == "fr" else f"schedule: {value}"


def _held(r: Reason, lang: Lang) -> str:
    """A binding over a choice: held on/off, and what it then turns to."""
    fr, key = lang == "fr", r.key
    then = r.get("then")
    after = render(then, lang) if isinstance(then, Reason) else UNKNOWN
    if key == "max_starts":
        starts, cap = number(r.get("starts"), lang), number(r.get("cap"), lang)
        head = (f"maintenu éteint : {starts} démarrages dans l'heure (max {cap})" if fr
                else f"held off: {starts} starts in the last hour (cap {cap})")
    else:
        limit, left = duration(r.get("min_s"), lang), duration(r.get("left_s"), lang)
        if key == "min_on":
            head = (f"maintenu allumé : durée minimale {limit} (encore {left})" if fr
                    else f"held on: minimum on-time {limit} ({left} more)")
        else:
            head = (f"maintenu éteint : arrêt minimal {limit} (encore {left})" if fr
                    else f"held off: minimum off-time {limit} ({left} more)")
    return f"{head}, puis {after}" if fr else f"{head}, then {after}"


def _disabled(r: Reason, lang: Lang) -> str:
    return ("automatisme désactivé" if lang == "fr" else "automation disabled")


SENTENCES: dict[str, Sentence] = {
    "stale_off": _stale, "stale_hold": _stale, "blocked": _blocked,
    "outside_allow": _outside_allow, "max_on": _max_on, "done_when": _done_when,
    "battery_low": _battery, "required": _required, "catch_up": _catch_up,
    "unreachable": _unreachable, "surplus": _surplus, "waiting": _waiting, "idle": _idle,
    "scheduled": _scheduled, "min_on": _held, "min_off": _held, "max_starts": _held,
    "disabled": _disabled,
}
KEYS = tuple(SENTENCES)


def render(reason: Reason, lang: Lang = "fr") -> str:
    """The sentence for ``reason`` in ``lang`` ("fr", else English); never raises."""
    try:
        return _cached(reason, "fr" if lang == "fr" else "en")
    except TypeError:  # an unhashable parameter: render it all the same, uncached
        return _render(reason, "fr" if lang == "fr" else "en")


@functools.lru_cache(maxsize=4096)  # reasons repeat tick after tick: render each once
def _cached(reason: Reason, lang: Lang) -> str:
    return _render(reason, lang)


def _render(reason: Reason, lang: Lang) -> str:
    if not isinstance(reason, Reason):
        return UNKNOWN
    sentence = SENTENCES.get(reason.key)
    if sentence is None:
        return f"{reason.key}" if reason.key else UNKNOWN
    try:
        return sentence(reason, lang)
    except Exception:  # a reason is for reading: never fail a tick on one
        return f"{reason.key} ({UNKNOWN})"
