"""Typed bodies and answers of the REST API (they make the OpenAPI at /docs)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from services.core.contract import Order
from services.core.contract.messages import MAX_FOR_S, MIN_FOR_S


class FieldError(BaseModel):
    """One invalid input: where (e.g. ["query", "start"]) and why."""

    loc: list[str | int]
    msg: str
    type: str


class Error(BaseModel):
    """What went wrong: a sentence, and for an invalid request each input at fault."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class DeviceView(BaseModel):
    """One device's latest state."""

    service: str
    device: str
    availability: str | None = Field(description="online / offline, as the service says")
    state: dict[str, Any] | None = Field(description="normalized fields and ts")
    age_s: float | None = Field(description="seconds since the last state")
    stale: bool = Field(description="no state lately, or the device is offline")


AutomationStatus = Literal["idle", "surplus", "catch_up", "required", "scheduled", "blocked",
                           "done", "unreachable", "stale", "disabled"]


class AutomationView(BaseModel):
    """What the automation does with a relay and why (its ``automation/<relay>/state``)."""

    enabled: bool | None = Field(description="the load's automation switch; null: not said")
    status: AutomationStatus = Field(description="DESIGN.md's rule that decided, or disabled")
    hold: Literal["min_on", "min_off", "max_starts"] | None = Field(
        description="a minimum on/off time or the starts cap holds the relay where it is")
    reason: str | None = Field(description="why, in the automation's language (French by "
                               "default)", examples=["en attente de surplus"])
    on_today_s: float | None = Field(description="real on-time in today's automation day, s")
    min_on_s: float | None = Field(description="the daily minimum, s; null without one")
    remaining_s: float | None = Field(description="what is still owed of the minimum, s")
    latest_start: str | None = Field(description="latest start that still fits the minimum "
                                     "before 'by' (ISO local time)")
    by: str | None = Field(description="when the minimum is due, HH:MM", examples=["06:00"])
    starts_today: int | None = Field(description="switch-ons in today's automation day")
    ts: str | None = Field(description="when the automation published this")
    stale: bool = Field(description="the message expired or the automation is offline: this "
                        "no longer says what drives the relay")


class RelayView(BaseModel):
    """A relay or fil pilote zone, with its live state."""

    id: str
    name: str
    kind: Literal["switch", "fil_pilote"]
    options: list[str] = Field(description="orders of a zone, or on/off")
    state: dict[str, Any] | None = Field(description="the relays service's state message")
    automated: bool = Field(False, description="a load of the automation section")
    automation: AutomationView | None = Field(
        None, description="the automation's state for it; null when none drives it")


class AutomationSwitch(BaseModel):
    """Switch a load's automation on or off (off: the relay goes to its default)."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool


class AutomationSwitchResult(BaseModel):
    """The switch was published; ``applied`` once the automation's state confirmed it."""

    sent: bool
    applied: bool = Field(description="the automation's state says so (false: it did not "
                          "answer in time; is it running?)")
    relay: RelayView


class StateView(BaseModel):
    """Everything live."""

    services: dict[str, str]
    devices: list[DeviceView]
    relays: list[RelayView]
    shedding: dict[str, Any] | None


class RelayCommand(BaseModel):
    """A mode (on/off/auto) or a fil pilote order, optionally for a while."""

    # What the validator below checks, said in the schema (clients and schemathesis read it).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["mode"], "properties": {"mode": {"enum": ["on", "off"]}},
         "not": {"required": ["order"]}},
        {"required": ["mode"], "properties": {"mode": {"const": "auto"}},
         "not": {"anyOf": [{"required": ["order"]}, {"required": ["for_s"]},
                           {"required": ["until"]}]}},
        {"required": ["order"], "properties": {"order": {"type": "string"}},
         "not": {"required": ["mode"]}},
    ], "not": {"required": ["for_s", "until"]}})

    mode: Literal["on", "off", "auto"] | None = None
    order: Order | None = None
    # NaN and infinities are refused: NaN passes no comparison, so no bound would catch it.
    for_s: float | None = Field(None, ge=MIN_FOR_S, le=MAX_FOR_S, allow_inf_nan=False,
                                description="forced for this long, seconds (1 s to 366 days)")
    # The contract's form (services.core.contract.messages): H:MM or HH:MM, 00:00 to 23:59.
    until: str | None = Field(None, pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
                              description="forced until the next time the local clock reads "
                              "this, HH:MM (relays.timezone)", examples=["14:00"])

    @model_validator(mode="after")
    def _one_of(self) -> RelayCommand:
        if (self.mode is None) == (self.order is None):
            raise ValueError("give either 'mode' or 'order'")
        if self.mode == "auto" and (self.for_s is not None or self.until is not None):
            key = "for_s" if self.for_s is not None else "until"
            raise ValueError(f"'{key}' goes with a forced mode (on/off), not with auto")
        if self.for_s is not None and self.until is not None:
            raise ValueError("give either 'for_s' or 'until', not both")
        return self


class CommandResult(BaseModel):
    """The relays service accepted the command."""

    accepted: bool
    applied: bool = Field(
        description="false while the load is shed (or held safe): applied when restored")
    relay: RelayView


class HistorySeries(BaseModel):
    """[time (epoch s), min, mean, max] per step; null where there was no data."""

    # Four-item lists rather than a tuple: a tuple's OpenAPI 3.1 schema (prefixItems) trips
    # schemathesis 4.32's response check, and the JSON is the same.
    points: list[Annotated[list[float | None], Field(min_length=4, max_length=4)]]


class DayEnergy(BaseModel):
    """One meter's day in the ledger."""

    day: date
    meter: str
    import_wh_by_index: dict[str, float]
    import_cost_eur_by_index: dict[str, float | None]
    import_wh: float
    import_cost_eur: float | None
    subscription_eur: float | None
    total_cost_eur: float | None
    export_wh: float
    export_revenue_eur: float | None
    production_wh: float
    self_consumption_wh: float
    self_sufficiency: float | None
    flags: int


class HourEnergyView(BaseModel):
    """One local hour's energy (Wh); null where the counter has no reading that hour."""

    start: float = Field(description="epoch seconds")
    import_wh: float | None
    export_wh: float | None
    production_wh: float | None
    self_consumption_wh: float | None


class HourlyEnergy(BaseModel):
    """A local day hour by hour (23 or 25 hours on the days the clock changes)."""

    date: date
    timezone: str
    hours: list[HourEnergyView]


class Health(BaseModel):
    """Is the box working?"""

    ok: bool
    broker_connected: bool
    services: dict[str, str]
    stale_devices: list[str]
    history_available: bool


class DisplayView(BaseModel):
    """A display of the box, and where its current frame is (dummy displays write one)."""

    id: str
    backend: Literal["oled-ssd1306", "oled-sh1106", "tm1638", "dummy"]
    size: str = Field(description="width x height in pixels", examples=["128x64"])
    frame_url: str | None = Field(description="the current frame as PNG; null for a display "
                                  "that writes none", examples=["/api/display/hall.png"])
