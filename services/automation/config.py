"""Configuration section of the automation: signals, tariff, surplus allocator and loads.

Checks that need only this section live here (signal names, each relay once, a daily minimum
that fits its catch-up windows); the ones that need other sections (a relay that exists, a
shed load's power_w) belong to the composition root.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.automation.conditions import Clock, Duration, TimeWindow
from services.automation.loads import LoadConfig
from services.automation.units import DAY_MINUTES, Window, format_clock, format_duration
from services.core.config import Section, check_time_zone
from services.core.contract.topics import slug

DEFAULT_TARIFF_STALE_S = 120.0


def _check_source(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 2 or any(not p or p != slug(p) for p in parts):
        raise ValueError(f"{value!r} is not a source \"<service>/<device>\" such as "
                         "'teleinfo/linky'")
    return value


class SignalConfig(Section):
    """A named input: one field of one device's state, and how old it may be."""

    source: str = Field(description='The device: "<service>/<device>".',
                        examples=["teleinfo/linky"])
    field: str = Field(description="The field of its state.", examples=["net_power_va"])
    stale_after_s: Duration = Field(gt=0, description="Stale when its last value is older "
                                    "than this (or its device is offline).")

    _source = field_validator("source")(_check_source)


def _short_tariff(value: object) -> object:
    """'teleinfo/linky' is {source: teleinfo/linky} with the default freshness."""
    return {"source": value} if isinstance(value, str) else value


class TariffSource(Section):
    """The meter whose state gives period, tempo colours and EJP."""

    source: str = Field(description='The meter: "<service>/<device>".')
    stale_after_s: Duration = Field(DEFAULT_TARIFF_STALE_S, gt=0, description="Stale when "
                                    "its last state is older than this.")

    _source = field_validator("source")(_check_source)


class OffgridConfig(Section):
    """Off-grid surplus: the charger's state and the battery current (PvMonit's idiom)."""

    charger: str = Field(description="Signal of the charger state (absorption/float: surplus).")
    battery_current: str = Field(description="Signal of the battery current (+ charging).")
    discharge_a: float = Field(2.0, ge=0, description="Discharge tolerated before the "
                               "lowest-priority load gives its allotment back.")


class SurplusConfig(Section):
    """The allocator shared by every load with a `surplus:` block."""

    grid: str | None = Field(None, description="Signal of the grid power: + import, - export.")
    offgrid: OffgridConfig | None = Field(None, description="Instead of grid, off-grid.")
    smoothing_s: Duration = Field(60.0, ge=0, description="Averaging time constant of the "
                                  "grid signal (0: none).")
    reserve_w: float = Field(50.0, ge=0, description="Export always left to the grid.")
    step_s: Duration = Field(60.0, ge=0, description="At most one switch-on per step, all "
                             "loads together.")

    @model_validator(mode="after")
    def _one_source(self) -> SurplusConfig:
        if (self.grid is None) == (self.offgrid is None):
            raise ValueError("give exactly one of 'grid' (a signal) or 'offgrid'")
        return self


