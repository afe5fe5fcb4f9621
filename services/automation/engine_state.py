"""The engine's inputs, decisions and persisted per-load state (pure data, JSON round-trip).

The service around the engine fills `Inputs` from MQTT; the engine returns one `Decision` per
load and a JSON-able state dict the service persists, so that a restart mid-day decides the
same (no chatter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast

from services.automation.daily import AutomationDay, RunCounter
from services.automation.smoothing import finite
from services.automation.snapshot import TariffFacts, Tempo
from services.automation.units import Window

TEMPOS = ("blue", "white", "red", "unknown")
Source = Literal["auto", "user", "shed", "default"]


@dataclass(frozen=True, slots=True)
class SignalInput:
    """A signal's last value, when it was received, and whether its device/service is offline."""

    value: float | str | bool | None
    received: datetime
    offline: bool = False

    def stale(self, now: datetime, stale_after_s: float) -> bool:
        """Stale when older than ``stale_after_s`` (strictly), or offline: at once."""
        return self.offline or now.timestamp() - self.received.timestamp() > stale_after_s


@dataclass(frozen=True, slots=True)
class TariffInput:
    """The tariff source's last state (teleinfo fields) and when it was received."""

    received: datetime
    tariff_period: str | None = None
    tempo_today: str | None = None
    tempo_tomorrow: str | None = None
    ejp_notice: bool | None = None
    offline: bool = False


@dataclass(frozen=True, slots=True)
class RelayInput:
    """A relay's REAL output ("on"/"off"/an order) and who set it."""

    output: str
    source: Source = "default"
    since: datetime | None = None  # in that output since, when the relay says so


@dataclass(frozen=True)
class Inputs:
    """Everything the engine reads at one tick besides the clock and its state."""

    signals: Mapping[str, SignalInput] = field(default_factory=dict)
    tariff: TariffInput | None = None
    relays: Mapping[str, RelayInput] = field(default_factory=dict)
    offpeak: tuple[Window, ...] | None = None  # learned from the meter's period changes
    disabled: frozenset[str] = frozenset()  # relays whose automation the user switched off


@dataclass(frozen=True, slots=True)
class Event:
    """Something to tell once: a decision change, or the day's minimum being unreachable."""

    kind: Literal["decision", "unreachable"]
    relay: str
    wish: str
    status: str
    reason: str  # in the automation's language
    reason_en: str


Status = Literal["idle", "surplus", "catch_up", "required", "scheduled", "blocked", "done",
                 "unreachable", "stale", "disabled"]
STATUSES: tuple[Status, ...] = ("idle", "surplus", "catch_up", "required", "scheduled",
                                "blocked", "done", "unreachable", "stale", "disabled")
Hold = Literal["min_on", "min_off", "max_starts"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One load's wish at one tick, the rule that decided, why, and its daily figures.

    `status` is the rule that chose (DESIGN.md's set, plus disabled); `hold` says when
    min_on_s, min_off_s or max_starts_per_hour keeps the real output against that choice.
    """

    relay: str
    wish: str  # "on"/"off" for a switch; an order for a fil pilote zone
    status: Status
    hold: Hold | None
    reason: str  # in the automation's language
    reason_en: str
    on_today_s: float
    remaining_s: float | None  # daily minimum still owed (None: no minimum)
    latest_start: datetime | None
    starts_today: int
    min_on_s: float | None = None  # the daily minimum (None: none)
    by: str | None = None  # "HH:MM" the minimum is due by (None: no minimum)
    events: tuple[Event, ...] = ()


def _tempo(value: str | None) -> Tempo:
    text = (value or "unknown").lower()
    return cast(Tempo, text) if text in TEMPOS else "unknown"


def tariff_facts(t: TariffInput | None, now: datetime, stale_after_s: float) -> TariffFacts | None:
    """DESIGN.md's mapping: period hc for hc/*_hc, hp for hp/*_hp, none for base/ejp_*/other;
    ejp peak for ejp_peak, notice when ejp_notice outside a peak; tempo colours as published."""
    if t is None:
        return None
    stale = t.offline or now.timestamp() - t.received.timestamp() > stale_after_s
    tp = (t.tariff_period or "").lower()
    period: Literal["hc", "hp"] | None = None
    if not tp.startswith("ejp_"):
        if tp == "hc" or tp.endswith("_hc"):
            period = "hc"
        elif tp == "hp" or tp.endswith("_hp"):
            period = "hp"
    ejp: Literal["none", "notice", "peak"] = (
        "peak" if tp == "ejp_peak" else "notice" if t.ejp_notice else "none")
    return TariffFacts(period=period, tempo_today=_tempo(t.tempo_today),
                       tempo_tomorrow=_tempo(t.tempo_tomorrow), ejp=ejp, stale=stale)


@dataclass
class LoadState:
    """What the engine keeps per load between ticks."""

    counter: RunCounter
    wish: str | None = None
    status: str | None = None
    hold: str | None = None
    battery_low: bool = False  # under the floor, not yet back at resume
    stale_since: float | None = None  # epoch s the load's inputs went stale
    starts_day: date | None = None
    starts_today: int = 0

    def count_start(self, day: date, started: bool) -> int:
        """Switch-ons in the automation ``day`` (a new day starts at 0)."""
        if self.starts_day != day:
            self.starts_day, self.starts_today = day, 0
        self.starts_today += started
        return self.starts_today

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"counter": self.counter.to_dict(), "wish": self.wish, "status": self.status,
                "hold": self.hold, "battery_low": self.battery_low, "stale_since": self.stale_since,
                "starts_day": None if self.starts_day is None else self.starts_day.isoformat(),
                "starts_today": self.starts_today}

    @classmethod
    def from_dict(cls, day: AutomationDay, data: object) -> LoadState:
        """Back from to_dict(); unreadable parts start fresh."""
        if not isinstance(data, Mapping):
            return cls(RunCounter(day))
        counter = data.get("counter")
        state = cls(RunCounter.from_dict(day, counter) if isinstance(counter, Mapping)
                    else RunCounter(day))
        wish, status = data.get("wish"), data.get("status")
        state.wish = wish if isinstance(wish, str) else None
        state.status = status if isinstance(status, str) else None
        hold = data.get("hold")
        state.hold = hold if isinstance(hold, str) else None
        state.battery_low = data.get("battery_low") is True
        state.stale_since = finite(data.get("stale_since"))
        try:
            raw_day = data.get("starts_day")
            state.starts_day = date.fromisoformat(raw_day) if isinstance(raw_day, str) else None
        except ValueError:
            state.starts_day = None
        count = data.get("starts_today")
        state.starts_today = count if isinstance(count, int) and count >= 0 else 0
        return state
