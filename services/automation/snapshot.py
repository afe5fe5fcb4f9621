"""What the conditions read at one tick: a frozen Snapshot of signals, tariff and relays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Tempo = Literal["blue", "white", "red", "unknown"]


@dataclass(frozen=True)
class SignalValue:
    """A signal's last value and whether it is stale (too old, or its device offline)."""

    value: float | str | bool | None
    stale: bool = False


@dataclass(frozen=True)
class TariffFacts:
    """What the tariff source says now (DESIGN.md's mapping from teleinfo fields)."""

    period: Literal["hc", "hp"] | None = None
    tempo_today: Tempo = "unknown"
    tempo_tomorrow: Tempo = "unknown"
    ejp: Literal["none", "notice", "peak"] = "none"
    stale: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Everything conditions read at one tick; ``now`` is local time, tz-aware."""

    now: datetime
    signals: Mapping[str, SignalValue] = field(default_factory=dict)
    tariff: TariffFacts | None = None  # None: nothing received yet (stale)
    relays: Mapping[str, str] = field(default_factory=dict)  # id -> "on"/"off"/order
    relays_since: Mapping[str, datetime] = field(default_factory=dict)  # in that output since

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Snapshot.now must be tz-aware local time")