class AutomationConfig(Section):
    """Declarative rules that steer relays: surplus routing, tariffs, schedules."""

    tick_s: Duration = Field(5.0, gt=0, description="The engine decides this often.")
    language: Literal["fr", "en"] = Field("fr", description="Language of the reasons shown "
                                          "per load (the page, the API, the state topic); "
                                          "logs and events stay in English.")
    timezone: str = Field("Europe/Paris", description="Local time of the rules.")
    day_starts_at: Clock = Field("06:00", validate_default=True, description="Daily "
                                 "counters reset here (the Tempo day runs 06:00 to 06:00).")
    offpeak: Annotated[tuple[TimeWindow, ...] | None, BeforeValidator(
        lambda v: [v] if isinstance(v, str) else v)] = Field(
        None, description="Off-peak windows for planning ahead; default: learned from the "
        "meter's period changes.")
    signals: dict[str, SignalConfig] = Field(default_factory=dict, description="Named inputs.")
    tariff: Annotated[TariffSource | None, BeforeValidator(_short_tariff)] = Field(
        None, description='The tariff source, or just "teleinfo/linky" (120 s).')
    surplus: SurplusConfig | None = Field(None, description="The surplus allocator.")
    loads: tuple[LoadConfig, ...] = Field((), description="The relays it steers.")
    state_file: Path | None = Field(None, description="Where daily counters, on/off times, "
                                    "done flags, learned off-peak hours and the disabled "
                                    "loads are kept (default: <data_dir>/automation.json).")

    _zone = field_validator("timezone")(check_time_zone)

    @field_validator("signals")
    @classmethod
    def _names(cls, value: dict[str, SignalConfig]) -> dict[str, SignalConfig]:
        bad = [n for n in value if n != slug(n)]
        if bad:
            raise ValueError(f"signal names must be slugs (a-z, 0-9, - and _): {bad}")
        return value

    @model_validator(mode="after")
    def _references(self) -> AutomationConfig:
        problems = [*self._relays_once(), *self._signal_problems(), *self._fit_problems()]
        if any(load.surplus is not None for load in self.loads) and self.surplus is None:
            problems.append("loads with a 'surplus' block need the 'surplus' section")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _relays_once(self) -> Iterator[str]:
        relays = [load.relay for load in self.loads]
        dupes = sorted({r for r in relays if relays.count(r) > 1})
        if dupes:
            yield f"loads: each relay may appear once, repeated: {', '.join(dupes)}"

    def signal_refs(self) -> Iterator[tuple[str, str]]:
        """(key, signal name) for every place that names a signal."""
        if self.surplus is not None and self.surplus.grid is not None:
            yield "surplus.grid", self.surplus.grid
        if self.surplus is not None and self.surplus.offgrid is not None:
            yield "surplus.offgrid.charger", self.surplus.offgrid.charger
            yield "surplus.offgrid.battery_current", self.surplus.offgrid.battery_current
        for i, load in enumerate(self.loads):
            where = f"loads.{i} ({load.relay})"
            if load.power_from is not None:
                yield f"{where}.power_from", load.power_from
            if load.battery is not None:
                yield f"{where}.battery.signal", load.battery.signal
            for key, conditions in load.conditions().items():
                for j, cond in enumerate(conditions):
                    if cond.signal is not None:
                        yield f"{where}.{key}.{j}.signal", cond.signal

    def _signal_problems(self) -> Iterator[str]:
        known = ", ".join(sorted(self.signals)) or "none declared"
        for key, name in self.signal_refs():
            if name not in self.signals:
                yield f"{key}: unknown signal {name!r} (signals: {known})"

    def _fit_problems(self) -> Iterator[str]:
        for i, load in enumerate(self.loads):
            daily = load.daily
            if daily is None or daily.min_on is None or daily.catch_up is None:
                continue
            fits = catch_up_minutes(self, load)
            if fits is not None and daily.min_on > fits * 60:
                by = format_clock(self.by_of(load))
                yield (f"loads.{i} ({load.relay}).daily.min_on: "
                       f"{format_duration(daily.min_on)} does not fit in its catch-up windows "
                       f"before {by} ({format_duration(fits * 60)}, less any time outside "
                       "allow)")

    def by_of(self, load: LoadConfig) -> int:
        """When the load's daily minimum is due (minutes since midnight)."""
        if load.daily is not None and load.daily.by is not None:
            return load.daily.by
        return self.day_starts_at

    def catch_up_windows(self, load: LoadConfig) -> tuple[Window, ...] | None:
        """The load's catch-up windows (None: offpeak, still to be learned)."""
        catch_up = load.daily.catch_up if load.daily is not None else None
        if catch_up == "offpeak":
            return self.offpeak
        return catch_up if isinstance(catch_up, tuple) else ()


def catch_up_minutes(cfg: AutomationConfig, load: LoadConfig) -> int | None:
    """Minutes of catch-up window from the day's start to `by`, inside allow's windows.

    An upper bound: an allow map without `time` counts as all day (its other keys vary).
    None when the windows are the offpeak hours still to be learned.
    """
    windows = cfg.catch_up_windows(load)
    if windows is None:
        return None
    allowed = [c.time for c in load.allow]
    whole = not allowed or any(w is None for w in allowed)
    span = (cfg.by_of(load) - cfg.day_starts_at) % DAY_MINUTES or DAY_MINUTES
    count = 0
    for k in range(span):
        minute = (cfg.day_starts_at + k) % DAY_MINUTES
        if any(w.contains(minute) for w in windows) and (
            whole or any(w is not None and w.contains(minute) for w in allowed)
        ):
            count += 1
    return count


_LENIENT_WORDS = frozenset({"when_stale", "is", "state", "default"})
_CLOCK_KEYS = frozenset({"day_starts_at", "by"})


def lenient_readings(raw: object, path: str = "automation") -> list[str]:
    """How the loader read values YAML 1.1 typed on its own, for `enerbox config check`.

    Unquoted off/on arrive as booleans and unquoted 06:00 as the sexagesimal int 360.
    """
    notes: list[str] = []
    items: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [(str(i), v) for i, v in enumerate(raw)]
    for key, value in items:
        where = f"{path}.{key}"
        if key in _LENIENT_WORDS and isinstance(value, bool):
            word = "on" if value else "off"
            notes.append(f"{where}: unquoted {word} (YAML boolean {value}) read as \"{word}\"")
        elif key in _CLOCK_KEYS and isinstance(value, int) and not isinstance(value, bool):
            shown = format_clock(value) if 0 <= value < DAY_MINUTES else str(value)
            notes.append(f"{where}: unquoted {shown} (YAML 1.1 base-60 number {value}) read "
                         f"as \"{shown}\"")
        else:
            notes.extend(lenient_readings(value, where))
    return notes
