"""The condition grammar (typed, frozen) and its pure evaluation against a Snapshot.

A map holds when all of its keys hold; a list holds when any of its maps holds. Evaluation is
tri-state: a condition that reads a stale input (a signal, the tariff, an unknown relay) is
``stale`` whatever its other keys say, so the engine applies ``when_stale`` (rule 1) and never
decides on stale data. Time keys read the local wall clock: on the spring DST day a window
inside the skipped hour (02:00-03:00 in Europe/Paris) never holds; on the autumn day a window
in the repeated hour holds through both passes. ``for_s`` counts real elapsed seconds.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, model_validator

from services.automation import units
from services.automation.snapshot import SignalValue, Snapshot, TariffFacts, Tempo
from services.core.config import Section
from services.core.contract.orders import ON_ORDERS

__all__ = [  # the inputs are re-exported: callers import the grammar and its inputs from here
    "AnyOf", "Condition", "HoldState", "Outcome", "SignalValue", "Snapshot", "TariffFacts",
    "Truth", "clock_holds", "evaluate", "uses_relays", "uses_signals", "uses_tariff",
]

Duration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    WithJsonSchema({"title": "duration", "type": ["number", "string"],
                    "examples": [90, "10min", "3h"]}),
]
Clock = Annotated[
    int,
    BeforeValidator(units.parse_clock),
    PlainSerializer(units.format_clock),
    WithJsonSchema({"title": "HH:MM", "type": "string", "pattern": r"^\d{1,2}:\d{2}$"}),
]
TimeWindow = Annotated[
    units.Window,
    BeforeValidator(units.parse_window),
    PlainSerializer(str),
    WithJsonSchema({"title": "HH:MM-HH:MM", "type": "string",
                    "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"}),
]
DaySet = Annotated[
    frozenset[int],
    BeforeValidator(units.parse_days),
    PlainSerializer(lambda s: units.format_set(s, units.DAYS)),
    WithJsonSchema({"title": "days", "type": ["string", "array"],
                    "examples": ["mon-fri", ["sat", "sun"]]}),
]
MonthSet = Annotated[
    frozenset[int],
    BeforeValidator(units.parse_months),
    PlainSerializer(lambda s: units.format_set(s, units.MONTHS)),
    WithJsonSchema({"title": "months", "type": ["string", "array"],
                    "examples": ["nov-mar", ["jul", "aug"]]}),
]
OnOff = Annotated[Literal["on", "off"], BeforeValidator(units.parse_on_off)]


class Condition(Section):
    """One map of conditions: it holds when every key given holds."""

    time: TimeWindow | None = Field(None, description='Local window "HH:MM-HH:MM" (may wrap '
                                    "midnight).")
    days: DaySet | None = Field(None, description="Days (mon-fri, a list); for a window that "
                                "wraps midnight, the day it started.")
    months: MonthSet | None = Field(None, description="Months (nov-mar, a list, or 1-12).")
    period: Literal["hc", "hp"] | None = Field(None, description="Tariff period now.")
    tempo_today: Tempo | None = Field(None, description="Tempo colour of the tariff day.")
    tempo_tomorrow: Tempo | None = Field(None, description="Tempo colour announced for "
                                         "tomorrow (unknown until announced).")
    ejp: Literal["none", "notice", "peak"] | None = Field(None, description="EJP state.")
    signal: str | None = Field(None, description="A named signal, with above/below/in.")
    above: float | None = Field(None, description="The signal is strictly above this.")
    below: float | None = Field(None, description="The signal is strictly below this.")
    in_: tuple[float, float] | None = Field(None, alias="in", description="The signal is "
                                            "within [lo, hi], bounds included.")
    relay: str | None = Field(None, description="A relay id, with is.")
    is_: OnOff | None = Field(None, alias="is", description='The relay\'s output is "on" '
                              "(for a zone: confort, confort-1, confort-2) or \"off\".")
    for_s: Duration | None = Field(None, gt=0, description="The whole map has held "
                                   "continuously this long (seconds, or 10min...).")

    @model_validator(mode="after")
    def _complete(self) -> Condition:
        compare = (self.above, self.below, self.in_)
        if self.signal is not None and all(v is None for v in compare):
            raise ValueError(f"signal {self.signal!r} needs above, below or in")
        if self.signal is None and any(v is not None for v in compare):
            raise ValueError("above, below and in need a 'signal'")
        if self.in_ is not None and self.in_[0] > self.in_[1]:
            raise ValueError(f"in: [{self.in_[0]}, {self.in_[1]}] has its low bound above "
                             "its high bound")
        if (self.relay is None) != (self.is_ is None):
            raise ValueError("'relay' and 'is' go together: {relay: <id>, is: \"on\"}")
        keys = self.model_fields_set - {"for_s"}
        if not keys:
            raise ValueError("an empty condition (give time, days, signal, relay, ...)")
        return self

    def signals(self) -> frozenset[str]:
        """The signal names this map reads."""
        return frozenset() if self.signal is None else frozenset({self.signal})

    def uses_tariff(self) -> bool:
        """True when this map reads the tariff (so a stale tariff makes it stale)."""
        tariff = (self.period, self.tempo_today, self.tempo_tomorrow, self.ejp)
        return any(v is not None for v in tariff)

    def relays(self) -> frozenset[str]:
        """The relay ids this map reads."""
        return frozenset() if self.relay is None else frozenset({self.relay})


def _any_of(value: object) -> object:
    """A single map is a one-map list."""
    return [value] if isinstance(value, Mapping | Condition) else value


AnyOf = Annotated[tuple[Condition, ...], BeforeValidator(_any_of)]


def uses_signals(conditions: Sequence[Condition]) -> frozenset[str]:
    """Every signal name the maps read."""
    return frozenset().union(*(c.signals() for c in conditions))


def uses_tariff(conditions: Sequence[Condition]) -> bool:
    """True when any map reads the tariff."""
    return any(c.uses_tariff() for c in conditions)


def uses_relays(conditions: Sequence[Condition]) -> frozenset[str]:
    """Every relay id the maps read."""
    return frozenset().union(*(c.relays() for c in conditions))


class Truth(StrEnum):
    """The outcome of a condition."""

    HOLDS = "holds"
    FAILS = "fails"
    STALE = "stale"


@dataclass(frozen=True)
class Outcome:
    """A condition's truth, the first map that holds, and the stale inputs it read."""

    truth: Truth
    matched: Condition | None = None
    stale: frozenset[str] = frozenset()  # signal names, "tariff", "relay:<id>"

    @property
    def holds(self) -> bool:
        """True only when it holds on fresh inputs."""
        return self.truth is Truth.HOLDS


