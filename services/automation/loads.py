"""A load of the automation section: its relay, surplus share, limits, rules and schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.automation.conditions import (
    AnyOf,
    Clock,
    DaySet,
    Duration,
    OnOff,
    TimeWindow,
    clock_holds,
)
from services.automation.units import format_duration
from services.core.config import Section
from services.core.contract.orders import ORDERS
from services.core.contract.topics import slug

OUTPUTS = ("on", "off", *ORDERS)


def _yaml11_word(value: object) -> object:
    """Unquoted on/off that YAML 1.1 read as booleans, back to the word."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def _windows(value: object) -> object:
    """'offpeak' as is; one window "HH:MM-HH:MM" as a one-window list."""
    return [value] if isinstance(value, str) and value != "offpeak" else value


class LoadSurplus(Section):
    """How this load takes part in the surplus allocator."""

    margin_w: float = Field(100.0, ge=0, description="An off load is allotted only when the "
                            "surplus covers power_w plus this.")
    on_after_s: Duration = Field(60.0, ge=0, description="Allotted this long without a break "
                                 "before it switches on.")
    off_import_w: float = Field(200.0, ge=0, description="An on load keeps its allotment "
                                "while the surplus covers power_w minus this.")
    off_after_s: Duration = Field(180.0, ge=0, description="Not allotted this long without a "
                                  "break before it switches off.")


class BatteryFloor(Section):
    """Off under a battery level, back only once it reaches `resume` (a hysteresis band)."""

    signal: str = Field(description="The signal of the battery level (e.g. soc).")
    min: float = Field(description="Off under this.")
    resume: float = Field(description="Back on only at or above this (above min).")

    @model_validator(mode="after")
    def _band(self) -> BatteryFloor:
        if self.resume <= self.min:
            raise ValueError(f"resume ({self.resume:g}) must be above min ({self.min:g}), "
                             "or the load would chatter at the floor")
        return self


class DailyConfig(Section):
    """Daily on-time: a minimum caught up before `by`, a maximum."""

    min_on: Duration | None = Field(None, gt=0, le=86400, description="On-time owed each "
                                    "automation day (e.g. 3h).")
    max_on: Duration | None = Field(None, gt=0, le=86400, description="Off once on this long "
                                    "in the automation day.")
    by: Clock | None = Field(None, description="Local time the minimum is due by (default: "
                             "the end of the automation day, day_starts_at).")
    catch_up: Annotated[
        Literal["offpeak"] | tuple[TimeWindow, ...] | None, BeforeValidator(_windows)
    ] = Field(None, description="Where the owed time is caught up: 'offpeak' (the offpeak "
              "hours) or windows \"HH:MM-HH:MM\"; none: the minimum is only reported.")

    @model_validator(mode="after")
    def _consistent(self) -> DailyConfig:
        if self.min_on is not None and self.max_on is not None and self.min_on > self.max_on:
            raise ValueError(f"min_on ({format_duration(self.min_on)}) is above max_on "
                             f"({format_duration(self.max_on)})")
        if self.catch_up is not None and self.min_on is None:
            raise ValueError("catch_up needs a min_on to catch up")
        return self


class ScheduleEntry(Section):
    """A slot of the schedule: when it applies, and the output it asks for."""

    time: TimeWindow | None = Field(None, description='Local window "HH:MM-HH:MM".')
    days: DaySet | None = Field(None, description="Days (mon-fri, a list); for a window that "
                                "wraps midnight, the day it started.")
    order: str | None = Field(None, description="A fil pilote order (confort, eco, ...).")
    state: OnOff | None = Field(None, description='"on" or "off" (a switch).')

    @model_validator(mode="after")
    def _one_output(self) -> ScheduleEntry:
        if (self.order is None) == (self.state is None):
            raise ValueError("give exactly one of 'order' (a zone) or 'state' (on/off)")
        if self.order is not None and self.order not in ORDERS:
            raise ValueError(f"order {self.order!r} is not a fil pilote order "
                             f"({', '.join(ORDERS)})")
        return self

    def applies(self, now: datetime) -> bool:
        """True at local ``now`` (a wrapping window's days: the day it started)."""
        return clock_holds(now, self.time, self.days, None)

    @property
    def output(self) -> str:
        """What it asks for: an order, or "on"/"off"."""
        return self.order or self.state or "off"