@dataclass(frozen=True)
class HoldState:
    """Since when (epoch s) each map with ``for_s`` has held, by the caller's prefix (e.g.
    "water-heater.done_when") then by map key; persisted by the engine."""

    since: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict[str, float]]:
        """A JSON-ready copy."""
        return {prefix: dict(maps) for prefix, maps in self.since.items()}

    @classmethod
    def from_json(cls, data: object) -> HoldState:
        """Back from to_json(); entries that are not name -> {name -> number} are dropped."""
        if not isinstance(data, Mapping):
            return cls()
        return cls({str(p): {str(k): float(v) for k, v in maps.items()
                             if isinstance(v, int | float) and not isinstance(v, bool)}
                    for p, maps in data.items() if isinstance(maps, Mapping)})


# -- evaluation -------------------------------------------------------------------------------


def _tariff_key(cond: Condition, tariff: TariffFacts) -> bool:
    pairs: list[tuple[Any, Any]] = [
        (cond.period, tariff.period), (cond.tempo_today, tariff.tempo_today),
        (cond.tempo_tomorrow, tariff.tempo_tomorrow), (cond.ejp, tariff.ejp),
    ]
    return all(want is None or want == got for want, got in pairs)


def _signal_key(cond: Condition, value: float | str | bool) -> bool:
    if isinstance(value, str):
        return False  # a text value (charge_state) never compares to a number
    x = float(value)
    if cond.above is not None and not x > cond.above:
        return False
    if cond.below is not None and not x < cond.below:
        return False
    return cond.in_ is None or cond.in_[0] <= x <= cond.in_[1]