class LoadConfig(Section):
    """A relay the automation steers, and its rules (DESIGN.md's rule order)."""

    relay: str = Field(description="Id of the relay (relays section).")
    name: str | None = Field(None, description="Its name in Home Assistant; default: the "
                             "relay's name (relays section), else its id.")
    power_w: float | None = Field(None, gt=0, description="Its power when on; needed for "
                                  "surplus routing.")
    power_from: str | None = Field(None, description="A signal of its measured power, else "
                                   "power_w.")
    priority: int | None = Field(None, description="Lower is served first; none: after every "
                                 "numbered load.")
    surplus: LoadSurplus | None = Field(None, description="Routed by the surplus allocator.")
    min_on_s: Duration = Field(0.0, ge=0, description="Once on, stays on this long (binds "
                               "rules 6-9 only).")
    min_off_s: Duration = Field(0.0, ge=0, description="Once off, stays off this long (binds "
                                "rules 6-9 only).")
    max_starts_per_hour: int | None = Field(None, ge=1, description="Cap on the switch-ons "
                                            "the automation starts in any 60 minutes.")
    battery: BatteryFloor | None = Field(None, description="Battery floor with a resume band.")
    daily: DailyConfig | None = Field(None, description="Daily minimum and maximum on-time.")
    done_when: AnyOf | None = Field(None, description="Off for the rest of the automation day "
                                    "once this has held (e.g. a thermostat that opened).")
    block: AnyOf = Field((), description="Off while any of these holds.")
    require: AnyOf = Field((), description="On while any of these holds.")
    allow: AnyOf = Field((), description="Off outside these (none given: always allowed).")
    schedule: tuple[ScheduleEntry, ...] = Field((), description="Its output when no other "
                                                "rule decides, first matching slot.")
    default: Annotated[str | None, BeforeValidator(_yaml11_word)] = Field(
        None, description='Its "off": what blocked, stale and nothing-applies mean (off, or '
        "a fil pilote order for a zone).")
    when_stale: Annotated[Literal["off", "hold"], BeforeValidator(_yaml11_word)] = Field(
        "off", description='"off", or hold: keep the last wish hold_s, then off.')
    hold_s: Duration = Field(300.0, gt=0, description="With when_stale hold: how long, from "
                             "when the input went stale.")

    @field_validator("relay")
    @classmethod
    def _slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a relay id (a slug such as {slug(value)!r})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LoadConfig:
        if self.surplus is not None and self.power_w is None:
            raise ValueError("a load with 'surplus' needs power_w (what it takes from it)")
        if self.default is not None and self.default not in OUTPUTS:
            raise ValueError(f"default {self.default!r} is not off, on or a fil pilote order")
        orders = {e.order is not None for e in self.schedule}
        if len(orders) > 1:
            raise ValueError("schedule: use either order (a zone) or state (a switch), not both")
        if True in orders and self.default not in ORDERS:
            raise ValueError("a schedule of orders is a fil pilote zone's: give default: a fil "
                             f"pilote order ({', '.join(ORDERS)})")
        return self

    def scheduled(self, now: datetime) -> str | None:
        """The first schedule slot's output at local ``now``, or None (then: default)."""
        return next((e.output for e in self.schedule if e.applies(now)), None)

    def conditions(self) -> dict[str, AnyOf]:
        """Its condition lists by key (done_when, block, require, allow)."""
        return {"done_when": self.done_when or (), "block": self.block,
                "require": self.require, "allow": self.allow}