def clock_holds(
    now: datetime, time: units.Window | None, days: frozenset[int] | None,
    months: frozenset[int] | None,
) -> bool:
    """The time keys at local ``now``; days and months of a wrapping window: its start day."""
    minute = now.hour * 60 + now.minute
    if time is not None and not time.contains(minute):
        return False
    started = now
    if time is not None and time.started_yesterday(minute):
        started = now - timedelta(days=1)
    if days is not None and started.isoweekday() not in days:
        return False
    return months is None or started.month in months


def check_map(cond: Condition, snap: Snapshot) -> tuple[Truth, frozenset[str]]:
    """One map, without for_s: its truth now and the stale inputs it read."""
    stale: set[str] = set()
    ok = clock_holds(snap.now, cond.time, cond.days, cond.months)
    if cond.uses_tariff():
        if snap.tariff is None or snap.tariff.stale:
            stale.add("tariff")
        else:
            ok = ok and _tariff_key(cond, snap.tariff)
    if cond.signal is not None:
        sig = snap.signals.get(cond.signal)
        if sig is None or sig.stale or sig.value is None:
            stale.add(cond.signal)
        else:
            ok = ok and _signal_key(cond, sig.value)
    if cond.relay is not None:
        output = snap.relays.get(cond.relay)
        if output is None:
            stale.add(f"relay:{cond.relay}")
        else:
            on = output == "on" or output in ON_ORDERS
            ok = ok and on == (cond.is_ == "on")
    if stale:
        return Truth.STALE, frozenset(stale)
    return (Truth.HOLDS if ok else Truth.FAILS), frozenset()


@functools.lru_cache(maxsize=4096)  # a Condition is frozen and hashable: hash it once
def map_key(index: int, cond: Condition) -> str:
    """HoldState key of a map: a changed rule gets a new key, so its timer restarts."""
    digest = hashlib.sha1(cond.model_dump_json(by_alias=True).encode(), usedforsecurity=False)
    return f"{index}#{digest.hexdigest()[:8]}"


def evaluate(
    conditions: Sequence[Condition], snap: Snapshot, hold: HoldState, prefix: str
) -> tuple[Outcome, HoldState]:
    """Any of the maps, each all of its keys (and for_s); returns the new HoldState.

    A stale map breaks its for_s run: "held continuously" cannot be vouched for across a gap.
    """
    # Only this prefix's entries are rebuilt: those of a map that is gone (an edited rule) go.
    before = hold.since.get(prefix, {})
    since: dict[str, float] = {}
    now_s = snap.now.timestamp()
    stale: set[str] = set()
    matched: Condition | None = None
    for index, cond in enumerate(conditions):
        truth, stale_inputs = check_map(cond, snap)
        stale |= stale_inputs
        if cond.for_s is not None:
            if truth is not Truth.HOLDS:
                continue
            key = map_key(index, cond)
            began = before.get(key, now_s)
            relay_only = cond.model_fields_set <= {"relay", "is_", "for_s"}
            relay_since = snap.relays_since.get(cond.relay or "") if relay_only else None
            if relay_since is not None:
                began = relay_since.timestamp()  # the relay's own record survives our restart
            since[key] = began
            if now_s - began < cond.for_s:
                continue
        if truth is Truth.HOLDS and matched is None:
            matched = cond
    if stale:
        outcome = Outcome(Truth.STALE, stale=frozenset(stale))
    elif matched is not None:
        outcome = Outcome(Truth.HOLDS, matched=matched)
    else:
        outcome = Outcome(Truth.FAILS)
    if since == before:
        return outcome, hold  # the usual case: no for_s run started, kept or broken
    whole = {p: m for p, m in hold.since.items() if p != prefix}
    if since:
        whole[prefix] = since
    return outcome, HoldState(whole)
